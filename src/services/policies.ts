// Fleet policies: a label selector, a schedule (cron or @every) in a time zone with a spread, an
// RPO, retention rules, recipients and a target. One policy covers every matching cluster.

import { and, asc, eq, gt } from "drizzle-orm";
import { clusters, policies, policyMembers, runs } from "../catalog/schema.js";
import { conflict, invalidInput, notFound } from "../core/errors.js";
import { checkLabels, matchesLabels } from "../core/labels.js";
import { formatDuration, parseDuration } from "../core/duration.js";
import { Schedule } from "../core/schedule.js";
import { formatRetention, parseRetention, type RetentionSpec } from "../core/retention-planner.js";
import { parseRecipients } from "../crypto/recipients.js";
import type { RequestContext, ServiceContext } from "./context.js";
import { auditStatement } from "./audit.js";
import { membershipStatements } from "./membership.js";
import { getTargetRow } from "./targets.js";
import { decodeCursor, encodeCursor } from "./paging.js";

export type PolicyRow = typeof policies.$inferSelect;

export interface PolicyInput {
  name: string;
  selector: { matchLabels: Record<string, string> };
  schedule: string;
  timezone?: string;
  spread?: string;
  rpo?: string;
  retention: Record<string, number | string | null | undefined>;
  recipients: string[];
  target?: string;
  paused?: boolean;
}

export interface PolicyView {
  name: string;
  selector: { matchLabels: Record<string, string> };
  schedule: string;
  timezone: string;
  spread: string;
  rpo: string;
  retention: RetentionSpec;
  recipients: string[];
  target: string;
  paused: boolean;
  createdAt: string;
  updatedAt: string;
}

export function policyView(r: PolicyRow): PolicyView {
  return {
    name: r.name,
    selector: r.selector,
    schedule: r.schedule,
    timezone: r.timezone,
    spread: r.spread,
    rpo: r.rpo,
    retention: r.retention as unknown as RetentionSpec,
    recipients: r.recipients,
    target: r.target,
    paused: r.paused,
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}

/** Validates a full policy definition and returns its normalised stored form. */
async function normalise(ctx: ServiceContext, p: Omit<PolicyInput, "name">) {
  checkLabels(p.selector.matchLabels, "selector.matchLabels");
  const timezone = p.timezone ?? "UTC";
  const spread = p.spread ?? "0s";
  const schedule = new Schedule({ schedule: p.schedule, timezone, spread }, { now: ctx.clock.now() });
  const rpoMs = p.rpo ? parseDuration(p.rpo, "rpo") : schedule.defaultRpoMs;
  // The newest backup is that old just before every slot: a shorter RPO is breached all the time.
  if (rpoMs < schedule.smallestIntervalMs) {
    throw invalidInput("rpo", `${formatDuration(rpoMs)} is shorter than the schedule's interval (${formatDuration(schedule.smallestIntervalMs)}): it would always be breached`);
  }
  const retention = parseRetention(p.retention, "retention");
  const recipients = parseRecipients(p.recipients, "recipients");
  const target = p.target ?? "default";
  try {
    await getTargetRow(ctx, target);
  } catch {
    throw invalidInput("target", `unknown target '${target}'`);
  }
  return {
    selector: { matchLabels: p.selector.matchLabels },
    schedule: p.schedule.trim(),
    timezone,
    spread: schedule.spreadMs === 0 ? "0s" : formatDuration(schedule.spreadMs),
    rpo: formatDuration(rpoMs),
    retention: formatRetention(retention) as unknown as Record<string, number | string>,
    recipients,
    target,
    paused: p.paused ?? false,
  };
}

export async function getPolicyRow(ctx: ServiceContext, name: string): Promise<PolicyRow> {
  const r = (await ctx.catalog.db.select().from(policies).where(eq(policies.name, name)).limit(1))[0];
  if (!r) throw notFound("policy", name);
  return r;
}

export async function createPolicy(ctx: RequestContext, input: PolicyInput): Promise<PolicyView> {
  const n = await normalise(ctx, input);
  const exists = await ctx.catalog.db.select({ n: policies.name }).from(policies).where(eq(policies.name, input.name));
  if (exists.length) throw conflict(`policy '${input.name}' already exists`);
  const now = ctx.clock.now().getTime();
  const row: PolicyRow = { name: input.name, ...n, createdAt: now, updatedAt: now };
  await ctx.catalog.atomically([
    ctx.catalog.db.insert(policies).values(row),
    auditStatement(ctx, { action: "policy.create", subject: `policy/${input.name}`, detail: { schedule: n.schedule, selector: n.selector } }),
  ]);
  await ctx.catalog.atomically(await membershipStatements(ctx, { policy: input.name }, now));
  return policyView(row);
}

export async function listPolicies(ctx: ServiceContext): Promise<PolicyView[]> {
  return (await ctx.catalog.db.select().from(policies).orderBy(asc(policies.name))).map(policyView);
}

/** A page of policies in name order (a fleet has a few; names are what people look them up by). */
export async function listPoliciesPage(ctx: ServiceContext, q: { limit: number; cursor?: string }): Promise<{ items: PolicyView[]; nextCursor: string | null }> {
  const after = decodeCursor(q.cursor);
  const rows = await ctx.catalog.db
    .select()
    .from(policies)
    .where(after === null ? undefined : gt(policies.name, after))
    .orderBy(asc(policies.name))
    .limit(q.limit + 1);
  const items = rows.slice(0, q.limit).map(policyView);
  return { items, nextCursor: rows.length > q.limit ? encodeCursor(items[items.length - 1]!.name) : null };
}

/** A JSON merge patch of a policy (RFC 7396): absent keeps, `null` removes or resets to the default. */
export interface PolicyPatchInput {
  selector?: { matchLabels: Record<string, string | null> };
  schedule?: string;
  timezone?: string | null;
  spread?: string | null;
  rpo?: string | null;
  retention?: Record<string, number | string | null | undefined>;
  recipients?: string[];
  target?: string;
  paused?: boolean;
}

export async function patchPolicy(ctx: RequestContext, name: string, patch: PolicyPatchInput): Promise<PolicyView> {
  const row = await getPolicyRow(ctx, name);
  const matchLabels: Record<string, string> = { ...row.selector.matchLabels };
  for (const [k, v] of Object.entries(patch.selector?.matchLabels ?? {})) {
    if (v === null) delete matchLabels[k];
    else matchLabels[k] = v;
  }
  const retention: Record<string, number | string | null | undefined> = { ...row.retention };
  // A removed count rule is off (0); a removed `within` is none.
  for (const [k, v] of Object.entries(patch.retention ?? {})) if (v !== undefined) retention[k] = v === null ? (k === "within" ? null : 0) : v;
  const schedule = patch.schedule ?? row.schedule;
  const timezone = patch.timezone === null ? undefined : (patch.timezone ?? row.timezone);
  const spread = patch.spread === null ? undefined : (patch.spread ?? row.spread);
  // The stored rpo is either the user's or the default of the schedule it was last computed for.
  // A default follows the schedule and time zone; a user's value stays (and must still fit).
  const old = new Schedule({ schedule: row.schedule, timezone: row.timezone, spread: row.spread }, { now: ctx.clock.now(), stored: true });
  const rpoWasDefault = row.rpo === formatDuration(old.defaultRpoMs);
  const rpo = patch.rpo === null ? undefined : (patch.rpo ?? (rpoWasDefault ? undefined : row.rpo));
  const merged: Omit<PolicyInput, "name"> = {
    selector: { matchLabels },
    schedule,
    timezone,
    spread,
    rpo,
    retention,
    recipients: patch.recipients ?? row.recipients,
    target: patch.target ?? row.target,
    paused: patch.paused ?? row.paused,
  };
  const n = await normalise(ctx, merged);
  const now = ctx.clock.now().getTime();
  const pausing = n.paused && !row.paused;
  // Resumed, or given other slots (a new schedule or time zone), it starts afresh like a new
  // policy: no slot from before this moment fires.
  const restarting = (!n.paused && row.paused) || n.schedule !== row.schedule || n.timezone !== row.timezone;
  await ctx.catalog.atomically([
    ctx.catalog.db.update(policies).set({ ...n, updatedAt: now }).where(eq(policies.name, name)),
    // Paused means no more captures: the runs it queued and nobody started yet go too.
    ...(pausing ? [cancelQueuedRuns(ctx, name, now, "policy paused")] : []),
    // The first run is at the first slot after now, not the slot that fell inside the pause or
    // one of the new schedule that came before the change (take a manual backup for "now").
    ...(restarting ? [ctx.catalog.db.update(policyMembers).set({ since: now }).where(eq(policyMembers.policy, name))] : []),
    auditStatement(ctx, { action: "policy.update", subject: `policy/${name}`, detail: { fields: Object.keys(patch) } }),
  ]);
  await ctx.catalog.atomically(await membershipStatements(ctx, { policy: name }, now));
  return policyView({ ...row, ...n, updatedAt: now });
}

/** Deleting a policy keeps its backups: they are never deleted automatically afterwards. */
export async function deletePolicy(ctx: RequestContext, name: string): Promise<void> {
  const row = await getPolicyRow(ctx, name);
  const now = ctx.clock.now().getTime();
  await ctx.catalog.atomically([
    ctx.catalog.db.delete(policyMembers).where(eq(policyMembers.policy, name)),
    ctx.catalog.db.delete(policies).where(eq(policies.name, name)),
    // Its queued runs would otherwise still be captured, with the deleted policy's recipients.
    cancelQueuedRuns(ctx, name, now, "policy deleted"),
    // The definition goes with the row; the audit entry keeps it (recipients are public keys).
    auditStatement(ctx, { action: "policy.delete", subject: `policy/${name}`, detail: { definition: policyView(row) } }),
  ]);
}

/** Queued (not yet started) runs of a policy → cancelled with `why`; a running capture finishes. */
function cancelQueuedRuns(ctx: ServiceContext, policy: string, now: number, why: string) {
  return ctx.catalog.db
    .update(runs)
    .set({ state: "cancelled", cancelRequested: true, finishedAt: now, nextAttemptAt: null, errorCode: "cancelled", errorMessage: why })
    .where(and(eq(runs.policy, policy), eq(runs.state, "queued")));
}

/** The policy with the clusters it matches, each with its next slot and notBefore. */
export async function describePolicy(ctx: ServiceContext, name: string) {
  const row = await getPolicyRow(ctx, name);
  const now = ctx.clock.now().getTime();
  const schedule = new Schedule({ schedule: row.schedule, timezone: row.timezone, spread: row.spread }, { now: new Date(now) });
  const all = await ctx.catalog.db.select({ name: clusters.name, labels: clusters.labels }).from(clusters).orderBy(asc(clusters.name));
  // The tick never fires a slot at or before a membership's `since` (when the cluster started
  // matching, or the policy was created or resumed); a cluster the tick has not recorded yet
  // starts now.
  const members = await ctx.catalog.db.select({ cluster: policyMembers.cluster, since: policyMembers.since }).from(policyMembers).where(eq(policyMembers.policy, name));
  const since = new Map(members.map((m) => [m.cluster, m.since]));
  const matching = all
    .filter((c) => matchesLabels(c.labels, row.selector.matchLabels))
    .map((c) => {
      // Paused: nothing fires (a resume starts afresh from that moment).
      const next = row.paused ? null : schedule.forPair(c.name, row.name).nextRun(now, since.get(c.name) ?? now);
      return { name: c.name, nextSlot: next?.slot.toISOString() ?? null, notBefore: next?.notBefore.toISOString() ?? null };
    });
  return { ...policyView(row), clusters: matching };
}
