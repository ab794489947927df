// Storage targets: where backups go, by name. `default` comes from ETCD_VAULT_STORAGE at start.
// S3 credentials are optional (else the standard AWS environment), sealed at rest, never returned.

import { asc, eq } from "drizzle-orm";
import { backups, policies, targets } from "../catalog/schema.js";
import { conflict, invalidInput, notFound, VaultError } from "../core/errors.js";
import type { BlobStore } from "../core/ports.js";
import { parseStorageUrl, type TargetSpec } from "../core/storage-url.js";
import type { RequestContext, ServiceContext } from "./context.js";
import { auditStatement } from "./audit.js";

export interface TargetView {
  name: string;
  kind: "file" | "s3" | "r2";
  url: string;
  objectLock: { mode: "GOVERNANCE" | "COMPLIANCE"; days: number } | null;
  storageClass: string | null;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface TargetInput {
  name: string;
  url: string;
  credentials?: S3Credentials | null;
  objectLock?: { mode: "GOVERNANCE" | "COMPLIANCE"; days: number } | null;
  storageClass?: string | null;
}

type Row = typeof targets.$inferSelect;

/** Builds a store from a target (Node: file/S3; the Worker supplies its own for r2). */
export type StoreFactory = (spec: TargetSpec, credentials: S3Credentials | null) => Promise<BlobStore>;

const view = (r: Row): TargetView => ({
  name: r.name,
  kind: r.kind,
  url: r.url,
  objectLock: r.objectLock ?? null,
  storageClass: r.storageClass,
});
const CRED_AAD = (name: string) => `target/${name}/credentials`;

function specOf(url: string): TargetSpec {
  return parseStorageUrl(url, "url");
}

function checkInput(input: Omit<TargetInput, "name">): TargetSpec {
  const spec = specOf(input.url);
  if (input.credentials && spec.kind !== "s3") throw invalidInput("credentials", "only S3 targets take credentials");
  if (input.objectLock && spec.kind !== "s3") throw invalidInput("objectLock", "object lock needs an S3 target");
  if (input.storageClass && spec.kind === "file") throw invalidInput("storageClass", "a file:// target has no storage classes");
  // (ETCD_VAULT_STORAGE may be relative, to the directory the service starts in, as documented.)
  if (spec.kind === "file" && !spec.dir.startsWith("/")) {
    throw invalidInput("url", "a target made through the API needs an absolute path (file:///srv/etcd-vault): a relative one would depend on where the server was started");
  }
  return spec;
}

export async function createTarget(ctx: RequestContext, input: TargetInput): Promise<TargetView> {
  const spec = checkInput(input);
  const existing = await ctx.catalog.db.select({ n: targets.name }).from(targets).where(eq(targets.name, input.name));
  if (existing.length) throw conflict(`target '${input.name}' already exists`);
  const now = ctx.clock.now().getTime();
  const row: Row = {
    name: input.name,
    kind: spec.kind,
    url: input.url,
    credentialsSealed: input.credentials ? await ctx.secrets.seal(JSON.stringify(input.credentials), CRED_AAD(input.name)) : null,
    objectLock: input.objectLock ?? null,
    storageClass: input.storageClass ?? null,
    createdAt: now,
    updatedAt: now,
  };
  await ctx.catalog.atomically([
    ctx.catalog.db.insert(targets).values(row),
    auditStatement(ctx, { action: "target.create", subject: `target/${input.name}`, detail: { kind: spec.kind } }),
  ]);
  return view(row);
}

export async function getTargetRow(ctx: ServiceContext, name: string): Promise<Row> {
  const row = (await ctx.catalog.db.select().from(targets).where(eq(targets.name, name)).limit(1))[0];
  if (!row) throw notFound("target", name);
  return row;
}

export async function getTarget(ctx: ServiceContext, name: string): Promise<TargetView> {
  return view(await getTargetRow(ctx, name));
}

export async function listTargets(ctx: ServiceContext): Promise<TargetView[]> {
  return (await ctx.catalog.db.select().from(targets).orderBy(asc(targets.name))).map(view);
}

export async function patchTarget(
  ctx: RequestContext,
  name: string,
  patch: Partial<Omit<TargetInput, "name">>,
): Promise<TargetView> {
  const row = await getTargetRow(ctx, name);
  if (name === "default" && patch.url !== undefined && patch.url !== row.url) {
    throw conflict("the URL of target 'default' comes from ETCD_VAULT_STORAGE and would be reset at the next start; change the variable and restart (credentials, storageClass and objectLock can be patched)");
  }
  const merged = {
    url: patch.url ?? row.url,
    credentials: patch.credentials,
    objectLock: patch.objectLock === undefined ? row.objectLock : patch.objectLock,
    storageClass: patch.storageClass === undefined ? row.storageClass : patch.storageClass,
  };
  const spec = checkInput(merged);
  const next: Row = {
    ...row,
    kind: spec.kind,
    url: merged.url,
    objectLock: merged.objectLock ?? null,
    storageClass: merged.storageClass ?? null,
    credentialsSealed:
      patch.credentials === undefined
        ? row.credentialsSealed
        : patch.credentials === null
          ? null
          : await ctx.secrets.seal(JSON.stringify(patch.credentials), CRED_AAD(name)),
    updatedAt: ctx.clock.now().getTime(),
  };
  const { name: _n, createdAt: _c, ...set } = next;
  await ctx.catalog.atomically([
    ctx.catalog.db.update(targets).set(set).where(eq(targets.name, name)),
    auditStatement(ctx, { action: "target.update", subject: `target/${name}`, detail: { fields: Object.keys(patch) } }),
  ]);
  return view(next);
}

export async function deleteTarget(ctx: RequestContext, name: string): Promise<void> {
  await getTargetRow(ctx, name);
  // Recreated from the environment at every start, and the fallback of every capture without a
  // target: deleting it would only make those captures fail until the next restart.
  if (name === "default") throw conflict("target 'default' comes from ETCD_VAULT_STORAGE and takes every backup that names no target; it cannot be deleted (change the variable and restart instead)");
  const used = await ctx.catalog.db.select({ id: backups.id }).from(backups).where(eq(backups.target, name)).limit(1);
  if (used.length) throw conflict(`target '${name}' holds backups; delete or move them first`);
  const pol = await ctx.catalog.db.select({ n: policies.name }).from(policies).where(eq(policies.target, name)).limit(1);
  if (pol.length) throw conflict(`target '${name}' is used by policy '${pol[0]!.n}'`);
  await ctx.catalog.atomically([
    ctx.catalog.db.delete(targets).where(eq(targets.name, name)),
    auditStatement(ctx, { action: "target.delete", subject: `target/${name}` }),
  ]);
}

/** Creates or refreshes target `default` from ETCD_VAULT_STORAGE (the environment wins). */
export async function ensureDefaultTarget(ctx: ServiceContext, url: string): Promise<void> {
  let spec: TargetSpec;
  try {
    spec = parseStorageUrl(url, "ETCD_VAULT_STORAGE");
  } catch (e) {
    throw new VaultError("invalid_input", (e as Error).message);
  }
  const now = ctx.clock.now().getTime();
  await ctx.catalog.db
    .insert(targets)
    .values({ name: "default", kind: spec.kind, url, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({ target: targets.name, set: { url, kind: spec.kind, updatedAt: now } });
}

/**
 * Resolves a target name to its store, cached until the target row changes. The factory comes
 * from the entry (Node: vault/open-store.ts; Worker: R2), so no runtime's stores are imported here.
 */
export function createStoreResolver(ctx: ServiceContext, factory: StoreFactory): (name: string) => Promise<BlobStore> {
  const cache = new Map<string, { updatedAt: number; store: BlobStore }>();
  return async (name) => {
    const row = await getTargetRow(ctx, name);
    const hit = cache.get(name);
    if (hit && hit.updatedAt === row.updatedAt) return hit.store;
    const creds = row.credentialsSealed
      ? (JSON.parse(await ctx.secrets.open(row.credentialsSealed, CRED_AAD(name))) as S3Credentials)
      : null;
    const spec = specOf(row.url);
    const store = await factory(spec, creds);
    cache.set(name, { updatedAt: row.updatedAt, store });
    return store;
  };
}

/** Writes, reads back and deletes a small probe object; reports which step failed. */
export async function checkTarget(ctx: RequestContext, name: string): Promise<{ ok: boolean; steps: Array<{ step: string; ok: boolean; ms: number; error?: string }> }> {
  const store = await ctx.storeFor(name);
  const key = `.etcd-vault-check/${ctx.clock.now().getTime()}-${Math.random().toString(36).slice(2)}`;
  const payload = new TextEncoder().encode(`etcd-vault target check ${key}\n`);
  const steps: Array<{ step: string; ok: boolean; ms: number; error?: string }> = [];
  const step = async (name: string, fn: () => Promise<void>) => {
    const t0 = Date.now();
    try {
      await fn();
      steps.push({ step: name, ok: true, ms: Date.now() - t0 });
      return true;
    } catch (e) {
      steps.push({ step: name, ok: false, ms: Date.now() - t0, error: (e as Error).message });
      return false;
    }
  };
  const ok =
    (await step("write", async () => {
      await store.put(key, (async function* () { yield payload; })());
    })) &&
    (await step("read", async () => {
      const got = await store.get(key);
      const buf = new Uint8Array(await new Response(got.body).arrayBuffer());
      if (buf.length !== payload.length || !buf.every((b, i) => b === payload[i])) throw new Error("read back different bytes");
    })) &&
    (await step("delete", async () => {
      await store.delete(key);
      if (await store.head(key)) throw new Error("probe object still present after delete");
    }));
  await ctx.catalog.atomically([
    auditStatement(ctx, { action: "target.check", subject: `target/${name}`, outcome: ok ? "ok" : "failed" }),
  ]);
  return { ok, steps };
}
