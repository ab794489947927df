// Retention over the catalog: plan (what would go and why), apply (delete exactly the planned
// ids, optionally intersected with an expected list), and the tick's automatic sweep. Series are
// streamed one at a time from an index scan, so memory does not grow with the catalog.

import { and, eq, inArray, or, sql, type SQL } from "drizzle-orm";
import { backups, clusters, policies } from "../catalog/schema.js";
import { matchesLabels } from "../core/labels.js";
import { parseRetention, planRetention as planSeries, summarizePlan, type RetentionBackup } from "../core/retention-planner.js";
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

interface Row {
  id: string;
  cluster: string;
  policy: string | null;
  createdAt: number;
  hold: number | boolean;
  lockedUntil: number | null;
  size: number | null;
}

const PAGE = 5000;

/**
 * The series key of a backup's policy: '' for manual backups. Exactly the expression of
 * backups_retention_idx (SQLite matches index expressions structurally), so each page is read
 * from that index in order instead of sorting every available row again.
 */
const seriesPolicy = sql`case when ${backups.policy} is null then '' else ${backups.policy} end`;

/** Available backups in (cluster, policy, createdAt) order, page by page (keyset pagination). */
async function* availableSeries(ctx: ServiceContext, scope: { policy?: string; cluster?: string }): AsyncGenerator<Row[]> {
  let after: { cluster: string; policy: string; createdAt: number; id: string } | null = null;
  let current: Row[] = [];
  let key: string | null = null;
  for (;;) {
    const conds: SQL[] = [eq(backups.state, "available")];
    if (scope.cluster) conds.push(eq(backups.cluster, scope.cluster));
    if (scope.policy) conds.push(eq(backups.policy, scope.policy));
    if (after) {
      const a = after;
      conds.push(
        sql`(${backups.cluster}, ${seriesPolicy}, ${backups.createdAt}, ${backups.id}) > (${a.cluster}, ${a.policy}, ${a.createdAt}, ${a.id})`,
      );
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
      .limit(PAGE)) as Row[];
    for (const r of rows) {
      const k = `${r.cluster}\u0000${r.policy ?? ""}`;
      if (k !== key && current.length) {
        yield current;
        current = [];
      }
      key = k;
      current.push(r);
    }
    if (rows.length < PAGE) break;
    const last = rows[rows.length - 1]!;
    after = { cluster: last.cluster, policy: last.policy ?? "", createdAt: last.createdAt, id: last.id };
  }
  if (current.length) yield current;
}

export async function planRetention(
  ctx: ServiceContext,
  scope: { policy?: string; cluster?: string },
  opts: { automatic?: boolean } = {},
): Promise<RetentionPlan> {
  const now = ctx.clock.now();
  const pols = new Map((await ctx.catalog.db.select().from(policies)).map((p) => [p.name, p]));
  const labels = new Map(
    (await ctx.catalog.db.select({ name: clusters.name, labels: clusters.labels }).from(clusters)).map((c) => [c.name, c.labels]),
  );
  const keep: PlanItem[] = [];
  const del: PlanItem[] = [];
  const bytes = new Map<string, number>();
  let seriesCount = 0;
  const emit = (series: Row[]) => {
    const first = series[0]!;
    const policy = first.policy ? pols.get(first.policy) : undefined;
    const input: RetentionBackup[] = series.map((r) => ({
      id: r.id,
      createdAt: r.createdAt,
      state: "available",
      hold: Boolean(r.hold),
      lockedUntil: r.lockedUntil === null ? null : new Date(r.lockedUntil).toISOString(),
    }));
    seriesCount++;
    for (const r of series) bytes.set(r.id, r.size ?? 0);
    const push = (list: PlanItem[], id: string, reasons: string[]) =>
      list.push({ backupId: id, cluster: first.cluster, policy: first.policy, reasons });
    if (first.policy && !policy) {
      for (const r of series) push(keep, r.id, ["policy deleted"]);
      return;
    }
    const clusterLabels = labels.get(first.cluster);
    if (policy && (!clusterLabels || !matchesLabels(clusterLabels, policy.selector.matchLabels))) {
      for (const r of series) push(keep, r.id, [clusterLabels ? "cluster no longer matches" : "cluster deleted"]);
      return;
    }
    const plan = planSeries(
      {
        cluster: first.cluster,
        policy: first.policy,
        rules: policy ? parseRetention(policy.retention, `policy ${policy.name} retention`) : null,
        timezone: policy?.timezone ?? "UTC",
        backups: input,
      },
      { now, manualTtlMs: ctx.settings.manualTtlMs },
    );
    for (const k of plan.keep) push(keep, k.backupId, k.reasons);
    for (const d of plan.delete) push(del, d.backupId, d.reasons);
  };
  // The newest backup of every series is always kept, so a cluster's newest backup — whichever
  // series it is in — is never deleted; manual series need no look across series.
  for await (const series of availableSeries(ctx, scope)) emit(series);
  const summary = summarizePlan({ keep, delete: del }, (id) => bytes.get(id));
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

