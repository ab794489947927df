// bench:tick — the scheduler's tick and a catalog read under load, on a fleet-sized SQLite catalog
// (bench/harness/fleet-catalog.ts: 10,000 clusters × 3 policies, 1,000,000 backups and their runs).
//
//   npm run bench:tick [-- --clusters 10000] [--requests 2000] [--concurrency 8] [--repeat 5]
//                      (the listing is measured at concurrency 1, 4 and --concurrency)
//                      [--load-rate 200]  requests/s of the steady load (below)
//                      [--catalog FILE]   reuse a generated catalog (copied; the copy is ticked)
//
// 1. Tick: the service is built exactly as `etcd-vault serve` builds it (buildNodeService; the
//    scheduler timer off so nothing else touches the catalog), its clock set to a moment when all
//    30,000 (policy, cluster) pairs are due. We time tick(ctx) — due slots found, 30,000 runs
//    inserted — then a second tick (nothing new). The full tick is repeated after deleting the runs
//    it created: the first is a fresh process, the others are warm, like a timer every 30 s.
// 2. Reads: the same app served by @hono/node-server; `GET /v1/backups?cluster=X&limit=20` for
//    random clusters from a client in its own process (bench/harness/http-load.ts), three ways:
//    alone; under a steady load — a second client process sending 8 other list routes (pages of
//    50–100 rows) at --load-rate requests/s whatever the answers, as an API in use sees; and under a
//    saturating load — 4 clients of those routes with no pause, which keeps the server's one
//    event loop busy all the time (a capacity figure: the listing then queues behind it).
//    Latency is request → last body byte.
//
// Targets (issue 5): tick < 250 ms; p99 of the cluster listing < 20 ms with 1M backups.

import { serve } from "@hono/node-server";
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildNodeService } from "../src/entry/node.js";
import { tick } from "../src/scheduler/tick.js";
import { freePort } from "../test/support/etcd.js";
import { FLEET_NOW, FLEET_POLICIES, clusterName, type FleetCounts } from "./harness/fleet-catalog.js";
import { BENCH_ADMIN_TOKEN, inProcessServiceConfig, spawnTsx } from "./harness/processes.js";
import { obtainFleetCatalog } from "./harness/obtain-catalog.js";
import { fixed, machineFacts, pass, printFacts, printTable } from "./harness/report.js";

const { values } = parseArgs({
  options: {
    clusters: { type: "string", default: "10000" },
    requests: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "8" },
    repeat: { type: "string", default: "5" },
    catalog: { type: "string" },
    "load-rate": { type: "string", default: "200" },
  },
});
const LOAD_RATE = Number(values["load-rate"]);
const CLUSTERS = Number(values.clusters);
const REPEAT = Math.max(1, Number(values.repeat));

interface LoadResult {
  count: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  rps: number;
  statuses: Record<string, number>;
  /** The client process's own CPU time. */
  cpuMs: number;
  /** Open-loop loads: p99 of how late the client sent (its own delay) and requests never sent. */
  lateP99?: number;
  unsent?: number;
}

const dir = mkdtempSync(join(tmpdir(), "etcd-vault-bench-tick-"));
const dataDir = join(dir, "data");
mkdirSync(dataDir);
const file = join(dataDir, "catalog.db");
let service: Awaited<ReturnType<typeof buildNodeService>> | null = null;
let server: ReturnType<typeof serve> | null = null;

try {
  printFacts(machineFacts());
  const counts: FleetCounts | null = await obtainFleetCatalog(file, CLUSTERS, values.catalog);
  // The catalog was written a moment ago (generated or copied): ~1.7 GB of dirty page cache. The
  // first checkpoint's fsync — in the first tick's commit — would flush all of it, so the first
  // tick measured writing back the bench's own copy (~0.8 s here), not the tick. Flushed now.
  const flushStart = performance.now();
  const fd = openSync(file, "r+");
  fsyncSync(fd);
  closeSync(fd);
  process.stdout.write(`catalog flushed to disk in ${fixed((performance.now() - flushStart) / 1000, 1)} s (not timed as part of any tick)\n`);

  let now = FLEET_NOW;
  const config = inProcessServiceConfig(dataDir);
  service = await buildNodeService(config, { quiet: true, clock: { now: () => new Date(now) } });
  const ctx = service.svc;
  const sqlite = service.catalog.sqlite;

  // ---- 1. tick ----------------------------------------------------------------------------------
  // Wall time is the figure; this process's CPU time is printed next to it, because on a shared
  // machine the wall time also counts the time other work held the cores.
  const timeTick = async () => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await tick(ctx);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    return { ms, cpuMs: (cpu.user + cpu.system) / 1000, ...r };
  };
  const full: Array<{ ms: number; cpuMs: number; created: number }> = [];
  const noop: Array<{ ms: number; cpuMs: number; created: number }> = [];
  for (let i = 0; i < REPEAT; i++) {
    if (i > 0) {
      // Back to "all due": drop the runs the previous tick created.
      sqlite.prepare("delete from runs where created_at = ? and state = 'queued' and policy is not null").run(now);
    }
    full.push(await timeTick());
    noop.push(await timeTick());
  }
  const pairs = CLUSTERS * FLEET_POLICIES.length;
  const warm = full.slice(1).map((t) => t.ms).sort((a, b) => a - b);
  const warmMedian = warm.length ? warm[Math.floor(warm.length / 2)]! : full[0]!.ms;
  const noopMedian = noop.map((t) => t.ms).sort((a, b) => a - b)[Math.floor(noop.length / 2)]!;
  printTable(`Tick over ${CLUSTERS} clusters × ${FLEET_POLICIES.length} policies at ${new Date(now).toISOString()}`, ["tick", "runs created", "ms", "target < 250 ms"], [
    ["first (fresh process, all pairs due)", full[0]!.created, fixed(full[0]!.ms), pass(full[0]!.ms < 250)],
    [`all pairs due, warm (median of ${warm.length})`, full[1]?.created ?? full[0]!.created, fixed(warmMedian), pass(warmMedian < 250)],
    [`nothing new (median of ${noop.length})`, noop[0]!.created, fixed(noopMedian), pass(noopMedian < 250)],
  ]);
  if (full.some((t) => t.created !== pairs)) process.stdout.write(`WARNING: expected ${pairs} runs per full tick, got ${full.map((t) => t.created).join(", ")}\n`);
  process.stdout.write(`all full ticks (ms): ${full.map((t) => fixed(t.ms)).join(", ")}; no-op ticks (ms): ${noop.map((t) => fixed(t.ms)).join(", ")}\n`);
  process.stdout.write(`CPU time of this process (ms): full ${full.map((t) => fixed(t.cpuMs)).join(", ")}; no-op ${noop.map((t) => fixed(t.cpuMs)).join(", ")}\n`);
  // The machine is shared: the load next to each figure says how far to trust it.
  process.stdout.write(`load average after the ticks: ${loadavg().map((l) => fixed(l, 2)).join(" ")}\n`);

  // ---- 2. reads under load --------------------------------------------------------------------------
  const port = await freePort();
  server = serve({ fetch: service.app.fetch, port, hostname: "127.0.0.1" });
  const base = `http://127.0.0.1:${port}`;
  const random = (() => {
    let s = 7;
    return (n: number) => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s % n;
    };
  })();
  const requests = Number(values.requests);
  const measured = Array.from({ length: requests }, () => `/v1/backups?cluster=${clusterName(random(CLUSTERS))}&limit=20`);
  const hammer: string[] = [];
  for (let i = 0; i < 500; i++) {
    const c = clusterName(random(CLUSTERS));
    const p = FLEET_POLICIES[i % FLEET_POLICIES.length]!.name;
    hammer.push(
      [
        `/v1/backups?limit=50`,
        `/v1/backups?policy=${p}&limit=100`,
        `/v1/runs?cluster=${c}&limit=50`,
        `/v1/backups?cluster=${c}&state=available&limit=100`,
        `/v1/backups?manual=true&limit=50`,
        `/v1/runs?state=queued&limit=100`,
        `/v1/clusters?limit=100`,
        `/v1/backups?state=failed&limit=50`,
      ][i % 8]!,
    );
  }
  // The HTTP floor: GET /healthz (no token, no catalog) at the same concurrency under the same
  // loads — what any route costs on this machine's two cores with the clients beside the server.
  const floorFile = join(dir, "floor.json");
  writeFileSync(floorFile, JSON.stringify(["/healthz"]));
  const measuredFile = join(dir, "measured.json");
  const hammerFile = join(dir, "hammer.json");
  writeFileSync(measuredFile, JSON.stringify(measured));
  writeFileSync(hammerFile, JSON.stringify(hammer));
  const client = (pathsFile: string, extra: string[]) =>
    spawnTsx("bench/harness/http-load.ts", ["--base", base, "--token", BENCH_ADMIN_TOKEN, "--paths", pathsFile, ...extra]);

  // Warm-up (JIT, statement cache, page cache), not counted.
  await client(measuredFile, ["--requests", "300", "--concurrency", values.concurrency!]).done;
  const levels = [...new Set([1, 4, Number(values.concurrency)])].sort((a, b) => a - b);
  const alone: Array<[number, LoadResult]> = [];
  const floors: Array<[string, number, LoadResult]> = [];
  const measure = async (mode: string, into: Array<[number, LoadResult]>) => {
    for (const c of levels) {
      into.push([c, JSON.parse(await client(measuredFile, ["--requests", String(requests), "--concurrency", String(c)]).done) as LoadResult]);
      floors.push([mode, c, JSON.parse(await client(floorFile, ["--requests", String(requests), "--concurrency", String(c)]).done) as LoadResult]);
    }
  };
  await measure("alone", alone);
  const underLoad = async (mode: string, load: ReturnType<typeof client>) => {
    await new Promise((r) => setTimeout(r, 1000));
    const results: Array<[number, LoadResult]> = [];
    await measure(mode, results);
    return { results, load: JSON.parse(await load.finish()) as LoadResult };
  };
  const steady = await underLoad(`steady load (${LOAD_RATE}/s)`, client(hammerFile, ["--seconds", "600", "--concurrency", "16", "--rate", String(LOAD_RATE)]));
  const saturating = await underLoad("saturating load", client(hammerFile, ["--seconds", "600", "--concurrency", "4"]));
  process.stdout.write(`load average after the reads: ${loadavg().map((l) => fixed(l, 2)).join(" ")}\n`);

  const row = (name: string, c: number, r: LoadResult) => [name, c, r.count, r.errors, fixed(r.p50, 2), fixed(r.p90, 2), fixed(r.p99, 2), fixed(r.max, 1), fixed(r.rps, 0), fixed(r.cpuMs / r.count, 2), pass(r.p99 < 20)];
  printTable(
    `GET /v1/backups?cluster=X&limit=20 over ${counts ? counts.backups : "the"} backups (ms; random clusters)`,
    ["run", "concurrency", "requests", "errors", "p50", "p90", "p99", "max", "req/s", "client CPU ms/req", "p99 < 20 ms"],
    [
      ...alone.map(([c, r]) => row("alone", c, r)),
      ...steady.results.map(([c, r]) => row(`steady load (${LOAD_RATE}/s)`, c, r)),
      ...saturating.results.map(([c, r]) => row("saturating load", c, r)),
    ],
  );
  printTable(
    "The HTTP floor: GET /healthz (no token, no catalog) measured the same way, right after each listing row",
    ["run", "concurrency", "requests", "errors", "p50", "p90", "p99", "max", "req/s", "listing p99 minus floor p99"],
    floors.map(([mode, c, r]) => {
      const listing = (mode === "alone" ? alone : mode === "saturating load" ? saturating.results : steady.results).find(([lc]) => lc === c)![1];
      return [mode, c, r.count, r.errors, fixed(r.p50, 2), fixed(r.p90, 2), fixed(r.p99, 2), fixed(r.max, 1), fixed(r.rps, 0), fixed(listing.p99 - r.p99, 2)];
    }),
  );
  const loadRow = (name: string, r: LoadResult) => [
    name, r.count, r.errors, fixed(r.p50, 2), fixed(r.p90, 2), fixed(r.p99, 2), fixed(r.max, 1), fixed(r.rps, 0),
    r.lateP99 === undefined ? "—" : fixed(r.lateP99, 2), r.unsent ?? "—",
  ];
  printTable("The loads (8 other list routes, round-robin)", ["load", "requests", "errors", "p50", "p90", "p99", "max", "req/s", "sent late p99 ms", "unsent"], [
    loadRow(`steady: ${LOAD_RATE}/s, open loop, ≤ 16 in flight`, steady.load),
    loadRow("saturating: 4 clients, no pause", saturating.load),
  ]);
  const all = [...alone, ...steady.results, ...saturating.results];
  if (steady.load.errors || saturating.load.errors || all.some(([, r]) => r.errors)) {
    process.stdout.write(`statuses: steady load ${JSON.stringify(steady.load.statuses)}, saturating load ${JSON.stringify(saturating.load.statuses)}\n`);
  }
  // The slowest of the hammer's routes, one by one (what "under load" was made of).
  // One request first to open the connection and warm this process's fetch (its first request
  // took ~25 ms whatever the route, which the table showed against the first route).
  await (await fetch(base + "/healthz")).arrayBuffer();
  const perRoute: Array<[string, number]> = [];
  for (const path of hammer.slice(0, 8)) {
    const t0 = performance.now();
    const res = await fetch(base + path, { headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` } });
    await res.arrayBuffer();
    perRoute.push([path.replace(/cluster-\d+/, "X"), performance.now() - t0]);
  }
  printTable("One request per load route, alone (ms)", ["route", "ms"], perRoute.map(([p, ms]) => [p, fixed(ms, 2)]));
} finally {
  server?.close();
  await service?.close();
  rmSync(dir, { recursive: true, force: true });
}
