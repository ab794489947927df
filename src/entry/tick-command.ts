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
import { existsSync } from "node:fs";

/** An RFC 3339 date-time with its offset, that names a real instant (no 2026-02-30). */
function rfc3339(text: string, flag: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(text);
  const t = m ? Date.parse(text) : NaN;
  if (!m || Number.isNaN(t)) throw new Error(`${flag}: '${text}' is not an RFC 3339 time (e.g. 2026-11-24T06:00:00Z)`);
  // Date.parse rolls 2026-02-30 over to March: the fields must survive the round trip.
  const offset = /^[Zz]$/.test(m[8]!) ? 0 : (m[8]![0] === "-" ? -1 : 1) * (Number(m[8]!.slice(1, 3)) * 60 + Number(m[8]!.slice(4, 6)));
  const local = new Date(t + offset * 60_000);
  const same =
    local.getUTCFullYear() === Number(m[1]) && local.getUTCMonth() + 1 === Number(m[2]) && local.getUTCDate() === Number(m[3]) && local.getUTCHours() === Number(m[4]) && local.getUTCMinutes() === Number(m[5]);
  if (!same) throw new Error(`${flag}: '${text}' is not a real date and time`);
  return t;
}

export const tickCommand: Command = {
  summary: "run one scheduler tick (via the API with --server, or on a SQLite file with --db)",
  usage: `etcd-vault tick --server URL            token from ETCD_VAULT_TOKEN (operator or admin)
etcd-vault tick --db FILE [--now TIME]   tick a local catalog directly (TIME: RFC 3339, default now)
  [--until TIME --every DURATION]        replay: tick repeatedly from --now to --until

Prints {"created","requeued","deleted","retrying"} as JSON. With --db it plans and re-queues
runs only: it has no vault access, so the retention sweep and the clean-up of dead runners'
uploads are left to the server's ticks (deleted is always 0).`,
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
    const now = values.now ? rfc3339(values.now, "--now") : Date.now();
    // Replay: tick at --now, then every --every until --until (catching a catalog up, or tests).
    const until = values.until ? rfc3339(values.until, "--until") : now;
    if (until < now) throw new Error("--until: must not be before --now");
    const step = values.every ? parseDuration(values.every, "--every") : 0;
    if (until > now && !step) throw new Error("--until needs --every DURATION");
    if (step && !values.until) throw new Error("--every needs --until TIME (the end of the replay)");
    // A mistyped path must not become a new, empty catalog that "ticks" successfully.
    if (!existsSync(values.db!)) throw new Error(`--db: ${values.db} does not exist (etcd-vault migrate --db FILE creates a catalog)`);
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
        // No vault here: neither the retention sweep (it deletes objects) nor the clean-up of dead
        // runners' uploads runs; the server's own ticks do both.
        const result = await tick(ctx, { abandonOrphans: false });
        process.stdout.write(JSON.stringify({ now: new Date(clockNow).toISOString(), ...result }) + "\n");
        if (!step) break;
      }
      return 0;
    } finally {
      catalog.close();
    }
  },
};
