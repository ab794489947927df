// The runner: claims due runs, executes them with a lease kept alive by heartbeats, and reports.
// The same loop runs in-process (Node edition, backend = the services directly) and as the
// remote `etcd-vault runner` (backend = the control plane's HTTP API).

import type { ClusterFacts } from "../core/cluster-types.js";
import { VaultError } from "../core/errors.js";
import type { ClusterAccess, ClusterConnection, Logger } from "../core/ports.js";
import { captureSnapshot, type CiphertextSink } from "../capture/capture-snapshot.js";
import type { CaptureReport } from "../services/capture-jobs.js";

export interface ClaimedJob {
  runId: string;
  kind: "capture" | "discover";
  cluster: string;
  conn: ClusterConnection;
  /** For captures: where the ciphertext goes and to whom it is encrypted. */
  recipients: string[];
  leaseMs: number;
}

export interface RunnerBackend {
  claim(signal: AbortSignal): Promise<ClaimedJob | null>;
  /** Throws (VaultError conflict) when the lease is lost or the run was cancelled. */
  heartbeat(job: ClaimedJob): Promise<void>;
  sink(job: ClaimedJob): CiphertextSink;
  complete(job: ClaimedJob, report: CaptureReport): Promise<void>;
  discovered(job: ClaimedJob, facts: ClusterFacts): Promise<void>;
  fail(job: ClaimedJob, err: { code: string; message: string; pod?: string | null }): Promise<void>;
}

export interface RunnerOptions {
  backend: RunnerBackend;
  access: ClusterAccess;
  log: Logger;
  concurrency: number;
  idleTimeoutMs: number;
  /** How long to wait before polling again when there was no work. */
  idleDelayMs?: number;
}

export class Runner {
  private active = new Map<string, AbortController>();
  private leaseLost = new Set<string>();
  private stopping = false;
  private loopDone: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private readonly stopCtl = new AbortController();

  constructor(private readonly o: RunnerOptions) {}

  get running(): number {
    return this.active.size;
  }

  start(): void {
    this.loopDone ??= this.loop();
  }

  /** Something was queued: poll now instead of at the next interval. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Stop claiming; wait for current runs to finish (or abort them after `graceMs`). */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    this.stopCtl.abort();
    this.wake();
    const deadline = Date.now() + graceMs;
    while (this.active.size && Date.now() < deadline) await sleep(100);
    for (const c of this.active.values()) c.abort();
    while (this.active.size) await sleep(50);
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    let backoff = 0;
    while (!this.stopping) {
      if (this.active.size >= this.o.concurrency) {
        await this.idle(this.o.idleDelayMs ?? 1000);
        continue;
      }
      let job: ClaimedJob | null = null;
      try {
        job = await this.o.backend.claim(this.stopCtl.signal);
        backoff = 0;
      } catch (e) {
        if (this.stopping) break;
        backoff = Math.min(30_000, backoff ? backoff * 2 : 500);
        this.o.log.warn("claiming work failed; retrying", { error: (e as Error).message, retryInMs: backoff });
        await this.idle(backoff);
        continue;
      }
      if (!job) {
        await this.idle(this.o.idleDelayMs ?? 1000);
        continue;
      }
      void this.execute(job);
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private async execute(job: ClaimedJob): Promise<void> {
    const ctl = new AbortController();
    this.active.set(job.runId, ctl);
    const log = this.o.log;
    // Heartbeat at a third of the lease; losing the lease (or a cancel) aborts the capture.
    const every = Math.max(200, Math.floor(job.leaseMs / 3));
    const hb = setInterval(() => {
      this.o.backend.heartbeat(job).catch((e) => {
        if (e instanceof VaultError && e.code === "conflict") {
          log.warn("lease lost or run cancelled; aborting", { run: job.runId, reason: e.message });
          this.leaseLost.add(job.runId);
          ctl.abort();
        } else {
          log.warn("heartbeat failed; will retry", { run: job.runId, error: (e as Error).message });
        }
      });
    }, every);
    try {
      if (job.kind === "discover") {
        const facts = await this.o.access.discover(job.conn, ctl.signal);
        await this.o.backend.discovered(job, facts);
      } else {
        // The facts are refreshed alongside the capture: their API calls (a few round trips to
        // the API server) do not hold back the snapshot's first byte.
        const refresh = refreshFacts(this.o.access, job, ctl.signal, log);
        let result: Awaited<ReturnType<typeof captureSnapshot>>;
        let facts: ClusterFacts | null;
        try {
          result = await captureSnapshot({
            access: this.o.access,
            conn: job.conn,
            recipients: job.recipients,
            sink: this.o.backend.sink(job),
            idleTimeoutMs: this.o.idleTimeoutMs,
            signal: ctl.signal,
            log,
          });
          facts = await refresh.result(FACTS_GRACE_MS);
        } finally {
          refresh.stop();
        }
        if (ctl.signal.aborted) throw new VaultError("cancelled", "run cancelled or lease lost");
        await this.o.backend.complete(job, { ...result, facts });
        log.info("capture succeeded", { run: job.runId, cluster: job.cluster, pod: result.pod, bytes: result.plaintext.size, ms: result.timings.totalMs });
      }
    } catch (e) {
      const err = e instanceof VaultError ? e : new VaultError("internal", (e as Error).message);
      // Aborted by our own shutdown: release the run for another attempt rather than cancel it.
      const shutdown = ctl.signal.aborted && this.stopping && !this.leaseLost.has(job.runId);
      const code = shutdown ? "internal" : ctl.signal.aborted && err.code !== "snapshot_corrupt" ? "cancelled" : err.code;
      const message = shutdown ? "the runner stopped before the run finished; released for a retry" : err.message;
      log.warn("run failed", { run: job.runId, cluster: job.cluster, code, error: message });
      try {
        await this.o.backend.fail(job, { code, message });
      } catch (e2) {
        log.warn("reporting the failure failed (the lease will expire and the run be retried)", { run: job.runId, error: (e2 as Error).message });
      }
    } finally {
      clearInterval(hb);
      this.active.delete(job.runId);
      this.leaseLost.delete(job.runId);
      this.wake();
    }
  }
}

/** How long a finished capture waits for its facts refresh before it completes without it. */
const FACTS_GRACE_MS = 5_000;

/**
 * Discovery for a capture, started now. `result` gives the facts, or null — the backup then keeps
 * the stored ones — when the refresh failed or is still running `graceMs` later; `stop` ends it
 * (also when the run is aborted), e.g. because the capture failed.
 */
export function refreshFacts(access: ClusterAccess, job: ClaimedJob, runSignal: AbortSignal, log: Logger) {
  const ctl = new AbortController();
  const stop = () => ctl.abort();
  runSignal.addEventListener("abort", stop, { once: true });
  const refreshed = access.discover(job.conn, ctl.signal).catch((e: Error) => {
    if (!ctl.signal.aborted) log.warn("refreshing facts for the capture failed; using the stored ones", { cluster: job.cluster, error: e.message });
    return null;
  });
  return {
    async result(graceMs: number): Promise<ClusterFacts | null> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<null>((resolve) => {
        timer = setTimeout(() => {
          log.warn("refreshing facts took too long; using the stored ones", { cluster: job.cluster, waitedMs: graceMs });
          resolve(null);
        }, graceMs);
      });
      try {
        return await Promise.race([refreshed, late]);
      } finally {
        clearTimeout(timer);
      }
    },
    stop() {
      ctl.abort();
      runSignal.removeEventListener("abort", stop);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
