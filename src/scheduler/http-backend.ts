// The runner backend of a remote `etcd-vault runner`: the control plane's runner routes over
// HTTP. The token travels in the Authorization header only; kubeconfigs live in memory for the
// duration of a run and are never logged.

import { VaultError, type ErrorCode } from "../core/errors.js";
import type { Logger } from "../core/ports.js";
import type { CaptureReport } from "../services/capture-jobs.js";
import type { RunnerJob } from "../services/runner-jobs.js";
import type { ClaimedJob, RunnerBackend } from "./runner.js";

export interface HttpBackendOptions {
  server: string;
  token: string;
  runner: string;
  log: Logger;
  /** Override the part size the control plane recommends (tests). */
  partBytes?: number;
}

export function httpBackend(o: HttpBackendOptions): RunnerBackend {
  const partSize = new Map<string, number>();

  async function call(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${o.token}`,
      "x-etcd-vault-runner": o.runner,
      ...(init.headers as Record<string, string> | undefined),
    };
    let payload: BodyInit | undefined = init.body ?? undefined;
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const res = await fetch(new URL(path, o.server), { ...init, method, headers, body: payload });
    if (res.status >= 400) {
      let code: ErrorCode = "upstream_failed";
      let message = `control plane answered ${res.status}`;
      try {
        const j = (await res.json()) as { error?: { code?: ErrorCode; message?: string } };
        if (j.error?.code) code = j.error.code;
        if (j.error?.message) message = j.error.message;
      } catch {
        /* not JSON */
      }
      throw new VaultError(res.status === 409 ? "conflict" : code, message);
    }
    return res;
  }

  /** Retries transport failures and 5xx with back-off; a 4xx answer is final. */
  async function withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let delay = 250;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const final = e instanceof VaultError && e.status < 500 && e.code !== "upstream_failed";
        if (final || attempt >= 6) throw e;
        o.log.warn(`${what} failed; retrying`, { attempt, error: (e as Error).message });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  return {
    async claim(signal) {
      const res = await call("POST", "/v1/runners/claim", { waitSeconds: 20 }, { signal });
      if (res.status === 204) return null;
      const job = (await res.json()) as RunnerJob;
      if (job.capture) partSize.set(job.run.id, o.partBytes ?? job.capture.partBytes);
      const claimed: ClaimedJob = {
        runId: job.run.id,
        kind: job.run.kind,
        cluster: job.cluster.name,
        conn: { name: job.cluster.name, kubeconfig: job.cluster.kubeconfig, context: job.cluster.context, etcd: job.cluster.etcd },
        recipients: job.capture?.recipients ?? [],
        leaseMs: job.leaseMs,
      };
      o.log.info("claimed run", { run: claimed.runId, kind: claimed.kind, cluster: claimed.cluster });
      return claimed;
    },
    async heartbeat(job) {
      await call("POST", `/v1/runners/runs/${job.runId}/heartbeat`);
    },
    sink(job) {
      const size = partSize.get(job.runId) ?? 16 * 1024 * 1024;
      return async (body) => {
        // Parts go up one at a time, in order (the control plane hashes the stream as it
        // arrives), but the next part is read and filled while the previous one is on the wire.
        let buf = new Uint8Array(size);
        let fill = 0;
        let part = 1;
        let inFlight: Promise<void> = Promise.resolve();
        const send = (bytes: Uint8Array) => {
          const n = part++;
          const previous = inFlight;
          inFlight = (async () => {
            await previous;
            await withRetry(`upload of part ${n}`, async () => {
              await call("PUT", `/v1/runners/runs/${job.runId}/parts/${n}`, undefined, {
                body: bytes as Uint8Array<ArrayBuffer>,
                headers: { "content-type": "application/octet-stream" },
              });
            });
          })();
          // Surface a failed part at the next await even if nobody awaits this one yet.
          inFlight.catch(() => {});
          return previous;
        };
        for await (const chunk of body) {
          let off = 0;
          while (off < chunk.length) {
            const take = Math.min(size - fill, chunk.length - off);
            buf.set(chunk.subarray(off, off + take), fill);
            fill += take;
            off += take;
            if (fill === size) {
              // Wait for the part before the one being sent: at most two parts in memory.
              await send(buf);
              buf = new Uint8Array(size);
              fill = 0;
            }
          }
        }
        if (fill > 0 || part === 1) await send(buf.subarray(0, fill));
        await inFlight;
      };
    },
    async complete(job, report: CaptureReport) {
      partSize.delete(job.runId);
      await withRetry("completing the run", () => call("POST", `/v1/runners/runs/${job.runId}/complete`, report));
    },
    async discovered(job, facts) {
      await withRetry("reporting discovery", () => call("POST", `/v1/runners/runs/${job.runId}/discovered`, { facts }));
    },
    async fail(job, err) {
      partSize.delete(job.runId);
      const code = ["exec_failed", "snapshot_corrupt", "timeout", "storage_failed", "cancelled", "upstream_failed"].includes(err.code)
        ? err.code
        : "internal";
      await withRetry("reporting the failure", () =>
        call("POST", `/v1/runners/runs/${job.runId}/fail`, { code, message: err.message.slice(0, 8000), pod: err.pod ?? null }),
      );
    },
  };
}
