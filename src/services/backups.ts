// Backups in the catalog. Only `available` backups are offered for download, counted by
// retention or shown as protection.

import { and, desc, eq, isNull, lt, sql, type SQL, isNotNull } from "drizzle-orm";
import { backups } from "../catalog/schema.js";
import { isoText, isoTextOrNull, jsonBoolean, pageJson } from "../catalog/sql-json.js";
import type { Backup } from "../core/backup-types.js";
import { conflict, notFound, VaultError } from "../core/errors.js";
import type { RequestContext, ServiceContext } from "./context.js";
import { auditStatement } from "./audit.js";
import { decodeCursor, encodeCursor } from "./paging.js";

export type BackupRow = typeof backups.$inferSelect;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function backupView(r: BackupRow): Backup {
  return {
    id: r.id,
    cluster: r.cluster,
    policy: r.policy,
    runId: r.runId,
    state: r.state,
    createdAt: iso(r.createdAt)!,
    target: r.target,
    objectKey: r.objectKey,
    plaintext: { size: r.plainSize ?? 0, sha256: r.plainSha256 ?? "" },
    ciphertext: { size: r.cipherSize ?? 0, sha256: r.cipherSha256 ?? "" },
    etcd: { revision: r.etcdRevision, keys: r.etcdKeys, version: r.etcdVersion },
    recipients: r.recipients,
    facts: r.facts ?? null,
    hold: r.hold,
    holdReason: r.holdReason,
    lockedUntil: iso(r.lockedUntil),
  };
}

export async function getBackupRow(ctx: ServiceContext, id: string): Promise<BackupRow> {
  const r = (await ctx.catalog.db.select().from(backups).where(eq(backups.id, id)).limit(1))[0];
  if (!r) throw notFound("backup", id);
  return r;
}

export async function getBackup(ctx: ServiceContext, id: string): Promise<Backup> {
  return backupView(await getBackupRow(ctx, id));
}

/**
 * The Backup resource as JSON text, rendered by SQLite: byte for byte `JSON.stringify(backupView(row))`
 * (same keys in the same order, same values; test/list-json.test.ts compares the two over rows of
 * every shape). Lists send it as it is (catalog/sql-json.ts). Keep it in step with backupView.
 */
export const backupJson = sql<string>`json_object(
  'id', ${backups.id}, 'cluster', ${backups.cluster}, 'policy', ${backups.policy}, 'runId', ${backups.runId},
  'state', ${backups.state}, 'createdAt', ${isoText(backups.createdAt)}, 'target', ${backups.target},
  'objectKey', ${backups.objectKey},
  'plaintext', json_object('size', coalesce(${backups.plainSize}, 0), 'sha256', coalesce(${backups.plainSha256}, '')),
  'ciphertext', json_object('size', coalesce(${backups.cipherSize}, 0), 'sha256', coalesce(${backups.cipherSha256}, '')),
  'etcd', json_object('revision', ${backups.etcdRevision}, 'keys', ${backups.etcdKeys}, 'version', ${backups.etcdVersion}),
  'recipients', json(${backups.recipients}), 'facts', json(${backups.facts}),
  'hold', ${jsonBoolean(backups.hold)}, 'holdReason', ${backups.holdReason},
  'lockedUntil', ${isoTextOrNull(backups.lockedUntil)}
)`;

type ListFilters = { cluster?: string; policy?: string; manual?: boolean; state?: BackupRow["state"] };

/** A list query compiled once: run with the filter values, the cursor and the limit. */
interface PreparedList {
  all(values: Record<string, unknown>): Array<{ id: string; json: string }> | Promise<Array<{ id: string; json: string }>>;
}

// One prepared statement per (catalog, combination of filters). Building the SQL through the query
// builder and compiling it in SQLite on every request cost about as much as running it; a list
// request over 1M backups spends ~0.3 ms less CPU this way (bench:tick).
const listQueries = new WeakMap<object, Map<string, PreparedList>>();

function listQuery(ctx: ServiceContext, q: ListFilters, cursor: boolean): PreparedList {
  const key = [q.cluster !== undefined, q.policy !== undefined, q.manual === undefined ? 2 : Number(q.manual), q.state !== undefined, cursor].map(Number).join("");
  let byShape = listQueries.get(ctx.catalog.db);
  if (!byShape) listQueries.set(ctx.catalog.db, (byShape = new Map()));
  let prepared = byShape.get(key);
  if (!prepared) {
    const conds: SQL[] = [];
    if (q.cluster !== undefined) conds.push(eq(backups.cluster, sql.placeholder("cluster")));
    if (q.policy !== undefined) conds.push(eq(backups.policy, sql.placeholder("policy")));
    // manual=true: manual backups only; manual=false: policy backups only.
    if (q.manual === true) conds.push(isNull(backups.policy));
    if (q.manual === false) conds.push(isNotNull(backups.policy));
    // Alone, state is served by backups_state_id_idx in id order. With another filter, `+state`
    // keeps SQLite (no ANALYZE statistics) from choosing that index anyway and walking every
    // backup in the state newest first: 80 s for one cluster's available backups over 1M.
    if (q.state !== undefined) {
      const alone = q.cluster === undefined && q.policy === undefined && q.manual === undefined;
      conds.push(alone ? eq(backups.state, sql.placeholder("state")) : sql`+${backups.state} = ${sql.placeholder("state")}`);
    }
    if (cursor) conds.push(lt(backups.id, sql.placeholder("after")));
    prepared = ctx.catalog.db
      .select({ id: backups.id, json: backupJson })
      .from(backups)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(desc(backups.id))
      .limit(sql.placeholder("limit"))
      .prepare() as unknown as PreparedList;
    byShape.set(key, prepared);
  }
  return prepared;
}

/** A page of backups as the JSON text of a `Page<Backup>` (services/paging.ts), ready to send. */
export async function listBackupsJson(ctx: ServiceContext, q: ListFilters & { limit: number; cursor?: string }): Promise<string> {
  const after = decodeCursor(q.cursor);
  const rows = await listQuery(ctx, q, after !== null).all({
    cluster: q.cluster,
    policy: q.policy,
    state: q.state,
    after,
    limit: q.limit + 1,
  });
  return pageJson(rows, q.limit, (last) => encodeCursor(last.id));
}

export async function setHold(ctx: RequestContext, id: string, reason: string | null): Promise<Backup> {
  const r = await getBackupRow(ctx, id);
  if (r.state === "deleted" || r.state === "deleting") throw new VaultError("gone", `backup ${id} was deleted`);
  if (r.state !== "available") throw conflict(`backup ${id} is ${r.state}; only available backups can be held`);
  const now = ctx.clock.now().getTime();
  const hold = reason !== null;
  if (!hold && !r.hold) return backupView(r); // nothing to release, nothing to audit
  await ctx.catalog.atomically([
    ctx.catalog.db.update(backups).set({ hold, holdReason: reason, updatedAt: now }).where(eq(backups.id, id)),
    auditStatement(ctx, { action: hold ? "backup.hold" : "backup.release", subject: `backup/${id}`, detail: hold ? { reason } : {} }),
  ]);
  return backupView({ ...r, hold, holdReason: reason, updatedAt: now });
}

/** Manual delete: refused for held or object-locked backups; the sweep removes the objects. */
export async function deleteBackup(ctx: RequestContext, id: string): Promise<Backup> {
  const r = await getBackupRow(ctx, id);
  const now = ctx.clock.now().getTime();
  if (r.hold) throw conflict(`backup ${id} is on hold (${r.holdReason ?? "no reason given"}); release the hold first`);
  if (r.lockedUntil !== null && r.lockedUntil > now) {
    throw conflict(`backup ${id} is object-locked until ${iso(r.lockedUntil)}`);
  }
  if (r.state === "deleted" || r.state === "deleting") return backupView(r);
  if (r.state === "uploading") throw conflict(`backup ${id} is still uploading; cancel its run instead`);
  await ctx.catalog.atomically([
    ctx.catalog.db.update(backups).set({ state: "deleting", updatedAt: now }).where(eq(backups.id, id)),
    auditStatement(ctx, { action: "backup.delete", subject: `backup/${id}` }),
  ]);
  const { sweepDeletions } = await import("./deletion.js");
  await sweepDeletions(ctx, { ids: [id] });
  return getBackup(ctx, id);
}

export function requireAvailable(r: BackupRow): void {
  if (r.state === "deleted" || r.state === "deleting") throw new VaultError("gone", `backup ${r.id} was deleted`);
  if (r.state !== "available") throw conflict(`backup ${r.id} is ${r.state}, not available`);
}
