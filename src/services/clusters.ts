// The cluster registry: name, labels, kubeconfig (sealed at rest, never returned), etcd access
// settings, recipients, runner pool, and the facts found by discovery.

import { and, asc, eq, gt, inArray, sql } from "drizzle-orm";
import { backups, clusters, policyMembers, runs } from "../catalog/schema.js";
import { isoText, pageJson } from "../catalog/sql-json.js";
import { DEFAULT_ETCD_SETTINGS, type ClusterFacts, type EtcdSettings } from "../core/cluster-types.js";
import { VaultError, conflict, invalidInput, notFound } from "../core/errors.js";
import { checkLabelSelector, checkLabels, matchesLabels } from "../core/labels.js";
import { parseKubeconfig } from "../core/kubeconfig.js";
import { parseRecipients } from "../crypto/recipients.js";
import type { ClusterConnection } from "../core/ports.js";
import type { RequestContext, ServiceContext } from "./context.js";
import { auditStatement } from "./audit.js";
import { membershipStatements } from "./membership.js";
import { decodeCursor, encodeCursor } from "./paging.js";
import { DiscoveryQueued } from "./runner-handoff.js";

export interface ClusterView {
  name: string;
  labels: Record<string, string>;
  recipients: string[];
  pool: string | null;
  context: string | null;
  etcd: EtcdSettings;
  facts: ClusterFacts | null;
  createdAt: string;
  updatedAt: string;
}

export interface ClusterInput {
  name: string;
  labels?: Record<string, string>;
  recipients?: string[];
  pool?: string | null;
  kubeconfig: string;
  context?: string | null;
  etcd?: Partial<EtcdSettings>;
}

export type ClusterPatch = {
  labels?: Record<string, string | null> | null;
  recipients?: string[] | null;
  pool?: string | null;
  kubeconfig?: string;
  context?: string | null;
  etcd?: Partial<EtcdSettings> | null;
};

type Row = typeof clusters.$inferSelect;

/** What clusterView reads: every column but the sealed kubeconfig. */
type ViewColumns = Exclude<keyof Row, "kubeconfigSealed">;

/**
 * The Cluster resource as JSON text, rendered by SQLite: byte for byte `JSON.stringify(clusterView(row))`
 * (test/list-json.test.ts compares the two). Lists send it as it is (catalog/sql-json.ts). Keep it
 * in step with clusterView.
 */
export const clusterJson = sql<string>`json_object(
  'name', ${clusters.name}, 'labels', json(${clusters.labels}), 'recipients', json(${clusters.recipients}),
  'pool', ${clusters.pool}, 'context', ${clusters.context}, 'etcd', json(${clusters.etcd}), 'facts', json(${clusters.facts}),
  'createdAt', ${isoText(clusters.createdAt)}, 'updatedAt', ${isoText(clusters.updatedAt)}
)`;

export function clusterView(r: Pick<Row, ViewColumns>): ClusterView {
  return {
    name: r.name,
    labels: r.labels,
    recipients: r.recipients,
    pool: r.pool,
    context: r.context,
    etcd: r.etcd,
    facts: r.facts ?? null,
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}

const KUBECONFIG_AAD = (name: string) => `cluster/${name}/kubeconfig`;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function etcdSettings(given: Partial<EtcdSettings> | null | undefined, base: EtcdSettings): EtcdSettings {
  const e = { ...base, ...(given ?? {}) };
  // What runners hand to the API server (namespace, labelSelector, container) and to the exec
  // (argv): checked here, once, so a typo is a 400 now rather than a failed capture tonight.
  if (!DNS_LABEL.test(e.namespace)) throw invalidInput("etcd.namespace", "must be a Kubernetes namespace name (lowercase letters, digits, '-')");
  checkLabelSelector(e.selector, "etcd.selector");
  if (!DNS_LABEL.test(e.container)) throw invalidInput("etcd.container", "must be a Kubernetes container name (lowercase letters, digits, '-')");
  if (!e.command.length) throw invalidInput("etcd.command", "must have at least one element");
  e.command.forEach((arg, i) => {
    if (arg.includes("\0")) throw invalidInput(`etcd.command[${i}]`, "contains a NUL byte, which no argument can carry");
    if (arg.length > 4096) throw invalidInput(`etcd.command[${i}]`, "is longer than 4096 characters");
  });
  return e;
}

export async function getClusterRow(ctx: ServiceContext, name: string): Promise<Row> {
  const row = (await ctx.catalog.db.select().from(clusters).where(eq(clusters.name, name)).limit(1))[0];
  if (!row) throw notFound("cluster", name);
  return row;
}

export async function createCluster(ctx: RequestContext, input: ClusterInput): Promise<ClusterView> {
  checkLabels(input.labels ?? {});
  parseKubeconfig(input.kubeconfig, input.context ?? undefined, { allowCommands: ctx.settings.allowCredentialCommands });
  const recipients = input.recipients?.length ? parseRecipients(input.recipients, "recipients") : [];
  const now = ctx.clock.now().getTime();
  const row: Row = {
    name: input.name,
    labels: input.labels ?? {},
    recipients,
    pool: input.pool ?? null,
    kubeconfigSealed: await ctx.secrets.seal(input.kubeconfig, KUBECONFIG_AAD(input.name)),
    context: input.context ?? null,
    etcd: etcdSettings(input.etcd, DEFAULT_ETCD_SETTINGS),
    facts: null,
    createdAt: now,
    updatedAt: now,
  };
  const exists = await ctx.catalog.db.select({ n: clusters.name }).from(clusters).where(eq(clusters.name, input.name));
  if (exists.length) throw conflict(`cluster '${input.name}' already exists`);
  try {
    await ctx.catalog.atomically([
      ctx.catalog.db.insert(clusters).values(row),
      auditStatement(ctx, { action: "cluster.create", subject: `cluster/${input.name}`, detail: { labels: row.labels } }),
    ]);
  } catch (e) {
    if (String((e as Error).message).includes("UNIQUE")) throw conflict(`cluster '${input.name}' already exists`);
    throw e;
  }
  await ctx.catalog.atomically(await membershipStatements(ctx, { cluster: input.name }, now));
  return clusterView(row);
}

/** A page of clusters as the JSON text of a `Page<ClusterView>` (services/paging.ts), ready to send. */
export async function listClustersJson(ctx: ServiceContext, q: { selector?: Record<string, string>; limit: number; cursor?: string }): Promise<string> {
  // Names are the key; list in name order (stable, human friendly) and filter labels in memory
  // in pages, so a selector over a large fleet never loads it all at once.
  // Without a selector every row counts, so one page of limit + 1 rows answers; the sealed
  // kubeconfig (the widest column) is never read for a list.
  const page = q.selector ? 500 : q.limit + 1;
  const out: Array<{ name: string; json: string }> = [];
  let after = decodeCursor(q.cursor);
  let more = true;
  while (out.length <= q.limit && more) {
    const rows = await ctx.catalog.db
      .select({ name: clusters.name, labels: clusters.labels, json: clusterJson })
      .from(clusters)
      .where(after ? gt(clusters.name, after) : undefined)
      .orderBy(asc(clusters.name))
      .limit(page);
    more = rows.length === page;
    for (const r of rows) {
      after = r.name;
      if (!q.selector || matchesLabels(r.labels, q.selector)) out.push(r);
      if (out.length > q.limit) break;
    }
  }
  return pageJson(out, q.limit, (last) => encodeCursor(last.name));
}

export async function getCluster(ctx: ServiceContext, name: string): Promise<ClusterView> {
  return clusterView(await getClusterRow(ctx, name));
}

export async function patchCluster(ctx: RequestContext, name: string, patch: ClusterPatch): Promise<ClusterView> {
  const row = await getClusterRow(ctx, name);
  const next: Row = { ...row };
  if (patch.labels !== undefined) {
    const labels = { ...row.labels };
    for (const [k, v] of Object.entries(patch.labels ?? {})) {
      if (v === null) delete labels[k];
      else labels[k] = v;
    }
    next.labels = checkLabels(patch.labels === null ? {} : labels);
  }
  if (patch.recipients !== undefined) {
    next.recipients = patch.recipients?.length ? parseRecipients(patch.recipients, "recipients") : [];
  }
  if (patch.pool !== undefined) next.pool = patch.pool;
  if (patch.context !== undefined) next.context = patch.context;
  if (patch.etcd !== undefined) next.etcd = etcdSettings(patch.etcd, patch.etcd === null ? DEFAULT_ETCD_SETTINGS : row.etcd);
  const rotated = patch.kubeconfig !== undefined;
  if (rotated || patch.context !== undefined) {
    const kc = patch.kubeconfig ?? (await openKubeconfig(ctx, row));
    parseKubeconfig(kc, next.context ?? undefined, { allowCommands: ctx.settings.allowCredentialCommands });
    if (rotated) next.kubeconfigSealed = await ctx.secrets.seal(kc, KUBECONFIG_AAD(name));
  }
  next.updatedAt = ctx.clock.now().getTime();
  const { name: _n, createdAt: _c, ...set } = next;
  await ctx.catalog.atomically([
    ctx.catalog.db.update(clusters).set(set).where(eq(clusters.name, name)),
    auditStatement(ctx, {
      action: "cluster.update",
      subject: `cluster/${name}`,
      detail: { fields: Object.keys(patch), kubeconfigRotated: rotated },
    }),
  ]);
  if (patch.labels !== undefined) await ctx.catalog.atomically(await membershipStatements(ctx, { cluster: name }, next.updatedAt));
  return clusterView(next);
}

export async function deleteCluster(ctx: RequestContext, name: string, purgeBackups: boolean): Promise<void> {
  await getClusterRow(ctx, name);
  const now = ctx.clock.now().getTime();
  const live = await ctx.catalog.db
    .select({ id: backups.id, hold: backups.hold, lockedUntil: backups.lockedUntil })
    .from(backups)
    .where(and(eq(backups.cluster, name), eq(backups.state, "available")));
  // Held and object-locked backups are never deleted, by a purge neither (a lock would also make
  // the store refuse, leaving them `deleting` for good).
  const held = live.filter((b) => b.hold).length;
  const locked = live.filter((b) => b.lockedUntil !== null && b.lockedUntil > now);
  if (held || locked.length) {
    const until = new Date(Math.max(0, ...locked.map((b) => b.lockedUntil!))).toISOString();
    const why = [held ? `${held} on hold (release them first)` : "", locked.length ? `${locked.length} object-locked (the last until ${until})` : ""].filter(Boolean);
    throw conflict(`cluster '${name}' has backups that cannot be deleted: ${why.join(", ")}`);
  }
  if (live.length && !purgeBackups) {
    throw conflict(`cluster '${name}' has ${live.length} available backup(s); pass ?purgeBackups=true to delete them too`);
  }
  const active = await ctx.catalog.db
    .select({ id: runs.id })
    .from(runs)
    .where(and(eq(runs.cluster, name), inArray(runs.state, ["running"])));
  if (active.length) throw conflict(`cluster '${name}' has a capture running (run ${active[0]!.id}); cancel it first`);
  await ctx.catalog.atomically([
    // Purged backups go through the normal deletion path (the sweep removes object + sidecar);
    // the conditions again, for a hold or lock set since the read.
    ctx.catalog.db
      .update(backups)
      .set({ state: "deleting", updatedAt: now })
      .where(and(eq(backups.cluster, name), eq(backups.state, "available"), eq(backups.hold, false), sql`(${backups.lockedUntil} is null or ${backups.lockedUntil} <= ${now})`)),
    ctx.catalog.db
      .update(runs)
      .set({ state: "cancelled", cancelRequested: true, finishedAt: now, errorCode: "cancelled", errorMessage: "cluster deleted" })
      .where(and(eq(runs.cluster, name), eq(runs.state, "queued"))),
    ctx.catalog.db.delete(clusters).where(eq(clusters.name, name)),
    ctx.catalog.db.delete(policyMembers).where(eq(policyMembers.cluster, name)),
    auditStatement(ctx, { action: "cluster.delete", subject: `cluster/${name}`, detail: { purgedBackups: live.length } }),
  ]);
}

export async function openKubeconfig(ctx: ServiceContext, row: Row): Promise<string> {
  return ctx.secrets.open(row.kubeconfigSealed, KUBECONFIG_AAD(row.name));
}

export async function connectionFor(ctx: ServiceContext, row: Row): Promise<ClusterConnection> {
  return { name: row.name, kubeconfig: await openKubeconfig(ctx, row), etcd: row.etcd, context: row.context };
}

export async function storeFacts(ctx: ServiceContext, name: string, facts: ClusterFacts): Promise<void> {
  await ctx.catalog.db.update(clusters).set({ facts, updatedAt: ctx.clock.now().getTime() }).where(eq(clusters.name, name));
}

/** Discovery through the ClusterAccess port; nothing is stored when it fails. */
export async function discoverCluster(ctx: RequestContext, name: string): Promise<ClusterView> {
  const row = await getClusterRow(ctx, name);
  let facts: ClusterFacts;
  try {
    facts = await ctx.access.discover(await connectionFor(ctx, row));
  } catch (e) {
    // Worker edition: handed to a runner that did not finish in time; the route answers 202.
    if (e instanceof DiscoveryQueued) {
      await ctx.catalog.atomically([
        auditStatement(ctx, { action: "cluster.discover", subject: `cluster/${name}`, detail: { handedToRun: e.run.id } }),
      ]);
      throw e;
    }
    await ctx.catalog.atomically([
      auditStatement(ctx, {
        action: "cluster.discover",
        subject: `cluster/${name}`,
        outcome: "failed",
        detail: { error: (e as Error).message },
      }),
    ]);
    if (e instanceof VaultError) throw e;
    throw new VaultError("upstream_failed", `discovery of cluster '${name}' failed: ${(e as Error).message}`);
  }
  const now = ctx.clock.now().getTime();
  await ctx.catalog.atomically([
    ctx.catalog.db.update(clusters).set({ facts, updatedAt: now }).where(eq(clusters.name, name)),
    auditStatement(ctx, { action: "cluster.discover", subject: `cluster/${name}` }),
  ]);
  return clusterView({ ...row, facts, updatedAt: now });
}
