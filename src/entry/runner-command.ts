// `etcd-vault runner`: a stateless process that executes captures and discoveries for a control
// plane. The token comes from ETCD_VAULT_RUNNER_TOKEN only (a command line shows in `ps`).
import { parseArgs } from "node:util";
import { hostname } from "node:os";
import type { Command } from "./cli-commands.js";
import { KubeClusterAccess } from "../kube/cluster-access.js";
import { Runner } from "../scheduler/runner.js";
import { httpBackend } from "../scheduler/http-backend.js";
import { parseDurationMs } from "../core/duration-lite.js";
import { createLogger } from "./logger.js";

export const runnerCommand: Command = {
  summary: "execute captures and discoveries for a control plane (remote runner)",
  usage: `etcd-vault runner --server URL [--pool NAME] [--concurrency N] [--name NAME]

  --server URL       the control plane (Node edition or Worker)
  --pool NAME        informational: the pool is bound to the runner token
  --concurrency N    captures at once (default 2)
  --name NAME        runner name in leases and logs (default <hostname>-<pid>)

Environment: ETCD_VAULT_RUNNER_TOKEN (required, a runner token), ETCD_VAULT_EXEC_IDLE_TIMEOUT (60s).
SIGTERM/SIGINT: stop claiming, let running captures finish (up to 60 s), then exit.`,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        server: { type: "string" },
        pool: { type: "string" },
        concurrency: { type: "string" },
        name: { type: "string" },
        token: { type: "string" },
      },
    });
    if (values.token) throw new Error("--token is not accepted (it would show in ps); set ETCD_VAULT_RUNNER_TOKEN");
    if (!values.server) throw new Error("--server URL is required");
    const token = process.env.ETCD_VAULT_RUNNER_TOKEN;
    if (!token) throw new Error("ETCD_VAULT_RUNNER_TOKEN is not set");
    const concurrency = values.concurrency ? Number(values.concurrency) : 2;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new Error("--concurrency must be 1..64");
    const name = values.name ?? `${hostname()}-${process.pid}`;
    const log = createLogger((process.env.ETCD_VAULT_LOG_LEVEL as never) ?? "info").child({ runner: name });
    const runner = new Runner({
      backend: httpBackend({ server: values.server, token, runner: name, log }),
      access: new KubeClusterAccess({ log }),
      log,
      concurrency,
      idleTimeoutMs: parseDurationMs(process.env.ETCD_VAULT_EXEC_IDLE_TIMEOUT || "60s"),
      idleDelayMs: 200,
    });
    log.info("runner started", { server: values.server, pool: values.pool ?? null, concurrency });
    runner.start();
    await new Promise<void>((resolve) => {
      const stop = () => {
        log.info("stopping: no new claims, finishing current runs");
        runner.stop(60_000).then(resolve, resolve);
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
    log.info("runner stopped");
    return 0;
  },
};
