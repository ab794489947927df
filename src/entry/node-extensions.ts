// Route groups and background work the Node edition adds on top of the shared app: the
// in-process runner (and, with the scheduler issue, the tick timer).
import type { OpenAPIHono } from "@hono/zod-openapi";
import { hostname } from "node:os";
import type { AppEnv, RemoteAddrFn } from "../api/env.js";
import { linkRoutes } from "../api/routes-links.js";
import type { ServiceContext } from "../services/context.js";
import { IN_PROCESS_OWNER_PREFIX, recoverAfterCrash } from "../services/capture-jobs.js";
import { Runner } from "../scheduler/runner.js";
import { localBackend } from "../scheduler/local-backend.js";
import type { Config } from "./config.js";
import { policyRoutes } from "../api/routes-policies.js";
import { tick } from "../scheduler/tick.js";
import { retentionSweep } from "../services/retention.js";

export function nodeExtensions(remoteAddr: RemoteAddrFn): Array<(app: OpenAPIHono<AppEnv>) => void> {
  return [policyRoutes(retentionSweep), linkRoutes(remoteAddr)];
}

export const TICK_INTERVAL_MS = 30_000;

/** The lease owner of this process's in-process runner (start-up recovery takes any `inproc:` owner). */
export const inProcessOwner = () => `${IN_PROCESS_OWNER_PREFIX}${hostname()}`;

export async function startBackground(
  svc: ServiceContext,
  config: Config,
  setWake: (fn: () => void) => void,
): Promise<{ stop(): Promise<void> }> {
  const owner = inProcessOwner();
  const recovered = await recoverAfterCrash(svc);
  if (recovered.runs || recovered.backups) svc.log.warn("recovered from an unclean stop", recovered);
  if (config.ETCD_VAULT_SCHEDULER === "off") return { stop: async () => {} };
  const runner = new Runner({
    backend: localBackend(svc, owner),
    access: svc.access,
    log: svc.log,
    concurrency: config.ETCD_VAULT_CONCURRENCY,
    idleTimeoutMs: config.ETCD_VAULT_EXEC_IDLE_TIMEOUT,
  });
  setWake(() => runner.wake());
  runner.start();
  let ticking = false;
  let ticks = 0;
  const timer = setInterval(async () => {
    if (ticking) return;
    ticking = true;
    try {
      // The retention sweep plans the whole fleet (seconds at a million backups): every 10th
      // tick, i.e. every 5 minutes, is plenty for deletions that are never urgent.
      const r = await tick(svc, ticks++ % 10 === 0 ? { sweep: retentionSweep } : {});
      if (r.created || r.requeued || r.deleted) svc.log.info("tick", { ...r });
    } catch (e) {
      svc.log.error("tick failed", { error: (e as Error).message });
    } finally {
      ticking = false;
    }
  }, TICK_INTERVAL_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await runner.stop();
    },
  };
}
