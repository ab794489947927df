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
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const cpuMs = (usage: NodeJS.CpuUsage): number => (usage.user + usage.system) / 1000;

/**
 * One pass over the fleet, one series at a time. The planner's CPU time is the difference between
 * a pass that plans and one that only generates (reading the CPU clock per series would cost more
 * than a 100-backup plan; batching series distorts GC).
 */
function pass(plan: boolean) {
  seed = 42;
  const cpuStarted = process.cpuUsage();
  const started = performance.now();
  let planningMs = 0;
  let backups = 0;
  let kept = 0;
  let deleted = 0;
  let heapPeak = heapUsed();
  for (let index = 0; index < SERIES; index++) {
    const series = generateSeries(index);
    backups += series.backups.length;
    if (plan) {
      const planStarted = performance.now();
      const result = planRetention(series, { now: NOW, manualTtlMs: 30 * DAY });
      planningMs += performance.now() - planStarted;
      const summary = summarizePlan(result);
      kept += summary.keep.count;
      deleted += summary.delete.count;
    }
    if (index % 100 === 0) heapPeak = Math.max(heapPeak, heapUsed());
  }
  heapPeak = Math.max(heapPeak, heapUsed());
  return { wallMs: performance.now() - started, cpuMs: cpuMs(process.cpuUsage(cpuStarted)), planningMs, backups, kept, deleted, heapPeak };
}

const heapAtStart = heapUsed();
const generateOnly = pass(false);
const full = pass(true);
const plannerCpuMs = full.cpuMs - generateOnly.cpuMs;
const rate = (ms: number): string => Math.round(full.backups / (ms / 1000)).toLocaleString("en-US");

console.log(`series:               ${SERIES.toLocaleString("en-US")}`);
console.log(`backups:              ${full.backups.toLocaleString("en-US")} (kept ${full.kept.toLocaleString("en-US")}, deleted ${full.deleted.toLocaleString("en-US")}, others not listed)`);
console.log(`planner wall time:    ${full.planningMs.toFixed(0)} ms (${rate(full.planningMs)} backups/s; includes waiting for a core on a busy machine)`);
console.log(`planner CPU time:     ${plannerCpuMs.toFixed(0)} ms (${rate(plannerCpuMs)} backups/s; CPU of generate+plan minus generate-only)`);
console.log(`total incl. generate: ${full.wallMs.toFixed(0)} ms wall, ${full.cpuMs.toFixed(0)} ms CPU`);
console.log(`heap peak:            ${mib(full.heapPeak)} (at start ${mib(heapAtStart)}, sampled every 100 series)`);
console.log(`node ${process.version}`);
