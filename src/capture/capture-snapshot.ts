// The runner side of a capture: exec the snapshot command in a Ready etcd pod, verify the stream
// while it flows, encrypt it with age and hand the ciphertext to a sink (the vault in-process, or
// the control plane's part upload for remote runners). One stream, backpressure end to end,
// nothing buffered whole. Pods are tried in API order until one succeeds.

import type { ClusterAccess, ClusterConnection, Logger } from "../core/ports.js";
import type { EtcdPodFact } from "../core/cluster-types.js";
import { VaultError } from "../core/errors.js";
import { ageEncrypt } from "../crypto/age-stream.js";
import { hashingTap, verifyEtcdSnapshot, type VerifiedStats } from "./snapshot-verifier.js";

export interface CaptureResult {
  pod: string;
  plaintext: { size: number; sha256: string };
  ciphertext: { size: number; sha256: string };
  timings: { execFirstByteMs: number | null; streamMs: number | null; uploadMs: number | null; totalMs: number };
}

/** Receives one attempt's ciphertext; must consume it fully or throw (and leave nothing behind). */
export type CiphertextSink = (body: AsyncIterable<Uint8Array>, attempt: { pod: string }) => Promise<void>;

export interface CaptureOptions {
  access: ClusterAccess;
  conn: ClusterConnection;
  recipients: string[];
  sink: CiphertextSink;
  idleTimeoutMs: number;
  signal?: AbortSignal;
  log: Logger;
  onProgress?: (bytes: number) => void;
}

// Errors that say something about the pod (try the next one) rather than about our side.
const POD_ERRORS = new Set(["exec_failed", "timeout", "snapshot_corrupt", "upstream_failed"]);

export async function captureSnapshot(o: CaptureOptions): Promise<CaptureResult> {
  const t0 = performance.now();
  let candidates: EtcdPodFact[];
  try {
    candidates = await o.access.snapshotCandidates(o.conn, o.signal);
  } catch (e) {
    throw e instanceof VaultError ? e : new VaultError("exec_failed", `listing etcd pods failed: ${(e as Error).message}`);
  }
  if (!candidates.length) {
    throw new VaultError(
      "exec_failed",
      `no Ready etcd pod with container '${o.conn.etcd.container}' matches '${o.conn.etcd.selector}' in namespace '${o.conn.etcd.namespace}'`,
    );
  }
  const failures: string[] = [];
  let lastError: VaultError | null = null;
  for (const pod of candidates) {
    if (o.signal?.aborted) throw new VaultError("cancelled", "capture cancelled");
    try {
      return await captureFromPod(o, pod.name, t0);
    } catch (e) {
      const err = e instanceof VaultError ? e : new VaultError("exec_failed", (e as Error).message);
      if (o.signal?.aborted) throw new VaultError("cancelled", "capture cancelled");
      o.log.warn("capture from pod failed", { cluster: o.conn.name, pod: pod.name, code: err.code, error: err.message });
      if (!POD_ERRORS.has(err.code)) throw err;
      failures.push(`${pod.name}: ${err.message}`);
      lastError = err;
    }
  }
  if (failures.length === 1) throw lastError!;
  // Every pod failed: one error listing each pod and its reason; the code of the last failure.
  throw new VaultError(lastError!.code, `all ${failures.length} etcd pods failed — ${failures.join("; ")}`);
}

async function captureFromPod(o: CaptureOptions, pod: string, t0: number): Promise<CaptureResult> {
  const execStart = performance.now();
  const exec = await o.access.execSnapshot(o.conn, pod, { idleTimeoutMs: o.idleTimeoutMs, signal: o.signal });
  const onAbort = () => exec.abort("cancelled");
  o.signal?.addEventListener("abort", onAbort, { once: true });
  let firstByteAt: number | null = null;
  let lastByteAt: number | null = null;
  let plain: VerifiedStats | null = null;
  let cipher: { size: number; sha256: string } | null = null;
  const source = verifyEtcdSnapshot(
    exec.stdout,
    (s) => {
      plain = s;
      lastByteAt = performance.now();
    },
    (bytes) => {
      if (firstByteAt === null) firstByteAt = performance.now();
      o.onProgress?.(bytes);
    },
  );
  const encrypted = hashingTap(ageEncrypt(source, o.recipients), (s) => (cipher = s));
  const uploadStart = performance.now();
  try {
    await o.sink(encrypted, { pod });
    await exec.done;
  } catch (e) {
    exec.abort("capture failed");
    // Whichever failed first (exec or upload), wait for the exec's own verdict to settle quietly.
    exec.done.catch(() => {});
    throw e;
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
  }
  if (!plain || !cipher) throw new VaultError("internal", "capture finished without statistics");
  const p = plain as VerifiedStats;
  const c = cipher as { size: number; sha256: string };
  const end = performance.now();
  return {
    pod,
    plaintext: { size: p.size, sha256: p.sha256 },
    ciphertext: c,
    timings: {
      execFirstByteMs: firstByteAt === null ? null : Math.round(firstByteAt - execStart),
      streamMs: firstByteAt === null || lastByteAt === null ? null : Math.round(lastByteAt - firstByteAt),
      uploadMs: Math.round(end - uploadStart),
      totalMs: Math.round(end - t0),
    },
  };
}
