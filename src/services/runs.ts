// Runs: one job (capture or discovery) for a cluster. States queued → running → succeeded |
// failed | cancelled; at most 3 attempts (retries after 1 m and 5 m); a lease (owner, expiry)
// while running. Claiming is one UPDATE … WHERE id = (SELECT …) statement, atomic on SQLite and
// D1 alike, so any number of runners can race for work without double-claiming.

import { and, desc, eq, lt, sql, type SQL } from "drizzle-orm";
import { runs } from "../catalog/schema.js";
import { isoText, isoTextOrNull, jsonBoolean, pageJson } from "../catalog/sql-json.js";
import { VaultError, conflict, notFound } from "../core/errors.js";
import { newId } from "../core/ids.js";
import type { RequestContext, ServiceContext } from "./context.js";
import { audit, auditStatement } from "./audit.js";
import { decodeCursor, encodeCursor } from "./paging.js";

export type RunRow = typeof runs.$inferSelect;
export const RETRY_DELAYS_MS = [60_000, 300_000];
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;

export interface RunView {
  id: string;
  kind: "capture" | "discover";
  cluster: string;
  policy: string | null;
  slot: string | null;
  notBefore: string;
  state: RunRow["state"];
  attempt: number;
  nextAttemptAt: string | null;
  pod: string | null;
  error: { code: string; message: string } | null;
  bytes: number;
  timings: { execFirstByteMs: number | null; streamMs: number | null; uploadMs: number | null; totalMs: number | null };
  lease: { owner: string; expiresAt: string } | null;
  /** Someone cancelled the run; a running one ends `cancelled` at its runner's next heartbeat. */
  cancelRequested: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  backupId: string | null;
}

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export function runView(r: RunRow): RunView {
  const t = r.timings ?? {};
  return {
    id: r.id,
    kind: r.kind,
    cluster: r.cluster,
    policy: r.policy,
    slot: iso(r.slot),
    notBefore: iso(r.notBefore)!,
    state: r.state,
    attempt: r.attempt,
    nextAttemptAt: iso(r.nextAttemptAt),
    pod: r.pod,
    error: r.errorCode ? { code: r.errorCode, message: r.errorMessage ?? "" } : null,
    bytes: r.bytes,
    timings: {
      execFirstByteMs: t.execFirstByteMs ?? null,
      streamMs: t.streamMs ?? null,
      uploadMs: t.uploadMs ?? null,
      totalMs: t.totalMs ?? null,
    },
    lease: r.leaseOwner && r.leaseExpiresAt ? { owner: r.leaseOwner, expiresAt: iso(r.leaseExpiresAt)! } : null,
    cancelRequested: r.cancelRequested,
    createdAt: iso(r.createdAt)!,
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    backupId: r.backupId,
  };
}

export async function getRunRow(ctx: ServiceContext, id: string): Promise<RunRow> {
  const r = (await ctx.catalog.db.select().from(runs).where(eq(runs.id, id)).limit(1))[0];
  if (!r) throw notFound("run", id);
  return r;
}

type RunFilters = { cluster?: string; policy?: string; state?: RunRow["state"] };

// A cluster's runs live in two partial indexes (catalog/schema.ts): queued and running ones in
// runs_cluster_active_idx, the rest in runs_cluster_done_idx. SQLite uses a partial index only
// for a query that repeats its condition word for word, so these are the very same text.
const ACTIVE_RUN = sql.raw(`state in ('queued', 'running')`);
const FINISHED_RUN = sql.raw(`state not in ('queued', 'running')`);
const isActiveState = (state: RunRow["state"]) => state === "queued" || state === "running";

/**
 * The Run resource as JSON text, rendered by SQLite: byte for byte `JSON.stringify(runView(row))`
 * (test/list-json.test.ts compares the two). Timings are taken from the stored JSON with `->`,
 * which keeps each value's text as written. Keep it in step with runView.
 */
export const runJson = sql<string>`json_object(
  'id', ${runs.id}, 'kind', ${runs.kind}, 'cluster', ${runs.cluster}, 'policy', ${runs.policy},
  'slot', ${isoTextOrNull(runs.slot)}, 'notBefore', ${isoText(runs.notBefore)}, 'state', ${runs.state},
  'attempt', ${runs.attempt}, 'nextAttemptAt', ${isoTextOrNull(runs.nextAttemptAt)}, 'pod', ${runs.pod},
  'error', case when ${runs.errorCode} <> '' then json_object('code', ${runs.errorCode}, 'message', coalesce(${runs.errorMessage}, '')) end,
  'bytes', ${runs.bytes},
  'timings', json_object(
    'execFirstByteMs', ${runs.timings} -> '$.execFirstByteMs', 'streamMs', ${runs.timings} -> '$.streamMs',
    'uploadMs', ${runs.timings} -> '$.uploadMs', 'totalMs', ${runs.timings} -> '$.totalMs'),
  'lease', case when ${runs.leaseOwner} <> '' and ${runs.leaseExpiresAt} <> 0
    then json_object('owner', ${runs.leaseOwner}, 'expiresAt', ${isoText(runs.leaseExpiresAt)}) end,
  'cancelRequested', ${jsonBoolean(runs.cancelRequested)},
  'createdAt', ${isoText(runs.createdAt)}, 'startedAt', ${isoTextOrNull(runs.startedAt)},
  'finishedAt', ${isoTextOrNull(runs.finishedAt)}, 'backupId', ${runs.backupId}
)`;

/** A list query compiled once: run with the filter values, the cursor and the limit. */
interface PreparedList {
  all(values: Record<string, unknown>): Array<{ id: string; json: string }> | Promise<Array<{ id: string; json: string }>>;
}

// One prepared statement per (catalog, combination of filters), as for backups: building and
// compiling the query on every request cost about as much as running it.
const listQueries = new WeakMap<object, Map<string, PreparedList>>();

function listQuery(ctx: ServiceContext, q: RunFilters, cursor: boolean): PreparedList {
  // With a state, a cluster's runs come from the one half that can hold that state.
  const half = !q.cluster ? "-" : !q.state ? "both" : isActiveState(q.state) ? "active" : "done";
  const key = [Boolean(q.policy), Boolean(q.state), cursor].map(Number).join("") + half;
  let byShape = listQueries.get(ctx.catalog.db);
  if (!byShape) listQueries.set(ctx.catalog.db, (byShape = new Map()));
  let prepared = byShape.get(key);
  if (!prepared) {
    const conds: SQL[] = [];
    if (q.policy) conds.push(eq(runs.policy, sql.placeholder("policy")));
    // With a cluster or policy filter, `+state` keeps SQLite on that filter's index instead of
    // walking every run in the state (there may be a million succeeded ones).
    if (q.state) conds.push(q.cluster || q.policy ? sql`+${runs.state} = ${sql.placeholder("state")}` : eq(runs.state, sql.placeholder("state")));
    if (cursor) conds.push(lt(runs.id, sql.placeholder("after")));
    const select = (extra: SQL[]) => {
      const where = [...extra, ...conds];
      return ctx.catalog.db.select({ id: runs.id, json: runJson }).from(runs).where(where.length ? and(...where) : undefined);
    };
    const cluster = eq(runs.cluster, sql.placeholder("cluster"));
    const query =
      half === "both"
        ? // Both halves read newest first and merged (one statement: one consistent snapshot).
          select([cluster, ACTIVE_RUN]).unionAll(select([cluster, FINISHED_RUN]))
        : half === "active"
          ? select([cluster, ACTIVE_RUN])
          : half === "done"
            ? select([cluster, FINISHED_RUN])
            : select([]);
    prepared = query.orderBy(desc(runs.id)).limit(sql.placeholder("limit")).prepare() as unknown as PreparedList;
    byShape.set(key, prepared);
  }
  return prepared;
}

/** A page of runs as the JSON text of a `Page<RunView>` (services/paging.ts), ready to send. */
export async function listRunsJson(ctx: ServiceContext, q: RunFilters & { limit: number; cursor?: string }): Promise<string> {
  const after = decodeCursor(q.cursor);
  const rows = await listQuery(ctx, q, Boolean(after)).all({
    cluster: q.cluster,
    policy: q.policy,
    state: q.state,
    after,
    limit: q.limit + 1,
  });
  return pageJson(rows, q.limit, (last) => encodeCursor(last.id));
}

/** A queued or running capture for the cluster, if any (one capture per cluster at a time). */
export async function activeCapture(ctx: ServiceContext, cluster: string): Promise<RunRow | null> {
  const r = await ctx.catalog.db
    .select()
    .from(runs)
    .where(and(eq(runs.cluster, cluster), eq(runs.kind, "capture"), ACTIVE_RUN))
    .limit(1);
  return r[0] ?? null;
}

export async function enqueueRun(
  ctx: ServiceContext & Partial<RequestContext>,
  input: { kind: "capture" | "discover"; cluster: string; options?: RunRow["options"] },
): Promise<RunRow> {
  const now = ctx.clock.now().getTime();
  const row: RunRow = {
    id: newId(now),
    kind: input.kind,
    cluster: input.cluster,
    policy: null,
    slot: null,
    notBefore: now,
    state: "queued",
    attempt: 1,
    nextAttemptAt: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    cancelRequested: false,
    pod: null,
    errorCode: null,
    errorMessage: null,
    bytes: 0,
    timings: null,
    options: input.options ?? null,
    result: null,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
    backupId: null,
  };
  await ctx.catalog.atomically([
    ctx.catalog.db.insert(runs).values(row),
    auditStatement(ctx, { action: `run.${input.kind}`, subject: `cluster/${input.cluster}`, detail: { run: row.id } }),
  ]);
  ctx.notifyWork();
  return row;
}

/**
 * Claims the oldest due queued run for `owner`: not before its time, its cluster not already
 * running a capture, the cluster's pool matching the runner's (null pool: clusters without one).
 */
export async function claimRun(
  ctx: ServiceContext,
  owner: string,
  opts: { pool: string | null; kinds?: Array<"capture" | "discover">; anyPool?: boolean },
): Promise<RunRow | null> {
  const now = ctx.clock.now().getTime();
  const kinds = opts.kinds ?? ["capture", "discover"];
  const poolCond = opts.anyPool
    ? sql`1`
    : opts.pool === null
      ? sql`(select c.pool from clusters c where c.name = r.cluster) is null`
      : sql`(select c.pool from clusters c where c.name = r.cluster) = ${opts.pool}`;
  const kindList = sql.join(kinds.map((k) => sql`${k}`), sql`, `);
  // In the "no capture running on this cluster" test, `x.state in ('queued', 'running')` is implied
  // by `x.state = 'running'`; spelled out, it lets SQLite seek the cluster in the small
  // runs_cluster_active_idx (it uses a partial index only when the query repeats its condition).
  const rows = (await ctx.catalog.db.all(sql`
    update runs set state = 'running', lease_owner = ${owner}, lease_expires_at = ${now + ctx.settings.leaseMs},
      started_at = coalesce(started_at, ${now}), next_attempt_at = null
    where id = (
      select r.id from runs r
      where r.state = 'queued' and r.not_before <= ${now} and r.kind in (${kindList})
        and ${poolCond}
        and not exists (
          select 1 from runs x
          where x.cluster = r.cluster and x.state in ('queued', 'running') and x.state = 'running' and x.kind = 'capture' and r.kind = 'capture')
      order by r.not_before, r.id limit 1
    ) and state = 'queued'
    returning id`)) as Array<{ id: string }>;
  if (!rows.length) return null;
  return getRunRow(ctx, rows[0]!.id);
}

/** Extends the lease; a lost lease or a cancellation is a 409 the runner must obey. */
export async function heartbeat(ctx: ServiceContext, id: string, owner: string): Promise<RunRow> {
  const now = ctx.clock.now().getTime();
  const res = await ctx.catalog.db
    .update(runs)
    .set({ leaseExpiresAt: now + ctx.settings.leaseMs })
    .where(and(eq(runs.id, id), eq(runs.leaseOwner, owner), eq(runs.state, "running"), eq(runs.cancelRequested, false)));
  if (ctx.catalog.changes(res) === 0) {
    const r = await getRunRow(ctx, id);
    if (r.cancelRequested) throw new VaultError("conflict", `run ${id} was cancelled`);
    throw conflict(`run ${id} is not leased to this runner any more (state ${r.state})`);
  }
  return getRunRow(ctx, id);
}

/** True while `owner` still holds the run (used before committing results). */
export async function holdsLease(ctx: ServiceContext, id: string, owner: string): Promise<boolean> {
  const r = await getRunRow(ctx, id);
  return r.state === "running" && r.leaseOwner === owner && !r.cancelRequested;
}

export function succeedStatement(
  ctx: ServiceContext,
  id: string,
  owner: string,
  patch: { pod?: string | null; bytes?: number; timings?: RunRow["timings"]; backupId?: string | null; result?: unknown },
  opts: { unlessCancelled?: boolean } = {},
) {
  const now = ctx.clock.now().getTime();
  return ctx.catalog.db
    .update(runs)
    .set({
      state: "succeeded",
      finishedAt: now,
      leaseOwner: null,
      leaseExpiresAt: null,
      errorCode: null,
      errorMessage: null,
      ...patch,
    })
    .where(
      and(
        eq(runs.id, id),
        eq(runs.leaseOwner, owner),
        eq(runs.state, "running"),
        // A capture's success is written in one batch with its backup's, under the same
        // conditions: a run cancelled meanwhile must not succeed while its backup is discarded.
        opts.unlessCancelled ? eq(runs.cancelRequested, false) : undefined,
      ),
    );
}

/**
 * Records a failed attempt: retried after 1 m, then 5 m; the third failure (or a cancellation,
 * or a non-retryable error) ends the run.
 */
export async function failAttempt(
  ctx: ServiceContext,
  id: string,
  owner: string | null,
  err: { code: string; message: string },
  extra: { pod?: string | null; bytes?: number; timings?: RunRow["timings"]; retryable?: boolean } = {},
): Promise<RunRow> {
  const r = await getRunRow(ctx, id);
  if (owner !== null && (r.leaseOwner !== owner || r.state !== "running")) {
    throw conflict(`run ${id} is not leased to this runner any more (state ${r.state})`);
  }
  const now = ctx.clock.now().getTime();
  const cancelled = r.cancelRequested || err.code === "cancelled";
  const retry = !cancelled && extra.retryable !== false && r.attempt < MAX_ATTEMPTS;
  const nextAt = retry ? now + RETRY_DELAYS_MS[r.attempt - 1]! : null;
  await ctx.catalog.db
    .update(runs)
    .set({
      state: cancelled ? "cancelled" : retry ? "queued" : "failed",
      attempt: retry ? r.attempt + 1 : r.attempt,
      nextAttemptAt: nextAt,
      notBefore: nextAt ?? r.notBefore,
      leaseOwner: null,
      leaseExpiresAt: null,
      errorCode: cancelled ? "cancelled" : err.code,
      errorMessage: cancelled && err.code !== "cancelled" ? `cancelled (${err.message})` : err.message,
      finishedAt: retry ? null : now,
      pod: extra.pod ?? r.pod,
      bytes: extra.bytes ?? r.bytes,
      timings: extra.timings ?? r.timings,
    })
    .where(eq(runs.id, id));
  if (retry) ctx.notifyWork();
  return getRunRow(ctx, id);
}

export async function cancelRun(ctx: RequestContext, id: string): Promise<RunRow> {
  const r = await getRunRow(ctx, id);
  if (r.state !== "queued" && r.state !== "running") throw conflict(`run ${id} is already ${r.state}`);
  if (r.cancelRequested) return r; // asked already: the runner has yet to obey
  const now = ctx.clock.now().getTime();
  // Both, whichever state the run is in by now (a runner may have claimed it since the read).
  const [queued, running] = await ctx.catalog.atomically([
    ctx.catalog.db
      .update(runs)
      .set({ state: "cancelled", cancelRequested: true, finishedAt: now, errorCode: "cancelled", errorMessage: "cancelled by " + ctx.actor.name, nextAttemptAt: null })
      .where(and(eq(runs.id, id), eq(runs.state, "queued"))),
    // A running capture sees the flag at its next heartbeat (or at once in-process) and aborts.
    ctx.catalog.db.update(runs).set({ cancelRequested: true }).where(and(eq(runs.id, id), eq(runs.state, "running"))),
  ]);
  if (!ctx.catalog.changes(queued) && !ctx.catalog.changes(running)) {
    // It finished between the read and the write: nothing was cancelled, nothing is audited.
    throw conflict(`run ${id} is already ${(await getRunRow(ctx, id)).state}`);
  }
  await audit(ctx, { action: "run.cancel", subject: `run/${id}`, detail: { cluster: r.cluster } });
  ctx.notifyWork();
  return getRunRow(ctx, id);
}

/** Runs whose lease expired (a runner died): counted as a failed attempt and re-queued. */
export async function requeueExpired(ctx: ServiceContext): Promise<RunRow[]> {
  const now = ctx.clock.now().getTime();
  const expired = await ctx.catalog.db
    .select()
    .from(runs)
    .where(and(eq(runs.state, "running"), lt(runs.leaseExpiresAt, now)));
  const out: RunRow[] = [];
  for (const r of expired) {
    // Retry at once rather than after the back-off: the runner vanished, the cluster did not fail.
    const res = await ctx.catalog.db
      .update(runs)
      .set(
        r.cancelRequested
          ? { state: "cancelled", finishedAt: now, leaseOwner: null, leaseExpiresAt: null, errorCode: "cancelled", errorMessage: "cancelled; runner lost" }
          : r.attempt < MAX_ATTEMPTS
            ? { state: "queued", attempt: r.attempt + 1, notBefore: now, leaseOwner: null, leaseExpiresAt: null, errorCode: "timeout", errorMessage: `lease of runner '${r.leaseOwner}' expired` }
            : { state: "failed", finishedAt: now, leaseOwner: null, leaseExpiresAt: null, errorCode: "timeout", errorMessage: `lease of runner '${r.leaseOwner}' expired on the last attempt` },
      )
      .where(and(eq(runs.id, r.id), eq(runs.state, "running"), lt(runs.leaseExpiresAt, now)));
    if (ctx.catalog.changes(res)) out.push(await getRunRow(ctx, r.id));
  }
  if (out.length) ctx.notifyWork();
  return out;
}
