// The control-plane side of a capture: decide where and to whom a run's backup goes, open the
// backup row, and on the runner's report either make it `available` (sidecar first) or record
// the failure and remove whatever reached the vault. Runtime-neutral: used by the in-process
// runner of the Node edition and by the runner routes of both editions.

import { and, eq, like, sql } from "drizzle-orm";
import { backups, clusters, policies, runs, uploads } from "../catalog/schema.js";
import type { Backup } from "../core/backup-types.js";
import type { ClusterFacts } from "../core/cluster-types.js";
import { VaultError, conflict, invalidInput } from "../core/errors.js";
import { newId } from "../core/ids.js";
import { objectKey } from "../core/storage-url.js";
import { parseRecipients } from "../crypto/recipients.js";
import type { ServiceContext } from "./context.js";
import { backupView } from "./backups.js";
import { getTargetRow } from "./targets.js";
import { failAttempt, succeedStatement, type RunRow } from "./runs.js";
import { sidecarKey } from "./object-keys.js";

export interface CapturePlan {
  runId: string;
  cluster: string;
  backupId: string;
  objectKey: string;
  target: string;
  recipients: string[];
  lockUntil: number | null;
  lockMode: "GOVERNANCE" | "COMPLIANCE" | null;
  createdAt: number;
}

export interface CaptureReport {
  pod: string;
  plaintext: { size: number; sha256: string };
  ciphertext: { size: number; sha256: string };
  timings: { execFirstByteMs: number | null; streamMs: number | null; uploadMs: number | null; totalMs: number | null };
  facts: ClusterFacts | null;
  etcd?: { revision: number | null; keys: number | null };
}

/** request → (policy) → cluster → ETCD_VAULT_DEFAULT_RECIPIENTS; none is an error, never plaintext. */
export function resolveRecipients(
  ctx: ServiceContext,
  given: { request?: string[] | null; policy?: string[] | null; cluster?: string[] | null },
): string[] {
  if (given.request?.length) return parseRecipients(given.request, "recipients");
  if (given.policy?.length) return parseRecipients(given.policy, "recipients");
  if (given.cluster?.length) return parseRecipients(given.cluster, "recipients");
  if (ctx.settings.defaultRecipients.length) return parseRecipients(ctx.settings.defaultRecipients, "ETCD_VAULT_DEFAULT_RECIPIENTS");
  throw invalidInput(
    "recipients",
    "no age recipients: give them in the request, on the cluster or policy, or in ETCD_VAULT_DEFAULT_RECIPIENTS (backups are never stored unencrypted)",
  );
}

export async function prepareCapture(ctx: ServiceContext, run: RunRow): Promise<CapturePlan> {
  const cluster = (await ctx.catalog.db.select().from(clusters).where(eq(clusters.name, run.cluster)).limit(1))[0];
  if (!cluster) throw new VaultError("not_found", `cluster '${run.cluster}' no longer exists`);
  const policy = run.policy
    ? (await ctx.catalog.db.select().from(policies).where(eq(policies.name, run.policy)).limit(1))[0]
    : undefined;
  const recipients = resolveRecipients(ctx, {
    request: run.options?.recipients,
    policy: policy?.recipients,
    cluster: cluster.recipients,
  });
  const targetName = run.options?.target ?? policy?.target ?? "default";
  const target = await getTargetRow(ctx, targetName);
  const now = ctx.clock.now().getTime();
  const backupId = newId(now);
  const prefix = target.kind === "file" ? "" : ""; // stores apply their own prefix
  const key = objectKey(prefix, run.cluster, new Date(now), backupId, ".db.age");
  const lockUntil = target.objectLock ? now + target.objectLock.days * 86_400_000 : null;
  await ctx.catalog.atomically([
    ctx.catalog.db.insert(backups).values({
      id: backupId,
      cluster: run.cluster,
      policy: run.policy,
      runId: run.id,
      state: "uploading",
      createdAt: now,
      target: targetName,
      objectKey: key,
      recipients,
      facts: cluster.facts ?? null,
      etcdVersion: cluster.facts?.etcdVersion ?? null,
      lockedUntil: lockUntil,
      updatedAt: now,
    }),
    ctx.catalog.db.update(runs).set({ backupId }).where(eq(runs.id, run.id)),
  ]);
  return {
    runId: run.id,
    cluster: run.cluster,
    backupId,
    objectKey: key,
    target: targetName,
    recipients,
    lockUntil,
    lockMode: target.objectLock?.mode ?? null,
    createdAt: now,
  };
}

/**
 * The object is in the vault and verified by the runner: check its size in the store, write the
 * sidecar, then flip backup → available and run → succeeded together, only if `owner` still holds
 * the lease (a runner that lost it must not publish a backup).
 */
export async function completeCapture(
  ctx: ServiceContext,
  plan: CapturePlan,
  owner: string,
  report: CaptureReport,
): Promise<Backup> {
  const store = await ctx.storeFor(plan.target);
  const head = await store.head(plan.objectKey);
  if (!head || head.size !== report.ciphertext.size) {
    throw new VaultError(
      "storage_failed",
      `stored object ${plan.objectKey} is ${head ? head.size + " bytes" : "missing"}, runner reported ${report.ciphertext.size}`,
    );
  }
  const now = ctx.clock.now().getTime();
  const row = (await ctx.catalog.db.select().from(backups).where(eq(backups.id, plan.backupId)).limit(1))[0];
  if (!row || row.state !== "uploading") throw conflict(`backup ${plan.backupId} is not uploading`);
  const facts = report.facts ?? row.facts ?? null;
  const finished = {
    ...row,
    state: "available" as const,
    plainSize: report.plaintext.size,
    plainSha256: report.plaintext.sha256,
    cipherSize: report.ciphertext.size,
    cipherSha256: report.ciphertext.sha256,
    // Counts, or nothing: a runner's fraction or out-of-range number is not kept (lists render
    // these columns in SQL, exactly only for integers: catalog/sql-json.ts).
    etcdRevision: countOrNull(report.etcd?.revision),
    etcdKeys: countOrNull(report.etcd?.keys),
    etcdVersion: facts?.etcdVersion ?? row.etcdVersion,
    facts,
    updatedAt: now,
  };
  const view = backupView(finished);
  // Sidecar before the row turns available: the catalog can be rebuilt from the vault alone.
  const json = new TextEncoder().encode(JSON.stringify(view, null, 2) + "\n");
  await store.put(sidecarKey(plan.objectKey), (async function* () { yield json; })(), { contentType: "application/json" });
  const { id: _id, ...set } = finished;
  const stmts = [
    ctx.catalog.db
      .update(backups)
      .set(set)
      .where(
        and(
          eq(backups.id, plan.backupId),
          eq(backups.state, "uploading"),
          sql`exists (select 1 from runs r where r.id = ${plan.runId} and r.lease_owner = ${owner} and r.state = 'running' and r.cancel_requested = 0)`,
        ),
      ),
    succeedStatement(ctx, plan.runId, owner, {
      pod: report.pod,
      bytes: report.plaintext.size,
      timings: report.timings,
      backupId: plan.backupId,
    }, { unlessCancelled: true }),
  ];
  if (facts) stmts.push(ctx.catalog.db.update(clusters).set({ facts }).where(eq(clusters.name, plan.cluster)) as never);
  await ctx.catalog.atomically(stmts);
  const after = (await ctx.catalog.db.select().from(backups).where(eq(backups.id, plan.backupId)).limit(1))[0]!;
  if (after.state !== "available") {
    // Lease lost or run cancelled between upload and commit: the object must not linger.
    await abandonCapture(ctx, plan, null, { code: "cancelled", message: "lease lost before the backup was recorded" }, { failRun: false });
    throw conflict(`run ${plan.runId} is no longer held by this runner; the backup was discarded`);
  }
  return backupView(after);
}

/** Marks the backup failed, removes anything stored under its key, and records the failed attempt. */
export async function abandonCapture(
  ctx: ServiceContext,
  plan: CapturePlan,
  owner: string | null,
  err: { code: string; message: string },
  opts: { failRun?: boolean; pod?: string | null; bytes?: number; timings?: RunRow["timings"] } = {},
): Promise<void> {
  const now = ctx.clock.now().getTime();
  await ctx.catalog.db
    .update(backups)
    .set({ state: "failed", errorMessage: `${err.code}: ${err.message}`, updatedAt: now })
    .where(and(eq(backups.id, plan.backupId), eq(backups.state, "uploading")));
  try {
    const store = await ctx.storeFor(plan.target);
    // A remote runner's multipart upload: abort it so no parts are left behind.
    const up = (await ctx.catalog.db.select().from(uploads).where(eq(uploads.backupId, plan.backupId)).limit(1))[0];
    if (up) {
      await store.multipart?.abort(plan.objectKey, up.uploadId);
      await ctx.catalog.db.delete(uploads).where(eq(uploads.backupId, plan.backupId));
    }
    await store.discardPartial?.(plan.objectKey);
    await store.delete(plan.objectKey);
    await store.delete(sidecarKey(plan.objectKey));
  } catch (e) {
    ctx.log.warn("could not remove a failed capture's object", { key: plan.objectKey, error: (e as Error).message });
  }
  if (opts.failRun !== false) {
    await failAttempt(ctx, plan.runId, owner, err, {
      pod: opts.pod,
      bytes: opts.bytes,
      timings: opts.timings,
      retryable: err.code !== "invalid_input" && err.code !== "not_found",
    });
  }
}

/** Lease owners of the Node edition's in-process runner start with this (entry/node-extensions.ts). */
export const IN_PROCESS_OWNER_PREFIX = "inproc:";

/**
 * At start: backups left `uploading` and runs left `running` by a crash of the in-process runner.
 * Any in-process owner counts, not only this host's: a catalog is served by one Node process at a
 * time, and a replaced pod (the Deployment recreates it) comes back under a new host name.
 */
export async function recoverAfterCrash(ctx: ServiceContext): Promise<{ runs: number; backups: number }> {
  const stale = await ctx.catalog.db
    .select()
    .from(runs)
    .where(and(eq(runs.state, "running"), like(runs.leaseOwner, `${IN_PROCESS_OWNER_PREFIX}%`)));
  let nb = 0;
  for (const r of stale) {
    const b = r.backupId
      ? (await ctx.catalog.db.select().from(backups).where(eq(backups.id, r.backupId)).limit(1))[0]
      : undefined;
    if (b && b.state === "uploading") {
      await abandonCapture(
        ctx,
        planFromBackup(b),
        r.leaseOwner,
        { code: "internal", message: "the service restarted during the capture" },
      );
      nb++;
    } else {
      await failAttempt(ctx, r.id, r.leaseOwner, { code: "internal", message: "the service restarted during the run" });
    }
  }
  return { runs: stale.length, backups: nb + (await abandonOrphans(ctx)) };
}

/** Uploading backups whose run is no longer running (its runner died, the lease expired). */
export async function abandonOrphans(ctx: ServiceContext): Promise<number> {
  let nb = 0;
  const orphans = await ctx.catalog.db.all<{ id: string }>(
    sql`select b.id from backups b join runs r on r.id = b.run_id where b.state = 'uploading' and r.state != 'running'`,
  );
  for (const o of orphans) {
    const b = (await ctx.catalog.db.select().from(backups).where(eq(backups.id, o.id)).limit(1))[0]!;
    await abandonCapture(
      ctx,
      planFromBackup(b),
      null,
      { code: "internal", message: "capture abandoned" },
      { failRun: false },
    );
    nb++;
  }
  return nb;
}

/** Rebuilds a run's capture plan from its backup row (the runner routes keep no memory). */
export function planFromBackup(b: typeof backups.$inferSelect, lockMode: CapturePlan["lockMode"] = null): CapturePlan {
  return {
    runId: b.runId,
    cluster: b.cluster,
    backupId: b.id,
    objectKey: b.objectKey,
    target: b.target,
    recipients: b.recipients,
    lockUntil: b.lockedUntil,
    lockMode,
    createdAt: b.createdAt,
  };
}

const countOrNull = (n: number | null | undefined): number | null => (Number.isSafeInteger(n) && n! >= 0 ? n! : null);
