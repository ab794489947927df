// Signed, expiring, revocable download links. The token is `<payload>.<mac>` where payload =
// base64url("v1|linkId|backupId|kind|expiresAtSeconds") and mac = HMAC-SHA-256 under a key
// derived from the master key. It is recomputable from the row (so listing can show the URL),
// checked with WebCrypto's constant-time verify, and never stored or logged.

import { and, desc, eq, lt, sql } from "drizzle-orm";
import { backups, links } from "../catalog/schema.js";
import { VaultError, conflict, invalidInput, notFound } from "../core/errors.js";
import { newId } from "../core/ids.js";
import { base64UrlDecode, base64UrlEncode } from "../crypto/secret-box.js";
import type { RequestContext, ServiceContext } from "./context.js";
import { auditStatement } from "./audit.js";
import { getBackupRow, requireAvailable, type BackupRow } from "./backups.js";
import { decodeCursor, encodeCursor, type Page } from "./paging.js";

export type LinkKind = "bundle" | "snapshot";
export type LinkRow = typeof links.$inferSelect;
export const DEFAULT_TTL_SECONDS = 3600;
export const MAX_TTL_SECONDS = 7 * 86_400;

export interface LinkView {
  id: string;
  backupId: string;
  kind: LinkKind;
  url: string;
  expiresAt: string;
  revokedAt: string | null;
  uses: number;
  createdAt: string;
}

const enc = new TextEncoder();
let keyCache: { box: unknown; key: CryptoKey } | null = null;

async function linkKey(ctx: ServiceContext): Promise<CryptoKey> {
  if (keyCache?.box !== ctx.secrets) keyCache = { box: ctx.secrets, key: await ctx.secrets.deriveHmacKey("download-links") };
  return keyCache.key;
}

function payloadOf(r: Pick<LinkRow, "id" | "backupId" | "kind" | "expiresAt">): string {
  return `v1|${r.id}|${r.backupId}|${r.kind}|${Math.floor(r.expiresAt / 1000)}`;
}

async function tokenFor(ctx: ServiceContext, r: LinkRow): Promise<string> {
  const payload = payloadOf(r);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await linkKey(ctx), enc.encode(payload)));
  return `${base64UrlEncode(enc.encode(payload))}.${base64UrlEncode(mac)}`;
}

async function view(ctx: ServiceContext, r: LinkRow): Promise<LinkView> {
  return {
    id: r.id,
    backupId: r.backupId,
    kind: r.kind,
    url: `${ctx.settings.publicUrl}/dl/${await tokenFor(ctx, r)}`,
    expiresAt: new Date(r.expiresAt).toISOString(),
    revokedAt: r.revokedAt === null ? null : new Date(r.revokedAt).toISOString(),
    uses: r.uses,
    createdAt: new Date(r.createdAt).toISOString(),
  };
}

export async function createLink(
  ctx: RequestContext,
  backupId: string,
  input: { kind: LinkKind; ttlSeconds?: number },
): Promise<LinkView> {
  const b = await getBackupRow(ctx, backupId);
  requireAvailable(b);
  const ttl = input.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > MAX_TTL_SECONDS) {
    throw invalidInput("ttlSeconds", `must be an integer from 60 to ${MAX_TTL_SECONDS} (7 days)`);
  }
  const now = ctx.clock.now().getTime();
  // Expiry at whole seconds: the token carries seconds.
  const row: LinkRow = {
    id: newId(now),
    backupId,
    kind: input.kind,
    expiresAt: Math.floor((now + ttl * 1000) / 1000) * 1000,
    revokedAt: null,
    uses: 0,
    createdBy: ctx.actor.id,
    createdAt: now,
  };
  await ctx.catalog.atomically([
    ctx.catalog.db.insert(links).values(row),
    auditStatement(ctx, {
      action: "link.create",
      subject: `backup/${backupId}`,
      detail: { link: row.id, kind: row.kind, expiresAt: new Date(row.expiresAt).toISOString() },
    }),
  ]);
  return view(ctx, row);
}

export async function listLinks(ctx: ServiceContext, backupId: string, q: { limit: number; cursor?: string }): Promise<Page<LinkView>> {
  await getBackupRow(ctx, backupId);
  const after = decodeCursor(q.cursor);
  const rows = await ctx.catalog.db
    .select()
    .from(links)
    .where(after ? and(eq(links.backupId, backupId), lt(links.id, after)) : eq(links.backupId, backupId))
    .orderBy(desc(links.id))
    .limit(q.limit + 1);
  const items = await Promise.all(rows.slice(0, q.limit).map((r) => view(ctx, r)));
  return { items, nextCursor: rows.length > q.limit ? encodeCursor(items[items.length - 1]!.id) : null };
}

export async function revokeLink(ctx: RequestContext, id: string): Promise<LinkView> {
  const r = (await ctx.catalog.db.select().from(links).where(eq(links.id, id)).limit(1))[0];
  if (!r) throw notFound("link", id);
  if (r.revokedAt !== null) throw conflict(`link ${id} is already revoked`);
  const now = ctx.clock.now().getTime();
  await ctx.catalog.atomically([
    ctx.catalog.db.update(links).set({ revokedAt: now }).where(eq(links.id, id)),
    auditStatement(ctx, { action: "link.revoke", subject: `backup/${r.backupId}`, detail: { link: id } }),
  ]);
  return view(ctx, { ...r, revokedAt: now });
}

/**
 * Checks a download token: signature first (altered/unknown → link_invalid), then the row
 * (revoked → link_revoked), expiry (link_expired), and the backup (deleted → gone).
 */
export async function resolveLink(ctx: ServiceContext, token: string): Promise<{ link: LinkRow; backup: BackupRow }> {
  const invalid = () => new VaultError("link_invalid", "this download link is not valid");
  const dot = token.indexOf(".");
  if (dot <= 0 || token.length > 512) throw invalid();
  let payload: string;
  let mac: Uint8Array;
  try {
    const payloadBytes = base64UrlDecode(token.slice(0, dot));
    payload = new TextDecoder("utf-8", { fatal: true }).decode(payloadBytes);
    mac = base64UrlDecode(token.slice(dot + 1));
    // One spelling per link: base64 decoders ignore the unused low bits of the last character,
    // so a token altered there would decode to the same bytes. Only the canonical form passes.
    if (`${base64UrlEncode(payloadBytes)}.${base64UrlEncode(mac)}` !== token) throw invalid();
  } catch {
    throw invalid();
  }
  const ok = await crypto.subtle.verify("HMAC", await linkKey(ctx), mac as Uint8Array<ArrayBuffer>, enc.encode(payload));
  if (!ok) throw invalid();
  const [v, id, backupId, kind, exp] = payload.split("|");
  if (v !== "v1" || !id || !backupId || !kind || !exp) throw invalid();
  const link = (await ctx.catalog.db.select().from(links).where(eq(links.id, id)).limit(1))[0];
  if (!link || link.backupId !== backupId || link.kind !== kind || Math.floor(link.expiresAt / 1000) !== Number(exp)) throw invalid();
  if (link.revokedAt !== null) throw new VaultError("link_revoked", "this download link was revoked");
  if (link.expiresAt <= ctx.clock.now().getTime()) {
    throw new VaultError("link_expired", `this download link expired at ${new Date(link.expiresAt).toISOString()}`);
  }
  const backup = (await ctx.catalog.db.select().from(backups).where(eq(backups.id, backupId)).limit(1))[0];
  if (!backup || backup.state === "deleted" || backup.state === "deleting") {
    throw new VaultError("gone", `backup ${backupId} was deleted`);
  }
  if (backup.state !== "available") throw new VaultError("gone", `backup ${backupId} is ${backup.state}`);
  return { link, backup };
}

export async function recordLinkUse(
  ctx: ServiceContext,
  link: LinkRow,
  use: { remoteAddr: string | null; userAgent: string | null; range: string | null; bytes: number; complete: boolean },
): Promise<void> {
  await ctx.catalog.atomically([
    ctx.catalog.db.update(links).set({ uses: sql`${links.uses} + 1` }).where(eq(links.id, link.id)),
    auditStatement(
      { ...ctx, remoteAddr: use.remoteAddr },
      {
        action: "link.use",
        subject: `backup/${link.backupId}`,
        outcome: use.complete ? "ok" : "failed",
        detail: { link: link.id, kind: link.kind, userAgent: use.userAgent, range: use.range, bytes: use.bytes },
      },
    ),
  ]);
}

export async function auditLinkRefusal(ctx: ServiceContext, code: string, remoteAddr: string | null, userAgent: string | null): Promise<void> {
  await ctx.catalog.atomically([
    auditStatement({ ...ctx, remoteAddr }, { action: "link.use", subject: "link/unknown", outcome: "denied", detail: { code, userAgent } }),
  ]);
}
