// API tokens: `evt_<id>_<secret>`. Only SHA-256 of the secret is stored; lookup is by id and the
// hash comparison is constant-time. Roles gate routes (api/auth.ts).

import { desc, eq, isNull, and, sql } from "drizzle-orm";
import { tokens } from "../catalog/schema.js";
import { VaultError, notFound, invalidInput } from "../core/errors.js";
import { base64UrlEncode, sha256Hex, sha256HexSync, timingSafeEqualStr } from "../crypto/secret-box.js";
import type { Actor, RequestContext, Role, ServiceContext } from "./context.js";
import { auditStatement } from "./audit.js";

export interface TokenView {
  id: string;
  name: string;
  role: Role;
  pool: string | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function view(r: typeof tokens.$inferSelect): TokenView {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    pool: r.pool,
    createdAt: iso(r.createdAt)!,
    expiresAt: iso(r.expiresAt),
    lastUsedAt: iso(r.lastUsedAt),
  };
}

function mint(ctx: ServiceContext): { id: string; secret: string; token: string } {
  const id = base64UrlEncode(ctx.randomBytes(9)).replace(/[-_]/g, "x");
  const secret = base64UrlEncode(ctx.randomBytes(32));
  return { id, secret, token: `evt_${id}_${secret}` };
}

export async function createToken(
  ctx: RequestContext,
  input: { name: string; role: Role; pool?: string | null; expiresAt?: string | null },
): Promise<TokenView & { token: string }> {
  const now = ctx.clock.now().getTime();
  const expiresAt = input.expiresAt ? Date.parse(input.expiresAt) : null;
  if (expiresAt !== null && expiresAt <= now) throw invalidInput("expiresAt", "must be in the future");
  if (input.pool && input.role !== "runner") throw invalidInput("pool", "only runner tokens have a pool");
  const t = mint(ctx);
  const row = {
    id: t.id,
    name: input.name,
    role: input.role,
    pool: input.pool ?? null,
    secretHash: await sha256Hex(t.secret),
    createdAt: now,
    expiresAt,
    lastUsedAt: null,
    revokedAt: null,
  };
  await ctx.catalog.atomically([
    ctx.catalog.db.insert(tokens).values(row),
    auditStatement(ctx, { action: "token.create", subject: `token/${t.id}`, detail: { name: input.name, role: input.role } }),
  ]);
  return { ...view(row), token: t.token };
}

/** The first admin token, created at start from ETCD_VAULT_ADMIN_TOKEN or generated. */
export async function ensureAdminToken(
  ctx: ServiceContext,
  given: string | undefined,
): Promise<{ created: boolean; token?: string; revoked?: boolean }> {
  const existing = await ctx.catalog.db
    .select({ id: tokens.id, secretHash: tokens.secretHash })
    .from(tokens)
    .where(and(eq(tokens.role, "admin"), isNull(tokens.revokedAt)));
  const now = ctx.clock.now().getTime();
  if (given) {
    // A configured admin token is registered under a fixed id derived from its hash, so it
    // keeps working across restarts and a rotated value simply adds a new row.
    const hash = await sha256Hex(given);
    const id = `env${hash.slice(0, 12)}`;
    if (existing.some((r) => r.id === id)) return { created: false };
    // Revoked through the API (DELETE /v1/tokens/{id}): it stays revoked. Re-enabling a token an
    // operator revoked, maybe because it leaked, just because the process restarted would undo that.
    const revoked = await ctx.catalog.db.select({ id: tokens.id }).from(tokens).where(eq(tokens.id, id)).limit(1);
    if (revoked.length) {
      ctx.log.warn("ETCD_VAULT_ADMIN_TOKEN was revoked through the API and stays revoked; set a new value to have an admin token from the environment", { tokenId: id });
      return { created: false, revoked: true };
    }
    await ctx.catalog.db
      .insert(tokens)
      .values({ id, name: "admin (ETCD_VAULT_ADMIN_TOKEN)", role: "admin", pool: null, secretHash: hash, createdAt: now })
      .onConflictDoNothing();
    return { created: true };
  }
  if (existing.length > 0) return { created: false };
  const t = mint(ctx);
  await ctx.catalog.db.insert(tokens).values({
    id: t.id,
    name: "admin (generated at first start)",
    role: "admin",
    pool: null,
    secretHash: await sha256Hex(t.secret),
    createdAt: now,
  });
  return { created: true, token: t.token };
}

export async function listTokens(ctx: ServiceContext): Promise<TokenView[]> {
  const rows = await ctx.catalog.db.select().from(tokens).where(isNull(tokens.revokedAt)).orderBy(desc(tokens.createdAt));
  return rows.map(view);
}

export async function revokeToken(ctx: RequestContext, id: string): Promise<void> {
  const now = ctx.clock.now().getTime();
  const res = await ctx.catalog.db
    .update(tokens)
    .set({ revokedAt: now })
    .where(and(eq(tokens.id, id), isNull(tokens.revokedAt)));
  if (ctx.catalog.changes(res) === 0) throw notFound("token", id);
  await ctx.catalog.atomically([auditStatement(ctx, { action: "token.revoke", subject: `token/${id}` })]);
}

/** The form of issued tokens, `evt_<id>_<secret>`; such a bearer is looked up by its id. */
export const ISSUED_TOKEN = /^evt_([A-Za-z0-9]+)_([A-Za-z0-9_-]+)$/;

/** For ETCD_VAULT_ADMIN_TOKEN: a value of the issued form would be looked up by that id and never match. */
export const ADMIN_TOKEN_FORM_MESSAGE = "must not have the form of an issued token (evt_<id>_<secret>); choose another value";

// Every API request authenticates, so both steps stay cheap: the secret is hashed synchronously
// (sha256HexSync) and the lookup is compiled once per catalog.
interface PreparedTokenLookup {
  all(values: { id: string }): Array<typeof tokens.$inferSelect> | Promise<Array<typeof tokens.$inferSelect>>;
}
const tokenQueries = new WeakMap<object, PreparedTokenLookup>();

function tokenQuery(ctx: ServiceContext): PreparedTokenLookup {
  let q = tokenQueries.get(ctx.catalog.db);
  if (!q) {
    q = ctx.catalog.db.select().from(tokens).where(eq(tokens.id, sql.placeholder("id"))).limit(1).prepare() as unknown as PreparedTokenLookup;
    tokenQueries.set(ctx.catalog.db, q);
  }
  return q;
}

/** Resolves a bearer token to an actor, or throws 401. Never echoes the token. */
export async function authenticate(ctx: ServiceContext, bearer: string | null): Promise<Actor> {
  if (!bearer) throw new VaultError("unauthorized", "missing bearer token (Authorization: Bearer <token>)");
  let id: string | null = null;
  let secret = bearer;
  const m = ISSUED_TOKEN.exec(bearer);
  if (m) {
    id = m[1]!;
    secret = m[2]!;
  }
  const hash = sha256HexSync(m ? secret : bearer);
  const lookupId = id ?? `env${hash.slice(0, 12)}`;
  const row = (await tokenQuery(ctx).all({ id: lookupId }))[0];
  if (!row || !timingSafeEqualStr(row.secretHash, hash) || row.revokedAt !== null) {
    throw new VaultError("unauthorized", "invalid or revoked token");
  }
  const now = ctx.clock.now().getTime();
  if (row.expiresAt !== null && row.expiresAt <= now) throw new VaultError("unauthorized", "token expired");
  // lastUsedAt at minute resolution keeps reads from turning into a write per request.
  if (row.lastUsedAt === null || now - row.lastUsedAt > 60_000) {
    await ctx.catalog.db.update(tokens).set({ lastUsedAt: now }).where(eq(tokens.id, row.id));
  }
  return { id: row.id, name: row.name, role: row.role, pool: row.pool };
}
