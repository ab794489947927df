// tick: the scheduler's heartbeat, idempotent and safe to call from anywhere at any rate (the
// Node timer, POST /v1/tick, the Worker's cron, `etcd-vault tick`). It creates the run of each
// (policy, cluster) whose latest due slot has none — exactly once, by the unique (policy, slot,
// cluster) index —, re-queues runs whose lease expired, and runs the retention sweep. It never
// waits for captures.
//
// A fleet-wide tick handles 30,000 pairs (bench:tick), so the per-pair work stays lean: each
// column the tick reads comes back as one JSON array (not 10,000 rows through the query builder),
// labels are parsed and matched once per distinct JSON text, spread offsets come from the hash
// stored with each membership (a SHA-256 per pair otherwise), run ids are made in bulk, and every
// write of the tick — membership changes and new runs — goes to the catalog in one atomic call.

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
}

// Rows per statement. Each statement binds its rows as one JSON array that SQLite's json_each
// unpacks (D1 caps a statement at 100 bound parameters, not their length), so 30,000 due runs
// are 30 statements instead of 3,334 nine-row inserts built by the query builder (~2 s).
const INSERT_ROWS = 1000;

export async function tick(ctx: ServiceContext, opts: TickOptions = {}): Promise<TickResult> {
  const now = ctx.clock.now().getTime();
  const requeued = (await requeueExpired(ctx)).length;
  // The dead attempts' half-written objects and multipart parts go now, not at the next start.
  await abandonOrphans(ctx);
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
  // In name order, so each policy's new runs come out in runs_slot_uq's (policy, slot, cluster)
  // order with no string sort (the order only affects how the inserts fill pages).
  const fleetRow = (
    await db.all<{ names: string; labels: string }>(
      sql`select json_group_array(name) as names, json_group_array(labels) as labels from (select name, labels from clusters order by name)`,
    )
  )[0];
  const names = JSON.parse(fleetRow?.names ?? "[]") as string[];
  const labelTexts = JSON.parse(fleetRow?.labels ?? "[]") as string[];
  const quoted: Array<string | undefined> = new Array(names.length); // JSON of names[i], made once
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
  // Clusters as indexes into `names`.
  const due: Array<{ policy: string; clusters: number[]; slots: number[]; notBefore: number[] }> = [];
  let dueCount = 0;
  for (const p of pols) {
    const schedule = new Schedule({ schedule: p.schedule, timezone: p.timezone, spread: p.spread }, { now: new Date(now), stored: true });
    const memberRow = (
      await db.all<{ clusters: string; since: string; hashes: string }>(
        sql`select json_group_array(cluster) as clusters, json_group_array(since) as since, json_group_array(spread_hash) as hashes from policy_members where policy = ${p.name}`,
      )
    )[0];
    const memberNames = JSON.parse(memberRow?.clusters ?? "[]") as string[];
    const memberSince = JSON.parse(memberRow?.since ?? "[]") as number[];
    const memberHash = JSON.parse(memberRow?.hashes ?? "[]") as Array<number | null>;
    const members = new Map<string, number>();
    for (let i = 0; i < memberNames.length; i++) members.set(memberNames[i]!, i);
    const selected = labelSets.map((labels) => matchesLabels(labels, p.selector.matchLabels));

    // One pass over the matching clusters: membership, spread offset, due slot. A cluster that
    // starts matching gets its first run at the first slot after now; one that stops matching
    // forgets its membership (it starts afresh if it matches again).
    // Schedule.dueSlotMs shares the slot computation across pairs (offsets only pick between the
    // latest slot and the one before it), so this loop stays cheap for 10,000 clusters.
    const spread = Math.floor(schedule.spreadMs);
    const joined: string[] = [];
    const unhashed: string[] = []; // members from before migration 0007: hashed once, stored
    let kept = 0;
    const pairs = { clusters: [] as number[], slots: [] as number[], notBefore: [] as number[] };
    for (let i = 0; i < names.length; i++) {
      if (!selected[setOf[i]!]) continue;
      const cluster = names[i]!;
      const m = members.get(cluster);
      let since: number;
      let hash: number | null;
      if (m === undefined) {
        since = now;
        hash = spreadHash(cluster, p.name);
        joined.push(`[${JSON.stringify(cluster)},${hash}]`);
      } else {
        kept++;
        since = memberSince[m]!;
        hash = memberHash[m]!;
        if (hash === null) unhashed.push(`[${JSON.stringify(cluster)},${(hash = spreadHash(cluster, p.name))}]`);
      }
      const offset = spread > 0 ? hash % spread : 0;
      const slot = schedule.dueSlotMs(now, since, offset);
      if (slot === null) continue;
      pairs.clusters.push(i);
      pairs.slots.push(slot);
      pairs.notBefore.push(slot + offset);
    }
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
    if (!pairs.clusters.length) continue;
    // Pairs whose slot already has a run (the common case: a tick every 30 s sees each slot
    // ~100 times): one covering read of runs_slot_uq per slot, cluster names only.
    const existing = new Map<number, Set<string>>();
    for (const slot of new Set(pairs.slots)) {
      const row = (await db.all<{ clusters: string }>(sql`select json_group_array(cluster) as clusters from runs where policy = ${p.name} and slot = ${slot}`))[0];
      existing.set(slot, new Set(JSON.parse(row?.clusters ?? "[]") as string[]));
    }
    const order: number[] = [];
    for (let i = 0; i < pairs.clusters.length; i++) {
      if (!existing.get(pairs.slots[i]!)!.has(names[pairs.clusters[i]!]!)) order.push(i);
    }
    // In runs_slot_uq's order (policy, slot, cluster), so the new entries are appended side by
    // side instead of split into pages all over: by slot, keeping the name order (a stable sort,
    // needed only when spread offsets put clusters in two slots).
    if (existing.size > 1) order.sort((a, b) => pairs.slots[a]! - pairs.slots[b]!);
    const fresh = {
      policy: p.name,
      clusters: order.map((i) => pairs.clusters[i]!),
      slots: order.map((i) => pairs.slots[i]!),
      notBefore: order.map((i) => pairs.notBefore[i]!),
    };
    if (fresh.clusters.length) {
      due.push(fresh);
      dueCount += fresh.clusters.length;
    }
  }
  if (!writes.length && !dueCount) return 0;

  // Each statement's rows as JSON text, written directly: [id, cluster, policy, slot, notBefore].
  const nextId = runIds(ctx, now);
  const insertQueuedRuns = queuedRunsInserter(ctx, now);
  const first = writes.length;
  let batch: string[] = [];
  for (const d of due) {
    const policy = JSON.stringify(d.policy);
    for (let i = 0; i < d.clusters.length; i++) {
      const c = d.clusters[i]!;
      batch.push(`["${nextId()}",${(quoted[c] ??= JSON.stringify(names[c]!))},${policy},${d.slots[i]!},${d.notBefore[i]!}]`);
      if (batch.length === INSERT_ROWS) {
        writes.push(insertQueuedRuns(`[${batch.join(",")}]`));
        batch = [];
      }
    }
  }
  if (batch.length) writes.push(insertQueuedRuns(`[${batch.join(",")}]`));
  // One transaction for the whole tick. Another ticker may have inserted the same (policy, slot,
  // cluster) meanwhile: the conflict skips it, exactly once.
  const results = await ctx.catalog.atomically(writes);
  let created = 0;
  for (let i = first; i < results.length; i++) created += ctx.catalog.changes(results[i]);
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
 * ULIDs for `now`, increasing (core/ids.ts makes one at a time: ~1 µs each through the ulid
 * package's string arithmetic, 20–40 ms for a fleet-wide tick). Same layout — 48-bit time, then 80
 * random bits counted up from a random start so they increase — but the start is drawn here, not
 * taken from newId: these cannot meet the ids newId hands out in the same millisecond (80 random
 * bits apart, as ids of two processes are).
 */
function runIds(ctx: ServiceContext, now: number): () => string {
  const r = ctx.randomBytes(10);
  const half = (o: number) => (((r[o]! * 256 + r[o + 1]!) * 256 + r[o + 2]!) * 256 + r[o + 3]!) * 256 + r[o + 4]!;
  // The top bit of the random part starts clear, so counting up never overflows 80 bits.
  let high = half(0) % 2 ** 39;
  let low = half(5);
  const time = base32x8(Math.floor(now / 1024)) + DIGIT_PAIRS[now % 1024]!; // 48-bit time, 10 digits
  let prefix = time + base32x8(high);
  return () => {
    const id = prefix + base32x8(low);
    if (++low === TWO_40) {
      low = 0;
      prefix = time + base32x8(++high);
    }
    return id;
  };
}

/**
 * `insert into runs select … from json_each(?)`: queued capture runs from a JSON array of
 * [id, cluster, policy, slot, notBefore]. The column list is built once per tick.
 */
function queuedRunsInserter(ctx: ServiceContext, now: number): (rowsJson: string) => PendingStatement {
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
  const columns = sql.join(
    Object.keys(getTableColumns(runs)).map((key) => given[key] ?? sql`null`),
    sql`, `,
  );
  // `where true`: without it SQLite would read ON CONFLICT as a join constraint of json_each.
  return (rowsJson) =>
    ctx.catalog.db
      .insert(runs)
      .select(sql`select ${columns} from json_each(${rowsJson}) where true`)
      .onConflictDoNothing();
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
