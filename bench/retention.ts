// bench:retention — the fleet-wide retention plan over the catalog: planRetention from
// src/services/retention.ts (what POST /v1/retention/plan and the tick's sweep run) over the
// catalog of bench:tick (bench/harness/fleet-catalog.ts: 10,000 clusters, 3 policies,
// 1,000,000 backups, ~970,000 of them available).
//
//   npm run bench:retention [-- --clusters 10000] [--repeat 3] [--catalog FILE]
//
// The service context is the one `etcd-vault serve` builds (buildNodeService, scheduler off), its
// clock at the catalog's "now". Memory: the heap and RSS are sampled every 10 ms while planning;
// "retained" is the heap still held after a full GC with the plan alive (the plan itself: its
// keep and delete lists). Time is the whole call: every page read from SQLite, every series
// planned, the lists and the summary built.
//
// Target (issue 6): < 2 s for the fleet; memory bounded (series streamed, the catalog not loaded).

import { mkdirSync, mkdtempSync, copyFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { loadConfig } from "../src/entry/config.js";
import { buildNodeService } from "../src/entry/node.js";
import { planRetention } from "../src/services/retention.js";
import { FLEET_NOW, FLEET_POLICIES, clusterName, type FleetCounts } from "./harness/fleet-catalog.js";
import { BENCH_ADMIN_TOKEN, BENCH_MASTER_KEY, runTsx } from "./harness/processes.js";
import { MiB, fixed, formatSize, machineFacts, pass, printFacts, printTable } from "./harness/report.js";

const { values } = parseArgs({
  options: {
    clusters: { type: "string", default: "10000" },
    repeat: { type: "string", default: "3" },
    catalog: { type: "string" },
  },
});
const CLUSTERS = Number(values.clusters);
const REPEAT = Math.max(1, Number(values.repeat));

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const dir = mkdtempSync(join(tmpdir(), "etcd-vault-bench-retention-"));
const dataDir = join(dir, "data");
mkdirSync(dataDir);
const file = join(dataDir, "catalog.db");
let service: Awaited<ReturnType<typeof buildNodeService>> | null = null;

/** Peak heap and RSS seen while `fn` runs (sampled every 10 ms, and once at the end). */
async function measured<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number; heapPeakMiB: number; rssPeakMiB: number }> {
  let heapPeak = 0;
  let rssPeak = 0;
  const sample = () => {
    const m = process.memoryUsage();
    heapPeak = Math.max(heapPeak, m.heapUsed);
    rssPeak = Math.max(rssPeak, m.rss);
  };
  const timer = setInterval(sample, 10);
  const t0 = performance.now();
  const result = await fn();
  const ms = performance.now() - t0;
  clearInterval(timer);
  sample();
  return { result, ms, heapPeakMiB: heapPeak / MiB, rssPeakMiB: rssPeak / MiB };
}

try {
  printFacts(machineFacts());
  let counts: FleetCounts | null = null;
  if (values.catalog) {
    copyFileSync(values.catalog, file);
    process.stdout.write(`catalog: copy of ${values.catalog}\n`);
  } else {
    process.stdout.write(`generating the catalog (${CLUSTERS} clusters) in its own process…\n`);
    counts = JSON.parse(await runTsx("bench/harness/fleet-catalog-main.ts", ["--file", file, "--clusters", String(CLUSTERS)])) as FleetCounts;
    process.stdout.write(
      `catalog: ${counts.clusters} clusters, ${counts.policies} policies, ${counts.backups} backups (${counts.available} available); ` +
        `${formatSize(counts.fileBytes)} on disk; generated in ${fixed(counts.seconds)} s\n`,
    );
  }
  const config = loadConfig({
    ETCD_VAULT_DATA_DIR: dataDir,
    ETCD_VAULT_ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
    ETCD_VAULT_MASTER_KEY: BENCH_MASTER_KEY,
    ETCD_VAULT_SCHEDULER: "off",
    ETCD_VAULT_LOG_LEVEL: "error",
  });
  service = await buildNodeService(config, { quiet: true, clock: { now: () => new Date(FLEET_NOW) } });
  const ctx = service.svc;

  gc();
  const base = process.memoryUsage();
  process.stdout.write(`before planning: heap ${fixed(base.heapUsed / MiB)} MiB, RSS ${fixed(base.rss / MiB)} MiB\n`);

  const rows: Array<Array<string | number>> = [];
  let last: Awaited<ReturnType<typeof planRetention>> | null = null;
  let retainedMiB = 0;
  const times: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    last = null;
    gc();
    const heapBefore = process.memoryUsage().heapUsed / MiB;
    const m = await measured(() => planRetention(ctx, {}));
    last = m.result;
    gc();
    // What the finished plan holds (its keep and delete lists), above the heap before any planning.
    retainedMiB = (process.memoryUsage().heapUsed - base.heapUsed) / MiB;
    times.push(m.ms);
    const planned = last.keep.length + last.delete.length;
    rows.push([
      i === 0 ? "fleet, first" : `fleet, run ${i + 1}`,
      planned,
      last.keep.length,
      last.delete.length,
      String(last.summary.series),
      fixed(m.ms, 0),
      fixed(planned / (m.ms / 1000) / 1000, 0),
      fixed(m.heapPeakMiB - heapBefore, 0),
      fixed(retainedMiB, 0),
      fixed(m.rssPeakMiB, 0),
      pass(m.ms < 2000),
    ]);
  }
  printTable(
    `planRetention over the fleet at ${new Date(FLEET_NOW).toISOString()} (heap figures: MiB above the heap before the call)`,
    ["plan", "backups", "keep", "delete", "series", "ms", "k backups/s", "heap peak", "plan retained", "RSS peak MiB", "< 2 s"],
    rows,
  );
  // The tick's sweep plans the same way but keeps only the delete list (automatic mode).
  {
    last = null;
    gc();
    const heapBefore = process.memoryUsage().heapUsed / MiB;
    const m = await measured(() => planRetention(ctx, {}, { automatic: true }));
    const planned = (m.result.summary as { keep: { count: number }; delete: { count: number } });
    gc();
    const retained = (process.memoryUsage().heapUsed - base.heapUsed) / MiB;
    printTable("The sweep's plan (automatic mode: delete list only, keep counted)", ["plan", "backups", "delete", "ms", "heap peak", "plan retained", "RSS peak MiB", "< 2 s"], [
      [
        "fleet, automatic",
        planned.keep.count + planned.delete.count,
        m.result.delete.length,
        fixed(m.ms, 0),
        fixed(m.heapPeakMiB - heapBefore, 0),
        fixed(retained, 0),
        fixed(m.rssPeakMiB, 0),
        pass(m.ms < 2000),
      ],
    ]);
    last = await planRetention(ctx, {});
  }
  const json = Buffer.byteLength(JSON.stringify(last));
  process.stdout.write(`the plan as the API returns it (POST /v1/retention/plan): ${formatSize(json)} of JSON\n`);
  const deleteReasons = (last!.summary as { delete?: { byReason?: Record<string, number> } }).delete?.byReason;
  process.stdout.write(`delete reasons: ${JSON.stringify(deleteReasons)}\n`);
  last = null;

  // Scoped plans, as the API serves them for one cluster or one policy.
  const scoped: Array<Array<string | number>> = [];
  for (const [name, scope] of [
    ["one cluster", { cluster: clusterName(Math.floor(CLUSTERS / 2)) }],
    [`one policy (${FLEET_POLICIES[0]!.name})`, { policy: FLEET_POLICIES[0]!.name }],
  ] as const) {
    const m = await measured(() => planRetention(ctx, scope));
    scoped.push([name, m.result.keep.length + m.result.delete.length, fixed(m.ms, 1)]);
  }
  printTable("Scoped plans", ["scope", "backups", "ms"], scoped);
  const maxRss = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`process peak RSS over the whole run (start-up included): ${fixed(maxRss, 0)} MiB\n`);
} finally {
  await service?.close();
  rmSync(dir, { recursive: true, force: true });
}
