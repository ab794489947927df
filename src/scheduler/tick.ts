// tick: the scheduler's heartbeat, idempotent and safe to call from anywhere at any rate (the
// Node timer, POST /v1/tick, the Worker's cron, `etcd-vault tick`). It creates the run of each
// (policy, cluster) whose latest due slot has none — exactly once, by the unique (policy,
// cluster, slot) index —, re-queues runs whose lease expired, and runs the retention sweep. It
// never waits for captures.

import { and, eq, getTableColumns, inArray, sql, type SQL } from "drizzle-orm";
import { clusters, policies, policyMembers, runs } from "../catalog/schema.js";
import { newId } from "../core/ids.js";
import { matchesLabels } from "../core/labels.js";
import { Schedule } from "../core/schedule.js";
import type { ServiceContext } from "../services/context.js";
import { requeueExpired } from "../services/runs.js";
import { abandonOrphans } from "../services/capture-jobs.js";

export interface TickResult {
  created: number;
  requeued: number;
  deleted: number;
  /** Runs waiting for a retry after a failed attempt. */
  retrying: number;
}

export interface TickOptions {
  /** Retention sweep (deletes); injected so the scheduler does not depend on the retention layer. */
  sweep?: (ctx: ServiceContext) => Promise<number>;
}

// Runs per insert statement. Each statement binds its rows as one JSON array that SQLite's
// json_each unpacks (D1 caps a statement at 100 bound parameters, not their length), so 30,000
// due runs are 30 statements in one transaction instead of 3,334 nine-row inserts: building and
// preparing those through the query builder cost ~2 s per fleet-wide tick (bench:tick).
const INSERT_ROWS = 1000;

export async function tick(ctx: ServiceContext, opts: TickOptions = {}): Promise<TickResult> {
  const now = ctx.clock.now().getTime();
  const requeued = (await requeueExpired(ctx)).length;
  // The dead attempts' half-written objects and multipart parts go now, not at the next start.
  await abandonOrphans(ctx);
  const created = await createDueRuns(ctx, now);
  const deleted = opts.sweep ? await opts.sweep(ctx) : 0;
  const retrying = (
    await ctx.catalog.db.all<{ n: number }>(sql`select count(*) as n from runs where state = 'queued' and next_attempt_at is not null`)
  )[0]!.n;
  if (created || requeued) ctx.notifyWork();
  return { created, requeued, deleted, retrying };
}

async function createDueRuns(ctx: ServiceContext, now: number): Promise<number> {
  const pols = await ctx.catalog.db.select().from(policies).where(eq(policies.paused, false));
  if (!pols.length) return 0;
  const fleet = await ctx.catalog.db.select({ name: clusters.name, labels: clusters.labels }).from(clusters);
  // [id, cluster, policy, slot, notBefore] of every run to create, all policies together.
  const fresh: Array<[string, string, string, number, number]> = [];
  for (const p of pols) {
    const schedule = new Schedule({ schedule: p.schedule, timezone: p.timezone, spread: p.spread }, { now: new Date(now) });
    const members = new Map(
      (await ctx.catalog.db.select().from(policyMembers).where(eq(policyMembers.policy, p.name))).map((m) => [m.cluster, m.since]),
    );
    const matching = fleet.filter((c) => matchesLabels(c.labels, p.selector.matchLabels)).map((c) => c.name);
    const matchSet = new Set(matching);
    // Membership: a cluster that starts matching gets its first run at the first slot after now;
    // one that stops matching forgets its membership (it starts afresh if it matches again).
    const joined = matching.filter((c) => !members.has(c));
    const left = [...members.keys()].filter((c) => !matchSet.has(c));
    const stmts = [];
    for (const group of chunks(joined, 30)) {
      stmts.push(
        ctx.catalog.db
          .insert(policyMembers)
          .values(group.map((cluster) => ({ policy: p.name, cluster, since: now })))
          .onConflictDoNothing(),
      );
    }
    for (const group of chunks(left, 90)) {
      stmts.push(ctx.catalog.db.delete(policyMembers).where(and(eq(policyMembers.policy, p.name), inArray(policyMembers.cluster, group))));
    }
    if (stmts.length) await ctx.catalog.atomically(stmts);
    for (const c of joined) members.set(c, now);

    // Schedule.dueSlot shares the slot computation across pairs (offsets only pick between the
    // latest slot and the one before it), so this loop stays cheap for 10,000 clusters.
    const due: Array<{ cluster: string; slot: number; notBefore: number }> = [];
    for (const cluster of matching) {
      const d = schedule.dueSlot(now, members.get(cluster)!, schedule.offsetFor(cluster, p.name));
      if (d) due.push({ cluster, slot: d.slot.getTime(), notBefore: d.notBefore.getTime() });
    }
    if (!due.length) continue;
    const slots = [...new Set(due.map((d) => d.slot))];
    const existing = new Set(
      (
        await ctx.catalog.db
          .select({ cluster: runs.cluster, slot: runs.slot })
          .from(runs)
          .where(and(eq(runs.policy, p.name), inArray(runs.slot, slots)))
      ).map((r) => `${r.cluster}@${r.slot}`),
    );
    for (const d of due) {
      if (!existing.has(`${d.cluster}@${d.slot}`)) fresh.push([newId(now), d.cluster, p.name, d.slot, d.notBefore]);
    }
  }
  if (!fresh.length) return 0;
  // Another ticker may have inserted the same (policy, cluster, slot): the conflict skips it,
  // exactly once.
  const results = await ctx.catalog.atomically(chunks(fresh, INSERT_ROWS).map((rows) => insertQueuedRuns(ctx, rows, now)));
  let created = 0;
  for (const r of results) created += ctx.catalog.changes(r);
  return created;
}

/** `insert into runs select … from json_each(?)`: queued capture runs from [id, cluster, policy, slot, notBefore] rows. */
function insertQueuedRuns(ctx: ServiceContext, rows: Array<[string, string, string, number, number]>, now: number) {
  const field = (i: number) => sql.raw(`json_extract(value, '$[${i}]')`);
  const given: Partial<Record<string, SQL>> = {
    id: field(0),
    kind: sql`'capture'`,
    cluster: field(1),
    policy: field(2),
    slot: field(3),
    notBefore: field(4),
    state: sql`'queued'`,
    attempt: sql`1`,
    cancelRequested: sql`0`,
    bytes: sql`0`,
    createdAt: sql`${now}`,
  };
  // Every column in the table's order (an insert from a select fills them all); the rest are null.
  const columns = Object.keys(getTableColumns(runs)).map((key) => given[key] ?? sql`null`);
  // `where true`: without it SQLite would read ON CONFLICT as a join constraint of json_each.
  return ctx.catalog.db
    .insert(runs)
    .select(sql`select ${sql.join(columns, sql`, `)} from json_each(${JSON.stringify(rows)}) where true`)
    .onConflictDoNothing();
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
