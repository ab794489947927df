// The control plane's half of the remote-runner protocol (api/routes-runners.ts). A runner claims
// a due run of its pool and gets the cluster's kubeconfig for that run only; it uploads the
// ciphertext in parts that are written straight into the vault as a multipart upload (runners
// hold no storage credentials); the control plane hashes the parts as they arrive (resumable
// SHA-256, state in the catalog) and checks sizes and hashes before the backup becomes available.

import { and, eq } from "drizzle-orm";
import { backups, targets, uploads } from "../catalog/schema.js";
import type { ClusterFacts, EtcdSettings } from "../core/cluster-types.js";
import { VaultError, conflict } from "../core/errors.js";
import { Sha256 } from "../core/sha256.js";
import { hex } from "../crypto/secret-box.js";
import type { Actor, ServiceContext } from "./context.js";
import { printableLine, printableText } from "../core/text.js";
import { abandonCapture, completeCapture, planFromBackup, prepareCapture, type CaptureReport } from "./capture-jobs.js";
import { connectionFor, getClusterRow, storeFacts } from "./clusters.js";
import { claimRun, failAttempt, getRunRow, heartbeat, runView, succeedStatement, type RunRow, type RunView } from "./runs.js";

export const MAX_PART_BYTES = 64 * 1024 * 1024;
export const RECOMMENDED_PART_BYTES = 16 * 1024 * 1024;
export const MAX_CLAIM_WAIT_MS = 25_000;

export interface RunnerJob {
  run: RunView;
  leaseMs: number;
  cluster: { name: string; kubeconfig: string; context: string | null; etcd: EtcdSettings };
  capture: { backupId: string; recipients: string[]; partBytes: number } | null;
}

export const runnerOwner = (actor: Actor, runner: string) => `runner:${actor.id}:${runner}`;

export async function claimForRunner(
  ctx: ServiceContext,
  actor: Actor,
  runner: string,
  waitMs: number,
  signal?: AbortSignal,
): Promise<RunnerJob | null> {
  const owner = runnerOwner(actor, runner);
  const deadline = Date.now() + Math.min(waitMs, MAX_CLAIM_WAIT_MS);
  for (;;) {
    // A runner that hung up (or was killed) must not be handed a run it will never execute.
    if (signal?.aborted) return null;
    const run = await claimRun(ctx, owner, { pool: actor.pool });
    if (run) return jobFor(ctx, run, owner);
    if (Date.now() + 500 > deadline || signal?.aborted) return null;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function jobFor(ctx: ServiceContext, run: RunRow, owner: string): Promise<RunnerJob | null> {
  try {
    const cluster = await getClusterRow(ctx, run.cluster);
    const conn = await connectionFor(ctx, cluster);
    let capture: RunnerJob["capture"] = null;
    if (run.kind === "capture") {
      const plan = await prepareCapture(ctx, run);
      const store = await ctx.storeFor(plan.target);
      if (!store.multipart) throw new VaultError("storage_failed", `target '${plan.target}' cannot take part uploads`);
      const uploadId = await store.multipart.create(plan.objectKey, {
        contentType: "application/octet-stream",
        lockUntil: plan.lockUntil === null ? null : new Date(plan.lockUntil),
        lockMode: plan.lockMode,
      });
      await ctx.catalog.db.insert(uploads).values({
        backupId: plan.backupId,
        runId: run.id,
        uploadId,
        nextPart: 1,
        size: 0,
        hashState: new Sha256().exportState(),
        parts: [],
        createdAt: ctx.clock.now().getTime(),
      });
      capture = { backupId: plan.backupId, recipients: plan.recipients, partBytes: RECOMMENDED_PART_BYTES };
    }
    return {
      run: runView(await getRunRow(ctx, run.id)),
      leaseMs: ctx.settings.leaseMs,
      cluster: { name: conn.name, kubeconfig: conn.kubeconfig, context: conn.context ?? null, etcd: conn.etcd },
      capture,
    };
  } catch (e) {
    const err = e instanceof VaultError ? e : new VaultError("internal", (e as Error).message);
    await failAttempt(ctx, run.id, owner, { code: err.code, message: err.message }, { retryable: err.code === "storage_failed" });
    return null;
  }
}

async function heldRun(ctx: ServiceContext, runId: string, owner: string): Promise<RunRow> {
  const run = await getRunRow(ctx, runId);
  if (run.cancelRequested) throw conflict(`run ${runId} was cancelled`);
  if (run.state !== "running" || run.leaseOwner !== owner) {
    throw conflict(`run ${runId} is not leased to this runner (state ${run.state})`);
  }
  return run;
}

export async function runnerHeartbeat(ctx: ServiceContext, actor: Actor, runner: string, runId: string) {
  const r = await heartbeat(ctx, runId, runnerOwner(actor, runner));
  return { leaseExpiresAt: new Date(r.leaseExpiresAt!).toISOString() };
}

async function uploadOf(ctx: ServiceContext, run: RunRow) {
  if (!run.backupId) throw conflict(`run ${run.id} has no capture in progress`);
  const up = (await ctx.catalog.db.select().from(uploads).where(eq(uploads.backupId, run.backupId)).limit(1))[0];
  const b = (await ctx.catalog.db.select().from(backups).where(eq(backups.id, run.backupId)).limit(1))[0];
  if (!up || !b || b.state !== "uploading") throw conflict(`run ${run.id} has no upload in progress`);
  return { up, b };
}

export async function receivePart(
  ctx: ServiceContext,
  actor: Actor,
  runner: string,
  runId: string,
  partNumber: number,
  body: Uint8Array,
  expectedSha256?: string,
): Promise<{ partNumber: number; size: number; sha256: string }> {
  const run = await heldRun(ctx, runId, runnerOwner(actor, runner));
  const { up, b } = await uploadOf(ctx, run);
  const sha = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>)));
  if (expectedSha256 !== undefined && expectedSha256 !== sha) throw new VaultError("invalid_input", "x-part-sha256: the part arrived damaged; send it again");
  const last = up.parts[up.parts.length - 1];
  // A retried request for the part we already have (the response was lost): same answer again.
  if (last && partNumber === last.partNumber && sha === last.sha256) return { partNumber, size: body.length, sha256: sha };
  if (partNumber !== up.nextPart) throw conflict(`expected part ${up.nextPart}, got ${partNumber}`);
  if (body.length === 0) throw new VaultError("invalid_input", "body: a part must not be empty");
  const store = await ctx.storeFor(b.target);
  const { etag } = await store.multipart!.uploadPart(b.objectKey, up.uploadId, partNumber, body);
  const hasher = Sha256.fromState(up.hashState).update(body);
  const res = await ctx.catalog.db
    .update(uploads)
    .set({
      nextPart: partNumber + 1,
      size: up.size + body.length,
      hashState: hasher.exportState(),
      parts: [...up.parts, { partNumber, etag, size: body.length, sha256: sha }],
    })
    .where(and(eq(uploads.backupId, b.id), eq(uploads.nextPart, partNumber)));
  if (ctx.catalog.changes(res) === 0) throw conflict(`part ${partNumber} was uploaded concurrently`);
  return { partNumber, size: body.length, sha256: sha };
}

export async function completeForRunner(
  ctx: ServiceContext,
  actor: Actor,
  runner: string,
  runId: string,
  report: CaptureReport,
) {
  report = { ...report, pod: printableLine(report.pod) };
  const owner = runnerOwner(actor, runner);
  const run = await heldRun(ctx, runId, owner);
  const { up, b } = await uploadOf(ctx, run);
  const target = (await ctx.catalog.db.select().from(targets).where(eq(targets.name, b.target)).limit(1))[0];
  const plan = planFromBackup(b, target?.objectLock?.mode ?? null);
  const received = Sha256.fromState(up.hashState).digestHex();
  const problem =
    up.parts.length === 0
      ? "no ciphertext was uploaded"
      : implausible(report)
        ? implausible(report)
        : up.size !== report.ciphertext.size
      ? `received ${up.size} bytes of ciphertext, runner reported ${report.ciphertext.size}`
      : received !== report.ciphertext.sha256
        ? `received ciphertext hashes to ${received.slice(0, 16)}…, runner reported ${report.ciphertext.sha256.slice(0, 16)}…`
        : null;
  if (problem) {
    await abandonCapture(ctx, plan, owner, { code: "storage_failed", message: problem });
    throw new VaultError("invalid_input", `ciphertext: ${problem}; the attempt was discarded`);
  }
  const store = await ctx.storeFor(b.target);
  try {
    await store.multipart!.complete(
      b.objectKey,
      up.uploadId,
      up.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })),
    );
  } catch (e) {
    await abandonCapture(ctx, plan, owner, { code: "storage_failed", message: (e as Error).message });
    throw e;
  }
  await ctx.catalog.db.delete(uploads).where(eq(uploads.backupId, b.id));
  return completeCapture(ctx, plan, owner, report);
}

export async function failForRunner(
  ctx: ServiceContext,
  actor: Actor,
  runner: string,
  runId: string,
  err: { code: string; message: string; pod?: string | null },
) {
  const owner = runnerOwner(actor, runner);
  const run = await getRunRow(ctx, runId);
  if (run.leaseOwner !== owner || run.state !== "running") throw conflict(`run ${runId} is not leased to this runner (state ${run.state})`);
  // A stderr tail may hold colour codes or CRLF: cleaned, never refused (the failure must be recorded).
  err = { code: err.code, message: printableText(err.message), pod: err.pod == null ? null : printableLine(err.pod) };
  const b = run.backupId ? (await ctx.catalog.db.select().from(backups).where(eq(backups.id, run.backupId)).limit(1))[0] : undefined;
  if (b && b.state === "uploading") await abandonCapture(ctx, planFromBackup(b), owner, err, { pod: err.pod ?? null });
  else await failAttempt(ctx, runId, owner, err, { pod: err.pod ?? null });
  return runView(await getRunRow(ctx, runId));
}

export async function discoveredForRunner(ctx: ServiceContext, actor: Actor, runner: string, runId: string, facts: ClusterFacts) {
  const owner = runnerOwner(actor, runner);
  const run = await heldRun(ctx, runId, owner);
  if (run.kind !== "discover") throw conflict(`run ${runId} is a ${run.kind}, not a discovery`);
  await storeFacts(ctx, run.cluster, facts);
  await ctx.catalog.atomically([succeedStatement(ctx, runId, owner, { result: facts })]);
  return runView(await getRunRow(ctx, runId));
}

/** Age header bytes allowed around the payload: 32 recipients, post-quantum ones included. */
const MAX_AGE_HEADER = 1024 * 1024;

/**
 * What the control plane can check of a runner's report without the key: an etcd snapshot is
 * pages plus a 32-byte SHA-256 trailer (size % 512 == 32), and its age file is a header plus the
 * plaintext in 64 KiB chunks, each with a 16-byte tag.
 */
function implausible(report: CaptureReport): string | null {
  const plain = report.plaintext.size;
  const cipher = report.ciphertext.size;
  if (!Number.isSafeInteger(plain) || plain < 544 || plain % 512 !== 32) {
    return `plaintext size ${plain} is not an etcd snapshot's (a multiple of 512 bytes plus the 32-byte trailer)`;
  }
  const payload = plain + 16 * Math.ceil(plain / 65536);
  if (!Number.isSafeInteger(cipher) || cipher <= payload || cipher > payload + MAX_AGE_HEADER) {
    return `ciphertext size ${cipher} cannot be the age encryption of ${plain} bytes`;
  }
  return null;
}
