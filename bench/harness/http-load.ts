// An HTTP load client in its own process (so its CPU is not the server's event loop):
//
//   tsx bench/harness/http-load.ts --base URL --token T --paths paths.json
//        (--requests N | --seconds S) [--concurrency C]
//
// Requests the paths in paths.json round-robin, C at a time, each timed from the request to its
// last body byte. Stops after N requests or S seconds, or on SIGTERM, and prints one JSON line:
// {count, errors, p50, p90, p99, max, mean, rps, statuses}. Keep-alive connections (undici's pool).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    token: { type: "string" },
    paths: { type: "string" },
    requests: { type: "string" },
    seconds: { type: "string" },
    concurrency: { type: "string", default: "8" },
  },
});
if (!values.base || !values.paths) throw new Error("--base and --paths are required");
const paths = JSON.parse(readFileSync(values.paths, "utf8")) as string[];
const limit = values.requests ? Number(values.requests) : Infinity;
const until = values.seconds ? performance.now() + Number(values.seconds) * 1000 : Infinity;
const headers = values.token ? { authorization: `Bearer ${values.token}` } : undefined;

const latencies: number[] = [];
const statuses: Record<string, number> = {};
let errors = 0;
let next = 0;
let stopping = false;
const t0 = performance.now();

async function worker(): Promise<void> {
  while (!stopping && next < limit && performance.now() < until) {
    const path = paths[next++ % paths.length]!;
    const start = performance.now();
    try {
      const res = await fetch(values.base + path, { headers });
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status !== 200) errors++;
    } catch {
      errors++;
    }
    latencies.push(performance.now() - start);
  }
}

function report(): void {
  const sorted = Float64Array.from(latencies).sort();
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN);
  const seconds = (performance.now() - t0) / 1000;
  const round = (n: number) => Math.round(n * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({
      count: sorted.length,
      errors,
      p50: round(at(50)),
      p90: round(at(90)),
      p99: round(at(99)),
      max: round(sorted[sorted.length - 1] ?? NaN),
      mean: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1)),
      rps: round(sorted.length / seconds),
      statuses,
    })}\n`,
  );
}

process.on("SIGTERM", () => {
  stopping = true;
});
await Promise.all(Array.from({ length: Number(values.concurrency) }, worker));
report();
