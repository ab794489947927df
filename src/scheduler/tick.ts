// tick: the scheduler's heartbeat, idempotent and safe to call from anywhere at any rate (the
// Node timer, POST /v1/tick, the Worker's cron, `etcd-vault tick`). It creates the run of each
// (policy, cluster) whose latest due slot has none — exactly once, by the unique (policy, slot,
// cluster) index —, re-queues runs whose lease expired, and runs the retention sweep. It never
// waits for captures.
//
// A fleet-wide tick handles 30,000 pairs (bench:tick), so no pair passes through JavaScript on
// its own: the fleet comes back as one JSON array per column (not 10,000 rows through the query
// builder), labels are parsed and matched once per distinct JSON text, and each policy's due runs
// are one `insert … select` over its memberships, where SQLite applies the slot rule (the two
// candidate slots come from Schedule), the offset (the spread hash stored with each membership)
// and the run ids (numbered from a block drawn here). Every write of the tick — membership changes
// and new runs — goes to the catalog in one atomic call.

import { eq, getTableColumns, sql, type SQL } from "drizzle-orm";
import { policies, policyMembers, runs } from "../catalog/schema.js";
import type { PendingStatement } from "../catalog/db.js";
import { matchesLabels } from "../core/labels.js";
import { Schedule } from "../core/schedule.js";
import type { ServiceContext } from "../services/context.js";
import { requeueExpired } from "../services/runs.js";
import { spreadHash } from "../services/membership.js";
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
  /**
   * Discard the uploads of captures whose runner is gone (default true). `tick --db` has no vault
   * access: it leaves them `uploading` for the server's next tick, which can remove their objects
   * and abort their multipart uploads (marked failed here, they would never be cleaned).
   */
  abandonOrphans?: boolean;
}

// Memberships per statement. Each statement binds its rows as one JSON array that SQLite's
// json_each unpacks (D1 caps a statement at 100 bound parameters, not their length).
const INSERT_ROWS = 1000;

export async function tick(ctx: ServiceContext, opts: TickOptions = {}): Promise<TickResult> {
  const now = ctx.clock.now().getTime();
  const requeued = (await requeueExpired(ctx)).length;
  // The dead attempts' half-written objects and multipart parts go now, not at the next start.
  if (opts.abandonOrphans !== false) await abandonOrphans(ctx);
  const created = await createDueRuns(ctx, now);
  const deleted = opts.sweep ? await opts.sweep(ctx) : 0;
  // `next_attempt_at is not null` only on queued runs waiting for a retry: runs_retry_idx holds
  // just those, so this stays a count of a handful of entries after a tick queued 30,000 runs.
  const retrying = (
    await ctx.catalog.db.all<{ n: number }>(sql`select count(*) as n from runs where next_attempt_at is not null and state = 'queued'`)
  )[0]!.n;
  if (created || requeued) ctx.notifyWork();
  return { created, requeued, deleted, retrying };
}

async function createDueRuns(ctx: ServiceContext, now: number): Promise<number> {
  const db = ctx.catalog.db;
  const pols = await db.select().from(policies).where(eq(policies.paused, false));
  if (!pols.length) return 0;
  // Whole columns as one JSON array each: one row to hand over instead of 10,000 (~3× cheaper).
  const fleetRow = (
    await db.all<{ names: string; labels: string }>(sql`select json_group_array(name) as names, json_group_array(labels) as labels from clusters`)
  )[0];
  const names = JSON.parse(fleetRow?.names ?? "[]") as string[];
  const labelTexts = JSON.parse(fleetRow?.labels ?? "[]") as string[];
  // Fleets share a few label sets: each distinct JSON text is parsed once per tick, and each
  // policy's selector is tested once per set instead of once per cluster.
  const setIds = new Map<string, number>();
  const labelSets: Array<Record<string, string>> = [];
  const setOf = new Int32Array(names.length);
  for (let i = 0; i < names.length; i++) {
    let id = setIds.get(labelTexts[i]!);
    if (id === undefined) {
      setIds.set(labelTexts[i]!, (id = labelSets.length));
      labelSets.push(JSON.parse(labelTexts[i]!) as Record<string, string>);
    }
    setOf[i] = id;
  }

  const writes: PendingStatement[] = [];
  const runInserts: number[] = []; // indexes into `writes`
  const ids = runIds(ctx, now);
  const insertDueRuns = dueRunsInserter(ctx, now);
  for (const p of pols) {
    const schedule = new Schedule({ schedule: p.schedule, timezone: p.timezone, spread: p.spread }, { now: new Date(now), stored: true });
    const memberRow = (
      await db.all<{ clusters: string; unhashed: string }>(
        sql`select json_group_array(cluster) as clusters, json_group_array(cluster) filter (where spread_hash is null) as unhashed from policy_members where policy = ${p.name}`,
      )
    )[0];
    const memberNames = JSON.parse(memberRow?.clusters ?? "[]") as string[];
    const members = new Set(memberNames);
    const selected = labelSets.map((labels) => matchesLabels(labels, p.selector.matchLabels));

    // Membership: a cluster that starts matching joins with `since` = now (its first run is at the
    // first slot after now); one that stops matching forgets its membership (it starts afresh if
    // it matches again). Each member's spread offset is its stored hash modulo the spread.
    const joined: string[] = [];
    let kept = 0;
    for (let i = 0; i < names.length; i++) {
      if (!selected[setOf[i]!]) continue;
      if (members.has(names[i]!)) kept++;
      else joined.push(`[${JSON.stringify(names[i]!)},${spreadHash(names[i]!, p.name)}]`);
    }
    // Members from before migration 0007 have no hash: made once, stored.
    const unhashed = (JSON.parse(memberRow?.unhashed ?? "[]") as string[]).map((c) => `[${JSON.stringify(c)},${spreadHash(c, p.name)}]`);
    for (const group of chunks(joined, INSERT_ROWS)) {
      writes.push(
        db
          .insert(policyMembers)
          .select(sql`select ${p.name}, json_extract(value, '$[0]'), ${now}, json_extract(value, '$[1]') from json_each(${`[${group.join(",")}]`}) where true`)
          .onConflictDoNothing(),
      );
    }
    for (const group of chunks(unhashed, INSERT_ROWS)) {
      writes.push(
        db
          .update(policyMembers)
          .set({ spreadHash: sql`json_extract(value, '$[1]')` })
          .from(sql`json_each(${`[${group.join(",")}]`})`)
          .where(sql`${policyMembers.policy} = ${p.name} and ${policyMembers.cluster} = json_extract(value, '$[0]')`),
      );
    }
    if (kept < members.size) {
      const matching = new Set<string>();
      for (let i = 0; i < names.length; i++) if (selected[setOf[i]!]) matching.add(names[i]!);
      const left = memberNames.filter((c) => !matching.has(c));
      for (const group of chunks(left, INSERT_ROWS)) {
        writes.push(
          db.delete(policyMembers).where(sql`${policyMembers.policy} = ${p.name} and ${policyMembers.cluster} in (select value from json_each(${JSON.stringify(group)}))`),
        );
      }
    }

    // Due runs, in SQL over the memberships as the statements above leave them (a member that
    // joins now has no due slot). Only the two slots of Schedule.dueCandidatesMs can be due.
    if (!kept) continue;
    const { latest, previous } = schedule.dueCandidatesMs(now);
    if (latest === null) continue;
    const spread = Math.floor(schedule.spreadMs);
    // `previous` is only ever picked while some offset (< spread) has not elapsed since `latest`.
    const candidates = spread > now - latest && previous !== null ? [latest, previous] : [latest];
    // Slots that have runs already (a tick every 30 s sees each slot ~100 times) need each pair
    // checked; a slot with none (the fleet-wide moment) is inserted straight, conflicts skipped.
    const started = (
      await db.all<{ n: number }>(sql`select count(*) as n from (select 1 from runs where policy = ${p.name} and slot in (${sql.join(candidates.map((c) => sql`${c}`), sql`, `)}) limit 1)`)
    )[0]!.n;
    runInserts.push(writes.length);
    writes.push(insertDueRuns({ policy: p.name, latest, previous: candidates.length > 1 ? previous : null, spread, checkExisting: started > 0, ids: ids.take(memberNames.length) }));
  }
  if (!writes.length) return 0;
  // One transaction for the whole tick. Another ticker may have inserted the same (policy, slot,
  // cluster) meanwhile: the conflict skips it, exactly once.
  const results = await ctx.catalog.atomically(writes);
  let created = 0;
  for (const i of runInserts) created += ctx.catalog.changes(results[i]);
  return created;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** Every 10-bit value as its two base-32 digits. */
const DIGIT_PAIRS = Array.from({ length: 1024 }, (_, n) => CROCKFORD[n >> 5]! + CROCKFORD[n & 31]!);
const TWO_20 = 2 ** 20;
const TWO_40 = 2 ** 40;

/** 8 base-32 digits of a 40-bit integer. */
function base32x8(n: number): string {
  const high = Math.floor(n / TWO_20);
  const low = n % TWO_20;
  return DIGIT_PAIRS[high >> 10]! + DIGIT_PAIRS[high & 1023]! + DIGIT_PAIRS[low >> 10]! + DIGIT_PAIRS[low & 1023]!;
}

/**
 * Blocks of ULIDs for `now`, for SQL to number (core/ids.ts makes one at a time: ~1 µs each through
 * the ulid package's string arithmetic, 20–40 ms for a fleet-wide tick). Same layout — 48-bit
 * time, then 80 random bits counted up from a random start so they increase —: a block is the
 * first 18 characters (time and the high 40 random bits) and a low 40-bit start; row n of a
 * statement gets low + n. The start is drawn here, not taken from newId: these cannot meet the ids
 * newId hands out in the same millisecond (80 random bits apart, as ids of two processes are).
 */
function runIds(ctx: ServiceContext, now: number): { take(count: number): { prefix: string; low: number } } {
  const r = ctx.randomBytes(10);
  const half = (o: number) => (((r[o]! * 256 + r[o + 1]!) * 256 + r[o + 2]!) * 256 + r[o + 3]!) * 256 + r[o + 4]!;
  // The top bit of the random part starts clear, so counting up never overflows 80 bits.
  let high = half(0) % 2 ** 39;
  let low = half(5);
  const time = base32x8(Math.floor(now / 1024)) + DIGIT_PAIRS[now % 1024]!; // 48-bit time, 10 digits
  return {
    take(count) {
      // Rows are numbered from 1: the block is low + 1 … low + count, all below 2^40.
      if (low + count >= TWO_40) {
        high++;
        low = 0;
      }
      const block = { prefix: time + base32x8(high), low };
      low += count;
      return block;
    },
  };
}

/** SQL for 8 base-32 digits of the 40-bit integer in column `v` (base32x8 in SQL). */
const SQL_BASE32X8 = Array.from({ length: 8 }, (_, k) => `substr('${CROCKFORD}', ((v >> ${35 - 5 * k}) & 31) + 1, 1)`).join(" || ");

interface DueRunsSpec {
  policy: string;
  latest: number;
  /** The slot before `latest`, when some offsets have not elapsed since `latest`; else null. */
  previous: number | null;
  /** The spread in whole ms; a member's offset is its spread hash modulo this. */
  spread: number;
  /** Skip pairs whose slot has a run already (needed only when the slots have runs). */
  checkExisting: boolean;
  ids: { prefix: string; low: number };
}

/**
 * `insert into runs select … from policy_members`: the queued capture run of each member of one
 * policy whose due slot (Schedule.dueSlotMs's rule, see dueCandidatesMs) has none, inserted in
 * runs_slot_uq's (policy, slot, cluster) order so the new entries fill pages side by side, with
 * ids increasing in that order.
 */
function dueRunsInserter(ctx: ServiceContext, now: number): (d: DueRunsSpec) => PendingStatement {
  const keys = Object.keys(getTableColumns(runs));
  return (d) => {
    const given: Partial<Record<string, SQL>> = {
      id: sql`${d.ids.prefix} || ${sql.raw(SQL_BASE32X8)}`,
      kind: sql`'capture'`,
      cluster: sql`cluster`,
      policy: sql`${d.policy}`,
      slot: sql`slot`,
      notBefore: sql`slot + off`,
      state: sql`'queued'`,
      attempt: sql`1`,
      cancelRequested: sql`0`,
      bytes: sql`0`,
      createdAt: sql`${now}`,
    };
    // Every column in the table's order (an insert from a select fills them all); the rest are null.
    const columns = sql.join(
      keys.map((key) => given[key] ?? sql`null`),
      sql`, `,
    );
    const off = d.spread > 0 ? sql`spread_hash % ${d.spread}` : sql`0`;
    const orPrevious = d.previous === null ? sql`` : sql` else ${d.previous}`;
    const fresh = d.checkExisting ? sql` and not exists (select 1 from runs r where r.policy = ${d.policy} and r.slot = d.slot and r.cluster = d.cluster)` : sql``;
    // `where true`: without it SQLite would read ON CONFLICT as part of the select.
    return ctx.catalog.db
      .insert(runs)
      .select(
        sql`select ${columns} from (
          select cluster, off, slot, row_number() over (order by slot, cluster) + ${d.ids.low} as v from (
            select cluster, since, off, case when ${d.latest} + off <= ${now} then ${d.latest}${orPrevious} end as slot
            from (select cluster, since, ${off} as off from policy_members where policy = ${d.policy})
          ) as d where slot > since${fresh}
        ) where true order by v`,
      )
      .onConflictDoNothing();
  };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
