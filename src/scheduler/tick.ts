// tick: the scheduler's heartbeat, idempotent and safe to call from anywhere at any rate (the
// Node timer, POST /v1/tick, the Worker's cron, `etcd-vault tick`). It creates the run of each
// (policy, cluster) whose latest due slot has none — exactly once, by the unique (policy,
// cluster, slot) index —, re-queues runs whose lease expired, and runs the retention sweep. It
// never waits for captures.

import { and, eq, inArray, sql } from "drizzle-orm";
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

// D1 allows 100 bound parameters per statement; a run insert binds 10.
const INSERT_CHUNK = 9;

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
  let created = 0;
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
    const fresh = due.filter((d) => !existing.has(`${d.cluster}@${d.slot}`));
    for (const group of chunks(fresh, INSERT_CHUNK * 20)) {
      const inserts = chunks(group, INSERT_CHUNK).map((g) =>
        ctx.catalog.db
          .insert(runs)
          .values(
            g.map((d) => ({
              id: newId(now),
              kind: "capture" as const,
              cluster: d.cluster,
              policy: p.name,
              slot: d.slot,
              notBefore: d.notBefore,
              state: "queued" as const,
              attempt: 1,
              createdAt: now,
              bytes: 0,
            })),
          )
          // Another ticker may have inserted the same (policy, cluster, slot): exactly once.
          .onConflictDoNothing(),
      );
      const results = await ctx.catalog.atomically(inserts);
      for (const r of results) created += ctx.catalog.changes(r);
    }
  }
  return created;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
