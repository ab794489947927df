// `etcd-vault tick`: one scheduler tick, either through a running control plane's API
// (`--server URL`, for a Kubernetes CronJob; token in ETCD_VAULT_TOKEN) or directly on a local
// SQLite catalog (`--db FILE [--now TIME]`, for tests and one-off repairs).
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import type { Command } from "./cli-commands.js";
import { openSqliteCatalog } from "../catalog/sqlite.js";
import { createSecretBox } from "../crypto/secret-box.js";
import { tick } from "../scheduler/tick.js";
import { settingsFrom, type ServiceContext } from "../services/context.js";
import { createLogger } from "./logger.js";
import { loadConfig } from "./config.js";
import { parseDuration } from "../core/duration.js";

export const tickCommand: Command = {
  summary: "run one scheduler tick (via the API with --server, or on a SQLite file with --db)",
  usage: `etcd-vault tick --server URL            token from ETCD_VAULT_TOKEN (operator or admin)
etcd-vault tick --db FILE [--now TIME]   tick a local catalog directly (TIME: RFC 3339, default now)
  [--until TIME --every DURATION]        replay: tick repeatedly from --now to --until

Prints {"created","requeued","deleted","retrying"} as JSON.`,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: { server: { type: "string" }, db: { type: "string" }, now: { type: "string" }, until: { type: "string" }, every: { type: "string" } },
    });
    if (!!values.server === !!values.db) throw new Error("give exactly one of --server URL or --db FILE");
    if (values.server) {
      const token = process.env.ETCD_VAULT_TOKEN;
      if (!token) throw new Error("ETCD_VAULT_TOKEN is not set (an operator token for the server)");
      const res = await fetch(new URL("/v1/tick", values.server), { method: "POST", headers: { authorization: `Bearer ${token}` } });
      const text = await res.text();
      if (!res.ok) throw new Error(`server answered ${res.status}: ${text.slice(0, 500)}`);
      process.stdout.write(text.trim() + "\n");
      return 0;
    }
    const now = values.now ? Date.parse(values.now) : Date.now();
    if (Number.isNaN(now)) throw new Error(`--now: '${values.now}' is not an RFC 3339 time`);
    // Replay: tick at --now, then every --every until --until (catching a catalog up, or tests).
    const until = values.until ? Date.parse(values.until) : now;
    if (Number.isNaN(until) || until < now) throw new Error(`--until: must be an RFC 3339 time not before --now`);
    const step = values.every ? parseDuration(values.every, "--every") : 0;
    if (until > now && !step) throw new Error("--until needs --every DURATION");
    const config = loadConfig(process.env);
    const catalog = openSqliteCatalog(values.db!);
    let clockNow = now;
    try {
      const ctx: ServiceContext = {
        catalog,
        // Ticking plans runs and re-queues; it opens no secrets, so a throwaway key suffices.
        secrets: await createSecretBox([new Uint8Array(randomBytes(32))]),
        clock: { now: () => new Date(clockNow) },
        log: createLogger("warn", (l) => process.stderr.write(l + "\n")),
        access: {
          discover: async () => { throw new Error("no cluster access in --db mode"); },
          snapshotCandidates: async () => { throw new Error("no cluster access in --db mode"); },
          execSnapshot: async () => { throw new Error("no cluster access in --db mode"); },
        },
        storeFor: async () => { throw new Error("no vault access in --db mode"); },
        settings: settingsFrom(config, config.publicUrl),
        notifyWork: () => {},
        randomBytes: (n) => new Uint8Array(randomBytes(n)),
      };
      for (; clockNow <= until; clockNow += step || 1) {
        const result = await tick(ctx);
        process.stdout.write(JSON.stringify({ now: new Date(clockNow).toISOString(), ...result }) + "\n");
        if (!step) break;
      }
      return 0;
    } finally {
      catalog.close();
    }
  },
};
