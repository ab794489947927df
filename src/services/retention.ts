// Retention over the catalog: plan (what would go and why), apply (delete exactly the planned
// ids, optionally intersected with an expected list), and the tick's automatic sweep. Series are
// streamed one at a time from an index scan, so memory does not grow with the catalog: through
// the catalog's `scanRetentionSeries` where it has one (Node: SQLite assembles each series), else
// page by page through the query builder (D1). Both hand the planner the same columns, and the
// plan is the same either way (bench:retention checks it over the fleet).

import { and, eq, inArray, or, sql, type SQL } from "drizzle-orm";
import { backups, clusters, policies } from "../catalog/schema.js";
import { matchesLabels } from "../core/labels.js";
import type { RetentionSeriesColumns, RetentionSeriesScan } from "../core/ports.js";
import {
  KEEP_REASON_KINDS,
  SeriesMarks,
  parseRetention,
  reasonKind,
  retentionColumnsFromRows,
  type PlanSideSummary,
  type RetentionRules,
} from "../core/retention-planner.js";
import type { RequestContext, ServiceContext } from "./context.js";
import { auditStatement } from "./audit.js";
import { sweepDeletions } from "./deletion.js";

export interface PlanItem {
  backupId: string;
  cluster: string;
  policy: string | null;
  /**
   * Frozen (typed mutable for the API's response schema): items with the same reasons share one
   * list, since a fleet's plan has a few thousand distinct lists for a million backups.
   */
  reasons: string[];
}

export interface RetentionPlan {
  keep: PlanItem[];
  delete: PlanItem[];
  summary: Record<string, unknown>;
}

/** One available backup as the generic scan reads it: [id, cluster, policy, createdAt, hold, lockedUntil, size]. */
type Row = [id: string, cluster: string, policy: string | null, createdAt: number, hold: number | boolean, lockedUntil: number | null, size: number | null];

const PAGE = 5000;

/**
 * The series key of a backup's policy: '' for manual backups. Exactly the expression of
 * backups_retention_idx (SQLite matches index expressions structurally), so each page is read
 * from that index in order instead of sorting every available row again.
 */
const seriesPolicy = sql`case when ${backups.policy} is null then '' else ${backups.policy} end`;

/**
 * The generic path (D1, or any catalog without the `scanRetentionSeries` capability): available
 * backups in (cluster, policy, createdAt, id) order, read page by page (keyset pagination) as
 * arrays (`values()`: mapping a million rows to objects through the query builder cost more than
 * reading them), handed on one series at a time.
 */
async function scanSeriesByPages(
  ctx: ServiceContext,
  scope: { policy?: string; cluster?: string },
  visit: (series: RetentionSeriesColumns) => void,
): Promise<void> {
  let after: Row | null = null;
  let current: Row[] = [];
  const flush = () => {
    const [, cluster, policy] = current[0]!;
    visit(retentionColumnsFromRows(cluster, policy, current.map((r) => [r[0], r[3], r[4], r[5], r[6]] as const)));
    current = [];
  };
  for (;;) {
    const conds: SQL[] = [eq(backups.state, "available")];
    if (scope.cluster) conds.push(eq(backups.cluster, scope.cluster));
    if (scope.policy) conds.push(eq(backups.policy, scope.policy));
    if (after) {
      const [id, cluster, policy, createdAt] = after;
      conds.push(sql`(${backups.cluster}, ${seriesPolicy}, ${backups.createdAt}, ${backups.id}) > (${cluster}, ${policy ?? ""}, ${createdAt}, ${id})`);
    }
    const rows = (await ctx.catalog.db
      .select({
        id: backups.id,
        cluster: backups.cluster,
        policy: backups.policy,
        createdAt: backups.createdAt,
        hold: backups.hold,
        lockedUntil: backups.lockedUntil,
        size: backups.cipherSize,
      })
      .from(backups)
      .where(and(...conds))
      .orderBy(backups.cluster, seriesPolicy, backups.createdAt, backups.id)
      .limit(PAGE)
      .values()) as Row[];
    for (const r of rows) {
      const first = current[0];
      if (first && (first[1] !== r[1] || first[2] !== r[2])) flush();
      current.push(r);
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!;
  }
  if (current.length) flush();
}

/** The catalog's fast series reader, when it has one (the Node catalog; see core/ports.ts). */
function seriesScanOf(ctx: ServiceContext): RetentionSeriesScan | null {
  const catalog = ctx.catalog as Partial<RetentionSeriesScan>;
  return typeof catalog.scanRetentionSeries === "function" ? (catalog as RetentionSeriesScan) : null;
}

const singleReasons = new Map<string, readonly string[]>();

/** `[reason]`, frozen and shared by every item with that one reason (see PlanItem.reasons). */
function sharedList(reason: string): string[] {
  let list = singleReasons.get(reason);
  if (list === undefined) singleReasons.set(reason, (list = Object.freeze([reason])));
  return list as string[];
}

function emptySide(): PlanSideSummary {
  return { count: 0, bytes: 0, byReason: {} };
}

/**
 * Adds `n` backups of one reason kind to a side of the summary. Kinds are added in the order
 * they are met — series in scan order, entries newest first, reasons in listing order — so that
 * `byReason` lists them as summing each series' `summarizePlan` would.
 */
function addKind(side: PlanSideSummary, kind: string, n: number): void {
  side.byReason[kind] = (side.byReason[kind] ?? 0) + n;
}

/**
 * Plans every series in scope. The automatic sweep (`automatic`) only acts on deletions, so it
 * does not collect the keep list (the summary still counts it): over a fleet that list is most of
 * the plan's memory.
 */
export async function planRetention(
  ctx: ServiceContext,
  scope: { policy?: string; cluster?: string },
  opts: { automatic?: boolean } = {},
): Promise<RetentionPlan> {
  const now = ctx.clock.now().getTime();
  const manualTtlMs = ctx.settings.manualTtlMs;
  const pols = new Map((await ctx.catalog.db.select().from(policies)).map((p) => [p.name, p]));
  const rules = new Map<string, RetentionRules>([...pols.values()].map((p) => [p.name, parseRetention(p.retention, `policy ${p.name} retention`)]));
  const labels = new Map(
    (await ctx.catalog.db.select({ name: clusters.name, labels: clusters.labels }).from(clusters)).map((c) => [c.name, c.labels]),
  );
  const keep: PlanItem[] = [];
  const del: PlanItem[] = [];
  const listKeep = !opts.automatic;
  const summary = { keep: emptySide(), delete: emptySide() };
  let seriesCount = 0;
  const marks = new SeriesMarks();
  let order = new Int32Array(64);
  const kindCounts = new Float64Array(KEEP_REASON_KINDS.length);
  const kindOrder: number[] = [];

  const emit = (series: RetentionSeriesColumns) => {
    const { cluster, policy: policyName, count, ids, createdAt, hold, lockedUntil, size } = series;
    if (count === 0) return;
    seriesCount++;
    const policy = policyName ? pols.get(policyName) : undefined;
    // Every lock is shown as stored (RFC 3339 UTC); an unreadable one fails the plan.
    const lockText = (k: number): string | null => (Number.isNaN(lockedUntil[k]!) ? null : new Date(lockedUntil[k]!).toISOString());

    // Series that are never deleted automatically: every backup kept (in scan order), with the reason.
    const clusterLabels = labels.get(cluster);
    let keepAll: string | null = null;
    if (policyName && !policy) keepAll = "policy deleted";
    else if (policy && (!clusterLabels || !matchesLabels(clusterLabels, policy.selector.matchLabels))) {
      keepAll = clusterLabels ? "cluster no longer matches" : "cluster deleted";
    }
    if (keepAll !== null) {
      const reasons = sharedList(keepAll);
      let bytes = 0;
      for (let k = 0; k < count; k++) {
        lockText(k);
        bytes += size[k]!;
        if (listKeep) keep.push({ backupId: ids[k]!, cluster, policy: policyName, reasons });
      }
      summary.keep.count += count;
      summary.keep.bytes! += bytes;
      addKind(summary.keep, reasonKind(keepAll), count);
      return;
    }

    // Newest first, ties by id (the planner's order). The scan returns oldest first, so this is
    // usually the reverse; anything else is sorted.
    if (order.length < count) order = new Int32Array(Math.max(count, 2 * order.length));
    let ascending = true;
    for (let k = 1; k < count && ascending; k++) {
      const a = createdAt[k - 1]!, b = createdAt[k]!;
      if (!(b > a || (b === a && ids[k]! > ids[k - 1]!))) ascending = false;
    }
    for (let i = 0; i < count; i++) order[i] = count - 1 - i;
    if (!ascending) {
      const sorted = Array.from(order.subarray(0, count)).sort((x, y) => {
        const d = createdAt[y]! - createdAt[x]!;
        return d || (ids[x]! < ids[y]! ? 1 : ids[x]! > ids[y]! ? -1 : 0);
      });
      order.set(sorted);
    }
    marks.reset(count);
    for (let i = 0; i < count; i++) {
      const k = order[i]!;
      marks.t[i] = createdAt[k]!;
      marks.hold[i] = hold[k]!;
      marks.lockMs[i] = lockedUntil[k]!;
      marks.lockText[i] = lockText(k);
    }
    marks.mark(
      { cluster, policy: policyName, rules: policy ? rules.get(policy.name)! : null, timezone: policy?.timezone ?? "UTC" },
      now,
      manualTtlMs,
    );

    const mask = marks.mask;
    const delReasons = sharedList(marks.deleteReason);
    let keepCount = 0, keepBytes = 0, delBytes = 0, seen = 0;
    kindCounts.fill(0);
    kindOrder.length = 0;
    for (let i = 0; i < count; i++) {
      const k = order[i]!;
      const m = mask[i]!;
      if (m === 0) {
        delBytes += size[k]!;
        del.push({ backupId: ids[k]!, cluster, policy: policyName, reasons: delReasons });
        continue;
      }
      keepCount++;
      keepBytes += size[k]!;
      if (m & ~seen) {
        for (let b = 0; b < KEEP_REASON_KINDS.length; b++) if (m & ~seen & (1 << b)) kindOrder.push(b);
        seen |= m;
      }
      for (let rest = m; rest !== 0; rest &= rest - 1) kindCounts[31 - Math.clz32(rest & -rest)]!++;
      if (listKeep) keep.push({ backupId: ids[k]!, cluster, policy: policyName, reasons: marks.sharedReasons(i) as string[] });
    }
    summary.keep.count += keepCount;
    summary.keep.bytes! += keepBytes;
    for (const b of kindOrder) addKind(summary.keep, KEEP_REASON_KINDS[b]!, kindCounts[b]!);
    if (count > keepCount) {
      summary.delete.count += count - keepCount;
      summary.delete.bytes! += delBytes;
      addKind(summary.delete, marks.deleteReason, count - keepCount);
    }
  };
  // The newest backup of every series is always kept, so a cluster's newest backup — whichever
  // series it is in — is never deleted; manual series need no look across series.
  const fast = seriesScanOf(ctx);
  if (fast) await fast.scanRetentionSeries(scope, emit);
  else await scanSeriesByPages(ctx, scope, emit);
  return { keep, delete: del, summary: { ...summary, series: seriesCount, mode: opts.automatic ? "automatic" : "preview" } };
}

export async function applyRetention(
  ctx: RequestContext,
  scope: { policy?: string; cluster?: string; expect?: string[] },
): Promise<RetentionPlan & { deleted: string[] }> {
  const plan = await planRetention(ctx, scope);
  const expect = scope.expect ? new Set(scope.expect) : null;
  const ids = plan.delete.map((d) => d.backupId).filter((id) => !expect || expect.has(id));
  const deleted = await markAndSweep(ctx, ids);
  return { ...plan, summary: { ...plan.summary, mode: "apply" }, deleted };
}

async function markAndSweep(ctx: ServiceContext & Partial<RequestContext>, ids: string[]): Promise<string[]> {
  const now = ctx.clock.now().getTime();
  for (let i = 0; i < ids.length; i += 90) {
    const group = ids.slice(i, i + 90);
    // Re-check at the moment of marking: still available, not held, not locked.
    const res = await ctx.catalog.atomically([
      ctx.catalog.db
        .update(backups)
        .set({ state: "deleting", updatedAt: now })
        .where(
          and(
            inArray(backups.id, group),
            eq(backups.state, "available"),
            eq(backups.hold, false),
            or(sql`${backups.lockedUntil} is null`, sql`${backups.lockedUntil} <= ${now}`),
          ),
        ),
      auditStatement(ctx, { action: "retention.delete", subject: "retention", detail: { backups: group } }),
    ]);
    if (ctx.catalog.changes(res[0])) await sweepDeletions(ctx, { ids: group, limit: group.length });
  }
  // What actually went (a backup held or locked since planning was skipped).
  const done: string[] = [];
  for (let i = 0; i < ids.length; i += 90) {
    const rows = await ctx.catalog.db
      .select({ id: backups.id })
      .from(backups)
      .where(and(inArray(backups.id, ids.slice(i, i + 90)), inArray(backups.state, ["deleting", "deleted"])));
    done.push(...rows.map((r) => r.id));
  }
  return done;
}

/** The tick's sweep: apply every policy's plan and manual TTLs, then retry stuck deletions. */
export async function retentionSweep(ctx: ServiceContext): Promise<number> {
  const plan = await planRetention(ctx, {}, { automatic: true });
  const ids = plan.delete.map((d) => d.backupId);
  const marked = ids.length ? await markAndSweep(ctx, ids) : [];
  // Plus deletions that were left `deleting` (a store that failed, a purged cluster's backups).
  return marked.length + (await sweepDeletions(ctx));
}

