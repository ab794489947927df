// Retention over the catalog: plan (what would go and why), apply (delete exactly the planned
// ids, optionally intersected with an expected list), and the tick's automatic sweep. Series are
// streamed one at a time from an index scan, so memory does not grow with the catalog.

import { and, eq, inArray, or, sql, type SQL } from "drizzle-orm";
import { backups, clusters, policies } from "../catalog/schema.js";
import { matchesLabels } from "../core/labels.js";
import {
  parseRetention,
  planRetention as planSeries,
  summarizePlan,
  type RetentionBackup,
  type RetentionPlan as SeriesPlan,
} from "../core/retention-planner.js";
import type { RequestContext, ServiceContext } from "./context.js";
import { auditStatement } from "./audit.js";
import { sweepDeletions } from "./deletion.js";

export interface PlanItem {
  backupId: string;
  cluster: string;
  policy: string | null;
  reasons: string[];
}

export interface RetentionPlan {
  keep: PlanItem[];
  delete: PlanItem[];
  summary: Record<string, unknown>;
}

/** One available backup as the scan reads it: [id, cluster, policy, createdAt, hold, lockedUntil, size]. */
type Row = [id: string, cluster: string, policy: string | null, createdAt: number, hold: number | boolean, lockedUntil: number | null, size: number | null];

const PAGE = 5000;

/**
 * The series key of a backup's policy: '' for manual backups. Exactly the expression of
 * backups_retention_idx (SQLite matches index expressions structurally), so each page is read
 * from that index in order instead of sorting every available row again.
 */
const seriesPolicy = sql`case when ${backups.policy} is null then '' else ${backups.policy} end`;

/**
 * Available backups in (cluster, policy, createdAt) order, one series at a time, read page by
 * page (keyset pagination). Rows come as arrays (`values()`): mapping a million rows to objects
 * through the query builder cost more than reading them.
 */
async function* availableSeries(ctx: ServiceContext, scope: { policy?: string; cluster?: string }): AsyncGenerator<Row[]> {
  let after: Row | null = null;
  let current: Row[] = [];
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
      if (first && (first[1] !== r[1] || first[2] !== r[2])) {
        yield current;
        current = [];
      }
      current.push(r);
    }
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!;
  }
  if (current.length) yield current;
}

type SideSummary = ReturnType<typeof summarizePlan>["keep"];

/** Adds one series' summary into the running total (counts, bytes, counts per reason kind). */
function addSummary(total: SideSummary, part: SideSummary): void {
  total.count += part.count;
  total.bytes = (total.bytes ?? 0) + (part.bytes ?? 0);
  for (const [kind, n] of Object.entries(part.byReason)) total.byReason[kind] = (total.byReason[kind] ?? 0) + n;
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
  const now = ctx.clock.now();
  const pols = new Map((await ctx.catalog.db.select().from(policies)).map((p) => [p.name, p]));
  const rules = new Map([...pols.values()].map((p) => [p.name, parseRetention(p.retention, `policy ${p.name} retention`)]));
  const labels = new Map(
    (await ctx.catalog.db.select({ name: clusters.name, labels: clusters.labels }).from(clusters)).map((c) => [c.name, c.labels]),
  );
  const keep: PlanItem[] = [];
  const del: PlanItem[] = [];
  const listKeep = !opts.automatic;
  const summary = {
    keep: { count: 0, bytes: 0, byReason: {} } as SideSummary,
    delete: { count: 0, bytes: 0, byReason: {} } as SideSummary,
  };
  let seriesCount = 0;
  const emit = (series: Row[]) => {
    const [, cluster, policyName] = series[0]!;
    const policy = policyName ? pols.get(policyName) : undefined;
    const sizes = new Map<string, number>();
    const input: RetentionBackup[] = new Array(series.length);
    for (let i = 0; i < series.length; i++) {
      const [id, , , createdAt, hold, lockedUntil, size] = series[i]!;
      sizes.set(id, size ?? 0);
      input[i] = {
        id,
        createdAt,
        state: "available",
        hold: Boolean(hold),
        lockedUntil: lockedUntil === null ? null : new Date(lockedUntil).toISOString(),
      };
    }
    seriesCount++;
    // Series that are never deleted automatically: every backup kept, with the reason.
    const keepAll = (reason: string): SeriesPlan => ({ keep: input.map((b) => ({ backupId: b.id, reasons: [reason] })), delete: [] });
    const clusterLabels = labels.get(cluster);
    let plan: SeriesPlan;
    if (policyName && !policy) plan = keepAll("policy deleted");
    else if (policy && (!clusterLabels || !matchesLabels(clusterLabels, policy.selector.matchLabels))) {
      plan = keepAll(clusterLabels ? "cluster no longer matches" : "cluster deleted");
    } else {
      plan = planSeries(
        { cluster, policy: policyName, rules: policy ? rules.get(policy.name)! : null, timezone: policy?.timezone ?? "UTC", backups: input },
        { now, manualTtlMs: ctx.settings.manualTtlMs },
      );
    }
    const part = summarizePlan(plan, (id) => sizes.get(id));
    addSummary(summary.keep, part.keep);
    addSummary(summary.delete, part.delete);
    if (listKeep) for (const k of plan.keep) keep.push({ backupId: k.backupId, cluster, policy: policyName, reasons: k.reasons });
    for (const d of plan.delete) del.push({ backupId: d.backupId, cluster, policy: policyName, reasons: d.reasons });
  };
  // The newest backup of every series is always kept, so a cluster's newest backup — whichever
  // series it is in — is never deleted; manual series need no look across series.
  for await (const series of availableSeries(ctx, scope)) emit(series);
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
  return { ...plan, deleted };
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
  await sweepDeletions(ctx);
  return marked.length;
}

