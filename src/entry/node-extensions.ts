// Route groups and background work the Node edition adds on top of the shared app: the
// in-process runner (and, with the scheduler issue, the tick timer).
import type { OpenAPIHono } from "@hono/zod-openapi";
import { hostname } from "node:os";
import type { AppEnv } from "../api/env.js";
import type { ServiceContext } from "../services/context.js";
import { recoverAfterCrash } from "../services/capture-jobs.js";
import { Runner } from "../scheduler/runner.js";
import { localBackend } from "../scheduler/local-backend.js";
import type { Config } from "./config.js";

export function nodeExtensions(): Array<(app: OpenAPIHono<AppEnv>) => void> {
  return [];
}

/** The lease owner of this process's in-process runner: stable across restarts of one host. */
export const inProcessOwner = () => `inproc:${hostname()}`;

export async function startBackground(
  svc: ServiceContext,
  config: Config,
  setWake: (fn: () => void) => void,
): Promise<{ stop(): Promise<void> }> {
  const owner = inProcessOwner();
  const recovered = await recoverAfterCrash(svc, owner);
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
  return { stop: () => runner.stop() };
}
