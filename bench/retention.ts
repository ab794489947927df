// bench:retention — the fleet-wide retention plan over the catalog: planRetention from
// src/services/retention.ts (what POST /v1/retention/plan and the tick's sweep run) over the
// catalog of bench:tick (bench/harness/fleet-catalog.ts: 10,000 clusters, 3 policies,
// 1,000,000 backups, ~970,000 of them available).
//
//   npm run bench:retention [-- --clusters 10000] [--repeat 3] [--catalog FILE]
//
// The service context is the one `etcd-vault serve` builds (buildNodeService, scheduler off), its
// clock at the catalog's "now"; its catalog reads series through the SQLite fast path
// (scanRetentionSeries). The generic path (D1's) is run once as well and must give the same plan.
// Memory: the heap and RSS are sampled every 10 ms while planning; "retained" is what the finished
// plan holds (its keep and delete lists): the live heap after a full GC with the plan, minus the
// same without it. Time is the whole call: every page read from SQLite, every series planned, the
// lists and the summary built; CPU is the process's (GC threads too), and the load average is
// printed with each run because the machine is shared.
//
// Target (issue 6): < 2 s for the fleet; memory bounded (series streamed, the catalog not loaded).

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { buildNodeService } from "../src/entry/node.js";
import type { ServiceContext } from "../src/services/context.js";
import { planRetention, type RetentionPlan } from "../src/services/retention.js";
import { FLEET_NOW, FLEET_POLICIES, clusterName, type FleetCounts } from "./harness/fleet-catalog.js";
import { inProcessServiceConfig } from "./harness/processes.js";
import { obtainFleetCatalog } from "./harness/obtain-catalog.js";
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

interface PlanFigures {
  ms: number;
  /** CPU time of the process during the call (all threads: GC helpers count too). */
  cpuMs: number;
  keep: number;
  delete: number;
  listed: number;
  series: number;
  /** Peak heap while planning, above the heap before the call (MiB). */
  heapPeakMiB: number;
  /** What the finished plan holds: heap after a full GC with the plan, minus before the call (MiB). */
  retainedMiB: number;
  rssPeakMiB: number;
  /** Longest gap between two runs of a 10 ms timer during the plan (event loop held). */
  stallMs: number;
  /** 1-minute load average when the plan finished (the machine is shared). */
  load: number;
  plan: RetentionPlan | null;
}

/**
 * One plan, measured: heap and RSS sampled every 10 ms while it runs. Only numbers leave this
 * frame (unless `keepPlan`), so the plan is garbage once it returns and the next measurement
 * starts from the same heap.
 */
async function measurePlan(ctx: ServiceContext, scope: { policy?: string; cluster?: string }, automatic: boolean, keepPlan = false): Promise<PlanFigures> {
  gc();
  const before = process.memoryUsage().heapUsed;
  let heapPeak = 0;
  let rssPeak = 0;
  // The longest time the event loop went without running the 10 ms sampler: how long a plan
  // holds the server's loop at a stretch.
  let lastSample = performance.now();
  let stall = 0;
  const sample = () => {
    const now = performance.now();
    stall = Math.max(stall, now - lastSample);
    lastSample = now;
    const m = process.memoryUsage();
    heapPeak = Math.max(heapPeak, m.heapUsed);
    rssPeak = Math.max(rssPeak, m.rss);
  };
  const timer = setInterval(sample, 10);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const plan = await planRetention(ctx, scope, { automatic });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(timer);
  sample();
  gc();
  const retained = process.memoryUsage().heapUsed - before;
  const summary = plan.summary as { keep: { count: number }; delete: { count: number }; series: number };
  return {
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    keep: summary.keep.count,
    delete: summary.delete.count,
    listed: plan.keep.length + plan.delete.length,
    series: summary.series,
    heapPeakMiB: (heapPeak - before) / MiB,
    retainedMiB: retained / MiB,
    rssPeakMiB: rssPeak / MiB,
    stallMs: stall,
    load: loadavg()[0]!,
    plan: keepPlan ? plan : null,
  };
}

try {
  printFacts(machineFacts());
  const counts: FleetCounts | null = await obtainFleetCatalog(file, CLUSTERS, values.catalog);
  const config = inProcessServiceConfig(dataDir);
  service = await buildNodeService(config, { quiet: true, clock: { now: () => new Date(FLEET_NOW) } });
  const ctx = service.svc;

  gc();
  const base = process.memoryUsage();
  process.stdout.write(`before planning: heap ${fixed(base.heapUsed / MiB)} MiB, RSS ${fixed(base.rss / MiB)} MiB\n`);

  const rows: Array<Array<string | number>> = [];
  const row = (name: string, f: PlanFigures) => [
    name,
    f.keep + f.delete,
    f.keep,
    f.delete,
    f.listed,
    f.series,
    fixed(f.ms, 0),
    fixed(f.cpuMs, 0),
    fixed((f.keep + f.delete) / (f.ms / 1000) / 1000, 0),
    fixed(f.heapPeakMiB, 0),
    fixed(f.retainedMiB, 0),
    fixed(f.rssPeakMiB, 0),
    fixed(f.stallMs, 0),
    fixed(f.load, 2),
    pass(f.ms < 2000),
  ];
  for (let i = 0; i < REPEAT; i++) rows.push(row(i === 0 ? "preview, first" : `preview, run ${i + 1}`, await measurePlan(ctx, {}, false)));
  // The tick's sweep plans the same way but lists only the deletions (automatic mode).
  for (let i = 0; i < REPEAT; i++) rows.push(row(`sweep (automatic), run ${i + 1}`, await measurePlan(ctx, {}, true)));
  printTable(
    `planRetention over the fleet at ${new Date(FLEET_NOW).toISOString()} (heap figures: MiB above the heap before the call)`,
    ["plan", "backups", "keep", "delete", "listed", "series", "ms", "CPU ms", "k backups/s", "heap peak", "plan retained", "RSS peak MiB", "loop held ms", "load", "< 2 s"],
    rows,
  );
  const last = (await measurePlan(ctx, {}, false, true)).plan!;
  process.stdout.write(`the plan as the API returns it (POST /v1/retention/plan): ${formatSize(Buffer.byteLength(JSON.stringify(last)))} of JSON\n`);
  const deleteReasons = (last.summary as { delete?: { byReason?: Record<string, number> } }).delete?.byReason;
  process.stdout.write(`delete reasons: ${JSON.stringify(deleteReasons)}\n`);

  // The generic path — what the Worker edition runs on D1, which has no scanRetentionSeries: rows
  // paged through the query builder. The same catalog without the capability must give the same
  // plan, byte for byte.
  const genericCtx: ServiceContext = {
    ...ctx,
    catalog: { db: ctx.catalog.db, atomically: (s) => ctx.catalog.atomically(s), changes: (r) => ctx.catalog.changes(r) },
  };
  const generic = await measurePlan(genericCtx, {}, false, true);
  const same = JSON.stringify(generic.plan) === JSON.stringify(last);
  process.stdout.write(
    `generic path (D1's: rows paged through the query builder): ${fixed(generic.ms, 0)} ms (CPU ${fixed(generic.cpuMs, 0)} ms) at load ${fixed(generic.load, 2)}; ` +
      `same plan as the fast path: ${same ? "yes" : "NO"}\n`,
  );
  if (!same) process.exitCode = 1;

  // Scoped plans, as the API serves them for one cluster or one policy.
  const scoped: Array<Array<string | number>> = [];
  for (const [name, scope] of [
    ["one cluster", { cluster: clusterName(Math.floor(CLUSTERS / 2)) }],
    [`one policy (${FLEET_POLICIES[0]!.name})`, { policy: FLEET_POLICIES[0]!.name }],
  ] as const) {
    const f = await measurePlan(ctx, scope, false);
    scoped.push([name, f.keep + f.delete, fixed(f.ms, 1)]);
  }
  printTable("Scoped plans", ["scope", "backups", "ms"], scoped);
  const maxRss = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`process peak RSS over the whole run (start-up included): ${fixed(maxRss, 0)} MiB\n`);
} finally {
  await service?.close();
  rmSync(dir, { recursive: true, force: true });
}
