// Pure retention planner over 10,000 series / 1,000,000 backups, generated in memory one series at
// a time (never all at once), the way the sweep walks the catalog. Prints total time, backups/s
// and the heap peak. Run: npx tsx bench/retention-planner.ts [series] [backupsPerSeries]
// Results: docs/performance.md, "Retention planner (pure)".

import { planRetention, summarizePlan, type RetentionBackup, type RetentionRules, type RetentionSeries } from "../src/core/retention-planner.js";

const SERIES = Number(process.argv[2] ?? 10_000);
const PER_SERIES = Number(process.argv[3] ?? 100);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.parse("2026-11-22T12:00:00Z");

const base = { last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, withinMs: 0 };
// Three policies, as a fleet would have them: every hour / every 6 h / daily, each in its own zone.
const POLICIES: Array<{ name: string; every: number; timezone: string; rules: RetentionRules }> = [
  { name: "hourly-prod", every: HOUR, timezone: "Europe/Berlin", rules: { ...base, last: 6, hourly: 24, daily: 7 } },
  { name: "six-hourly", every: 6 * HOUR, timezone: "America/New_York", rules: { ...base, last: 4, daily: 7, weekly: 4, monthly: 12 } },
  { name: "nightly", every: DAY, timezone: "Asia/Kolkata", rules: { ...base, daily: 14, weekly: 8, monthly: 12, yearly: 3, withinMs: 3 * DAY } },
];

// Deterministic pseudo-random numbers (mulberry32), so runs are comparable.
let seed = 42;
const random = (): number => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

function generateSeries(index: number): RetentionSeries {
  const manual = index % 20 === 19; // 5 % of series are a cluster's manual backups
  const policy = POLICIES[index % POLICIES.length]!;
  const every = manual ? 2 * DAY : policy.every;
  const backups: RetentionBackup[] = new Array(PER_SERIES);
  for (let i = 0; i < PER_SERIES; i++) {
    const createdAt = NOW - i * every - Math.floor(random() * 10 * 60_000) - 60_000;
    const roll = random();
    backups[i] = {
      id: `01J${String(index).padStart(6, "0")}${String(i).padStart(4, "0")}`,
      createdAt: new Date(createdAt).toISOString(),
      state: roll < 0.02 ? "failed" : roll < 0.025 ? "uploading" : "available",
      hold: roll > 0.995,
      lockedUntil: roll > 0.95 && roll <= 0.995 ? new Date(NOW + DAY).toISOString() : null,
    };
  }
  return {
    cluster: `cluster-${index}`,
    policy: manual ? null : policy.name,
    rules: manual ? null : policy.rules,
    timezone: policy.timezone,
    backups,
  };
}

const heapUsed = (): number => process.memoryUsage().heapUsed;
const started = performance.now();
let planningMs = 0;
let planningCpuUs = 0; // process CPU time (all threads, GC included) spent inside the planner
let backups = 0;
let kept = 0;
let deleted = 0;
let heapPeak = heapUsed();
const heapAtStart = heapPeak;

for (let index = 0; index < SERIES; index++) {
  const series = generateSeries(index);
  const planStarted = performance.now();
  const cpuStarted = process.cpuUsage();
  const plan = planRetention(series, { now: NOW, manualTtlMs: 30 * DAY });
  const cpu = process.cpuUsage(cpuStarted);
  planningMs += performance.now() - planStarted;
  planningCpuUs += cpu.user + cpu.system;
  const summary = summarizePlan(plan);
  backups += series.backups.length;
  kept += summary.keep.count;
  deleted += summary.delete.count;
  if (index % 100 === 0) heapPeak = Math.max(heapPeak, heapUsed());
}
heapPeak = Math.max(heapPeak, heapUsed());
const totalMs = performance.now() - started;

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
console.log(`series:               ${SERIES.toLocaleString("en-US")}`);
console.log(`backups:              ${backups.toLocaleString("en-US")} (kept ${kept.toLocaleString("en-US")}, deleted ${deleted.toLocaleString("en-US")}, others not listed)`);
console.log(`planner time:         ${planningMs.toFixed(0)} ms (${Math.round(backups / (planningMs / 1000)).toLocaleString("en-US")} backups/s)`);
console.log(`planner CPU time:     ${(planningCpuUs / 1000).toFixed(0)} ms (wall time above also counts waiting for a core on a busy machine)`);
console.log(`total incl. generate: ${totalMs.toFixed(0)} ms (${Math.round(backups / (totalMs / 1000)).toLocaleString("en-US")} backups/s)`);
console.log(`heap peak:            ${mib(heapPeak)} (at start ${mib(heapAtStart)}, sampled every 100 series)`);
console.log(`node ${process.version}`);
