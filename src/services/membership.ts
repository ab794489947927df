// Which clusters a policy covers, and since when. A pair's first run is the first slot after it
// started matching (DESIGN "Slots"), so membership is recorded the moment a policy or a cluster's
// labels change — not at the next tick, which may come much later. The tick reconciles anything
// missed (e.g. a catalog written by an older version) with `since = now`.

import { and, eq, inArray } from "drizzle-orm";
import { clusters, policies, policyMembers } from "../catalog/schema.js";
import { matchesLabels } from "../core/labels.js";
import { spreadOffsetMs } from "../core/schedule.js";
import type { PendingStatement } from "../catalog/db.js";
import type { ServiceContext } from "./context.js";

/**
 * The pair's spread hash as stored in policy_members: spreadOffsetMs modulo 2^32 is the hash
 * itself, so `spreadHash(c, p) % spread` is the offset for any spread (DESIGN "Slots").
 */
export function spreadHash(cluster: string, policy: string): number {
  return spreadOffsetMs(cluster, policy, 2 ** 32);
}

/** Statements that bring the membership of one policy, or of one cluster, up to date. */
export async function membershipStatements(
  ctx: ServiceContext,
  scope: { policy: string } | { cluster: string },
  now: number,
): Promise<PendingStatement[]> {
  const pols =
    "policy" in scope
      ? await ctx.catalog.db.select().from(policies).where(eq(policies.name, scope.policy))
      : await ctx.catalog.db.select().from(policies);
  const fleet =
    "cluster" in scope
      ? await ctx.catalog.db.select({ name: clusters.name, labels: clusters.labels }).from(clusters).where(eq(clusters.name, scope.cluster))
      : await ctx.catalog.db.select({ name: clusters.name, labels: clusters.labels }).from(clusters);
  const current = await ctx.catalog.db
    .select()
    .from(policyMembers)
    .where("policy" in scope ? eq(policyMembers.policy, scope.policy) : eq(policyMembers.cluster, scope.cluster));
  const have = new Set(current.map((m) => `${m.policy}\u0000${m.cluster}`));
  const want = new Set<string>();
  for (const p of pols) for (const c of fleet) if (matchesLabels(c.labels, p.selector.matchLabels)) want.add(`${p.name}\u0000${c.name}`);
  const stmts: PendingStatement[] = [];
  const joined = [...want].filter((k) => !have.has(k)).map((k) => k.split("\u0000") as [string, string]);
  // 25 rows of 4 values: D1 takes at most 100 bound parameters per statement.
  for (let i = 0; i < joined.length; i += 25) {
    stmts.push(
      ctx.catalog.db
        .insert(policyMembers)
        .values(joined.slice(i, i + 25).map(([policy, cluster]) => ({ policy, cluster, since: now, spreadHash: spreadHash(cluster, policy) })))
        .onConflictDoNothing(),
    );
  }
  for (const m of current) {
    if (!want.has(`${m.policy}\u0000${m.cluster}`)) {
      stmts.push(ctx.catalog.db.delete(policyMembers).where(and(eq(policyMembers.policy, m.policy), inArray(policyMembers.cluster, [m.cluster]))));
    }
  }
  return stmts;
}
