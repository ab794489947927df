// An HTTP load client in its own process (so its CPU is not the server's event loop):
//
//   tsx bench/harness/http-load.ts --base URL --token T --paths paths.json
//        (--requests N | --seconds S) [--concurrency C] [--rate R]
//
// Requests the paths in paths.json round-robin, C at a time, each timed from the request to its
// last body byte. Without --rate each of the C workers sends its next request as soon as the last
// one ends (closed loop: as fast as the server answers). With --rate, request i is due at
// i / R seconds after the start whatever the answers do (open loop, at most C in flight), and is
// timed from that due moment, so time spent waiting for a free worker counts too. Stops after N requests or S seconds, or on SIGTERM, and prints one JSON line:
// {count, errors, p50, p90, p99, max, mean, rps, statuses, cpuMs} (+ lateP99, unsent with --rate). One keep-alive connection per
// concurrent request (node:http's Agent).
//
// node:http rather than fetch: the client shares the machine's two cores with the server it
// measures, and undici's fetch spent ~3× the CPU per request (Request/Response/Headers objects,
// web streams), which the server's event loop then waited for. cpuMs is this process's own CPU
// time, so a report can say how much of the machine the clients took.
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    token: { type: "string" },
    paths: { type: "string" },
    requests: { type: "string" },
    seconds: { type: "string" },
    concurrency: { type: "string", default: "8" },
    rate: { type: "string" },
  },
});
if (!values.base || !values.paths) throw new Error("--base and --paths are required");
const base = new URL(values.base);
if (base.protocol !== "http:" || base.pathname !== "/") throw new Error("--base must be http://host:port (the paths carry the rest)");
const paths = JSON.parse(readFileSync(values.paths, "utf8")) as string[];
const limit = values.requests ? Number(values.requests) : Infinity;
const until = values.seconds ? performance.now() + Number(values.seconds) * 1000 : Infinity;
const headers: Record<string, string> = values.token ? { authorization: `Bearer ${values.token}` } : {};
const concurrency = Number(values.concurrency);
const rate = values.rate ? Number(values.rate) : 0;
if (!(concurrency >= 1) || !(rate >= 0)) throw new Error("--concurrency must be ≥ 1 and --rate a number of requests per second");
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
/** A request that has not finished after this long counts as an error (a hung server must not hang the bench). */
const REQUEST_TIMEOUT_MS = 30_000;

const latencies: number[] = [];
/** Open loop: how late each request left after its due moment (the client's own delay). */
const lateness: number[] = [];
const statuses: Record<string, number> = {};
let errors = 0;
let next = 0;
let stopping = false;
const t0 = performance.now();
const cpu0 = process.cpuUsage();

/** One GET; resolves with the status once the whole body has arrived. */
function get(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: base.hostname, port: base.port, path, agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      res.on("data", () => {});
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end();
  });
}

async function worker(): Promise<void> {
  while (!stopping && next < limit && performance.now() < until) {
    const index = next++;
    const path = paths[index % paths.length]!;
    let start = performance.now();
    if (rate > 0) {
      const due = t0 + (index * 1000) / rate;
      if (due > start) await new Promise((r) => setTimeout(r, due - start));
      if (stopping || performance.now() >= until) break;
      start = due;
      lateness.push(performance.now() - due);
    }
    try {
      const status = await get(path);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== 200) errors++;
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
  const cpu = process.cpuUsage(cpu0);
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
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      // Open loop only: p99 of how late requests left, and how many fell due but were never sent.
      ...(rate > 0 ? { lateP99: round(Float64Array.from(lateness).sort()[Math.max(0, Math.ceil(0.99 * lateness.length) - 1)] ?? NaN), unsent: Math.max(0, Math.min(limit, Math.floor(((Math.min(stoppedAt, until, performance.now()) - t0) * rate) / 1000) + 1) - lateness.length) } : {}),
    })}\n`,
  );
}

/** When the load was told to stop: requests due after that are not "unsent". */
let stoppedAt = Infinity;
process.on("SIGTERM", () => {
  stopping = true;
  stoppedAt = performance.now();
});
await Promise.all(Array.from({ length: concurrency }, worker));
report();
agent.destroy();
