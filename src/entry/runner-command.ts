// `etcd-vault runner`: a stateless process that executes captures and discoveries for a control
// plane. The token comes from ETCD_VAULT_RUNNER_TOKEN only (a command line shows in `ps`).
import { parseArgs } from "node:util";
import { hostname } from "node:os";
import type { Command } from "./cli-commands.js";
import { KubeClusterAccess } from "../kube/cluster-access.js";
import { Runner } from "../scheduler/runner.js";
import { httpBackend } from "../scheduler/http-backend.js";
import { parseDuration } from "../core/duration.js";
import { createLogger } from "./logger.js";

export const runnerCommand: Command = {
  summary: "execute captures and discoveries for a control plane (remote runner)",
  usage: `etcd-vault runner --server URL [--pool NAME] [--concurrency N] [--name NAME] [--part-size SIZE]

  --server URL       the control plane (Node edition or Worker)
  --pool NAME        informational: the pool is bound to the runner token
  --concurrency N    captures at once (default 2)
  --name NAME        runner name in leases and logs (default <hostname>-<pid>)
  --part-size SIZE   upload part size, 5m..64m (default: what the control plane recommends, 16m)

Environment: ETCD_VAULT_RUNNER_TOKEN (required, a runner token), ETCD_VAULT_EXEC_IDLE_TIMEOUT (60s),
ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS (false: kubeconfig exec plugins are refused).
SIGTERM/SIGINT: stop claiming, let running captures finish (up to 60 s), then exit.`,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        server: { type: "string" },
        pool: { type: "string" },
        concurrency: { type: "string" },
        name: { type: "string" },
        "part-size": { type: "string" },
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
    const partBytes = values["part-size"] ? parseSize(values["part-size"]) : undefined;
    const log = createLogger((process.env.ETCD_VAULT_LOG_LEVEL as never) ?? "info").child({ runner: name });
    const runner = new Runner({
      backend: httpBackend({ server: values.server, token, runner: name, log, partBytes }),
      access: new KubeClusterAccess({ log, allowCredentialCommands: booleanEnv("ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS") }),
      log,
      concurrency,
      idleTimeoutMs: parseDuration(process.env.ETCD_VAULT_EXEC_IDLE_TIMEOUT || "60s", "ETCD_VAULT_EXEC_IDLE_TIMEOUT"),
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

function parseSize(text: string): number {
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(text.trim());
  if (!m) throw new Error(`--part-size: '${text}' is not a size like 8m`);
  const n = Number(m[1]) * { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g"];
  if (n < 5 * 1024 ** 2 || n > 64 * 1024 ** 2) throw new Error("--part-size must be from 5m to 64m (S3 part limits and the control plane's body limit)");
  return n;
}

/** `true` or `false` (default), as the server's config schema takes it; anything else stops the runner. */
function booleanEnv(name: string): boolean {
  const v = process.env[name];
  if (v === undefined || v === "" || v === "false") return false;
  if (v === "true") return true;
  throw new Error(`${name}: must be true or false (got ${JSON.stringify(v.slice(0, 20))})`);
}
