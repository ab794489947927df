// A fleet-sized SQLite catalog for bench:tick and bench:retention: 10,000 clusters, 3 policies that
// each match every cluster (30,000 pairs), and 1,000,000 backups with one run each — the shape a
// year of a real fleet leaves behind, written with raw better-sqlite3 in one transaction.
//
// The schema comes from the real migrations (openSqliteCatalog), so every column and index is the
// one the service uses. Secondary indexes are dropped for the bulk insert and recreated from their
// own stored SQL afterwards (faster than maintaining them row by row; same definitions). No
// ANALYZE: the service never runs it, so the planner here sees what it sees in production.
//
// Per cluster: 40 hourly + 30 six-hourly + 25 nightly scheduled backups, each one slot before the
// next, the latest slot of every policy left without a run (so at FLEET_NOW all 30,000 pairs are
// due), and 5 manual backups spread over 60 days. States: ~97 % available, 2 % failed, 1 % deleted;
// 0.1 % held; 3 % object-locked (some locks still running at FLEET_NOW).

import Database from "better-sqlite3";
import { openSqliteCatalog } from "../../src/catalog/sqlite.js";
import { spreadHash } from "../../src/services/membership.js";
import { formatRetention, parseRetention } from "../../src/core/retention-planner.js";
import { Schedule, spreadOffsetMs } from "../../src/core/schedule.js";
import { parseDuration } from "../../src/core/duration.js";
import { formatDuration } from "../../src/core/duration.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The moment bench:tick ticks at and bench:retention plans at. */
export const FLEET_NOW = Date.parse("2026-11-22T12:45:00Z");

/** A valid X25519 recipient (the catalog only stores it; nothing here encrypts). */
export const FLEET_RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

export interface FleetPolicy {
  name: string;
  schedule: string;
  timezone: string;
  spread: string;
  retention: Record<string, number | string>;
  /** Backups per cluster generated for this policy (one per slot, newest slot excluded). */
  history: number;
}

export const FLEET_POLICIES: FleetPolicy[] = [
  { name: "hourly", schedule: "0 * * * *", timezone: "UTC", spread: "10m", retention: { last: 6, hourly: 24, daily: 7 }, history: 40 },
  {
    name: "six-hourly",
    schedule: "0 */6 * * *",
    timezone: "Europe/Berlin",
    spread: "30m",
    retention: { last: 4, daily: 7, weekly: 4, monthly: 12 },
    history: 30,
  },
  {
    name: "nightly",
    schedule: "0 3 * * *",
    timezone: "America/New_York",
    spread: "1h",
    retention: { daily: 14, weekly: 8, monthly: 12, yearly: 3, within: "3d" },
    history: 25,
  },
];
export const MANUAL_PER_CLUSTER = 5;

export interface FleetShape {
  clusters: number;
}

export interface FleetCounts {
  clusters: number;
  policies: number;
  pairs: number;
  backups: number;
  runs: number;
  available: number;
  fileBytes: number;
  seconds: number;
}

export const clusterName = (i: number): string => `cluster-${String(i).padStart(5, "0")}`;

// Deterministic pseudo-random numbers (mulberry32): the same catalog on every run.
function prng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID for `ms` whose random part carries a sequence number: unique and time-sorted. */
function ulidAt(ms: number, seq: number, random: () => number): string {
  let out = "";
  let t = ms;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32] + out;
    t = Math.floor(t / 32);
  }
  let s = seq;
  let tail = "";
  for (let i = 0; i < 8; i++) {
    tail = CROCKFORD[s % 32] + tail;
    s = Math.floor(s / 32);
  }
  for (let i = 0; i < 8; i++) out += CROCKFORD[Math.floor(random() * 32)];
  return out + tail;
}

const hex64 = (random: () => number): string => {
  let h = "";
  for (let i = 0; i < 8; i++) h += Math.floor(random() * 0x100000000).toString(16).padStart(8, "0");
  return h;
};

function factsFor(i: number, at: number): string {
  const masters = i % 4 === 0 ? 3 : 1;
  const ip = (m: number) => `10.${(i >> 8) & 255}.${i & 255}.${10 + m}`;
  return JSON.stringify({
    masters: Array.from({ length: masters }, (_, m) => ({ name: `${clusterName(i)}-master-${m}`, internalIP: ip(m) })),
    etcdPods: Array.from({ length: masters }, (_, m) => ({ name: `etcd-${clusterName(i)}-master-${m}`, node: `${clusterName(i)}-master-${m}`, ready: true })),
    etcdVersion: "3.5.16",
    kubernetesVersion: "v1.30.4",
    deckhouseVersion: "v1.68.3",
    multiMaster: masters > 1,
    discoveredAt: new Date(at).toISOString(),
  });
}

interface SlotEvent {
  policy: FleetPolicy | null;
  slot: number;
}

/** Every policy's last `history` slots before its latest one at FLEET_NOW, oldest first. */
function scheduledSlots(): SlotEvent[] {
  const events: SlotEvent[] = [];
  for (const p of FLEET_POLICIES) {
    const schedule = new Schedule({ schedule: p.schedule, timezone: p.timezone, spread: p.spread }, { now: new Date(FLEET_NOW) });
    const latest = schedule.latestSlotAtOrBefore(FLEET_NOW)!.getTime();
    let slot = latest;
    for (let k = 0; k < p.history; k++) {
      slot = schedule.latestSlotAtOrBefore(slot - 1)!.getTime();
      events.push({ policy: p, slot });
    }
  }
  // Manual backups: 5 moments over the last 60 days (each cluster adds its own jitter).
  for (let k = 0; k < MANUAL_PER_CLUSTER; k++) events.push({ policy: null, slot: FLEET_NOW - (k * 12 + 3) * DAY });
  return events.sort((a, b) => a.slot - b.slot);
}

/**
 * Writes the fleet into `file` (a new catalog; the migrations are applied first). Returns what it
 * wrote and how long it took.
 */
export function generateFleetCatalog(file: string, shape: FleetShape = { clusters: 10_000 }): FleetCounts {
  const t0 = performance.now();
  openSqliteCatalog(file).close();
  const db = new Database(file);
  // No journal while loading a new file (a failed load is simply thrown away); WAL again at the
  // end, as the service runs it.
  db.pragma("journal_mode = OFF");
  db.pragma("synchronous = OFF");
  db.pragma("cache_size = -262144"); // 256 MiB page cache while loading
  const random = prng(20261122);
  const created = FLEET_NOW - 400 * DAY;

  const indexes = db
    .prepare(`select name, sql from sqlite_master where type = 'index' and tbl_name in ('backups', 'runs') and sql is not null`)
    .all() as Array<{ name: string; sql: string }>;

  const insCluster = db.prepare(
    `insert into clusters (name, labels, recipients, pool, kubeconfig_sealed, context, etcd, facts, created_at, updated_at)
     values (?, ?, ?, null, ?, null, ?, ?, ?, ?)`,
  );
  const insPolicy = db.prepare(
    `insert into policies (name, selector, schedule, timezone, spread, rpo, retention, recipients, target, paused, created_at, updated_at)
     values (?, ?, ?, ?, ?, ?, ?, ?, 'default', 0, ?, ?)`,
  );
  // With the spread hash, as the service records a membership (services/membership.ts).
  const insMember = db.prepare(`insert into policy_members (policy, cluster, since, spread_hash) values (?, ?, ?, ?)`);
  const insRun = db.prepare(
    `insert into runs (id, kind, cluster, policy, slot, not_before, state, attempt, pod, error_code, error_message, bytes, timings,
       created_at, started_at, finished_at, backup_id)
     values (?, 'capture', ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insBackup = db.prepare(
    `insert into backups (id, cluster, policy, run_id, state, created_at, target, object_key, plain_size, plain_sha256, cipher_size,
       cipher_sha256, etcd_revision, etcd_keys, etcd_version, recipients, facts, hold, hold_reason, locked_until, error_message, updated_at)
     values (?, ?, ?, ?, ?, ?, 'default', ?, ?, ?, ?, ?, ?, ?, '3.5.16', ?, ?, ?, ?, ?, ?, ?)`,
  );

  const recipients = JSON.stringify([FLEET_RECIPIENT]);
  const etcd = JSON.stringify({
    namespace: "kube-system",
    selector: "component=etcd",
    container: "etcd",
    command: ["/usr/bin/etcdctl", "--endpoints", "https://127.0.0.1:2379/", "snapshot", "pipe"],
  });
  const events = scheduledSlots();
  const counts = { backups: 0, runs: 0, available: 0 };

  db.transaction(() => {
    for (const ix of indexes) db.exec(`drop index ${ix.name}`);
    for (let i = 0; i < shape.clusters; i++) {
      const labels = JSON.stringify({ fleet: "bench", env: i % 3 === 0 ? "prod" : "stage", region: `r${i % 7}` });
      insCluster.run(clusterName(i), labels, recipients, "k1:" + "A".repeat(400), etcd, factsFor(i, FLEET_NOW - DAY), created, created);
    }
    for (const p of FLEET_POLICIES) {
      const schedule = new Schedule({ schedule: p.schedule, timezone: p.timezone, spread: p.spread }, { now: new Date(FLEET_NOW) });
      const retention = formatRetention(parseRetention(p.retention));
      insPolicy.run(
        p.name,
        JSON.stringify({ matchLabels: { fleet: "bench" } }),
        p.schedule,
        p.timezone,
        p.spread,
        formatDuration(schedule.defaultRpoMs),
        JSON.stringify(retention),
        recipients,
        created,
        created,
      );
      for (let i = 0; i < shape.clusters; i++) insMember.run(p.name, clusterName(i), created, spreadHash(clusterName(i), p.name));
    }

    let seq = 0;
    for (const ev of events) {
      const spreadMs = ev.policy ? parseDuration(ev.policy.spread, "spread", { allowZero: true }) : 0;
      for (let i = 0; i < shape.clusters; i++) {
        const cluster = clusterName(i);
        const offset = ev.policy ? spreadOffsetMs(cluster, ev.policy.name, spreadMs) : Math.floor(random() * DAY);
        const startedAt = ev.slot + offset + Math.floor(random() * 20_000);
        const streamMs = 20_000 + Math.floor(random() * 100_000);
        const createdAt = startedAt + 2_000;
        const finishedAt = createdAt + streamMs;
        const roll = random();
        const state = roll < 0.02 ? "failed" : roll < 0.03 ? "deleted" : "available";
        const size = 64 * 1024 * 1024 + Math.floor(random() * 512 * 1024 * 1024);
        const runId = ulidAt(startedAt, seq++, random);
        const backupId = ulidAt(createdAt, seq++, random);
        const day = new Date(createdAt).toISOString().slice(0, 10).replace(/-/g, "/");
        const hold = state === "available" && random() < 0.001;
        const locked = random() < 0.03 ? createdAt + (random() < 0.5 ? 90 : 7) * DAY : null;
        insRun.run(
          runId,
          cluster,
          ev.policy?.name ?? null,
          ev.policy ? ev.slot : null,
          ev.policy ? ev.slot + offset : startedAt,
          state === "failed" ? "failed" : "succeeded",
          `etcd-${cluster}-master-0`,
          state === "failed" ? "exec_failed" : null,
          state === "failed" ? "pod etcd-master-0: exit code 1: context deadline exceeded" : null,
          state === "failed" ? 0 : size,
          JSON.stringify({ execFirstByteMs: 300, streamMs, uploadMs: streamMs + 200, totalMs: streamMs + 2_500 }),
          ev.policy ? ev.slot + offset : startedAt,
          startedAt,
          finishedAt,
          backupId,
        );
        insBackup.run(
          backupId,
          cluster,
          ev.policy?.name ?? null,
          runId,
          state,
          createdAt,
          `${cluster}/${day}/${backupId}.db.age`,
          state === "failed" ? null : size,
          state === "failed" ? null : hex64(random),
          state === "failed" ? null : size + 210 + Math.ceil(size / 65536) * 16,
          state === "failed" ? null : hex64(random),
          state === "failed" ? null : 1_000_000 + seq,
          state === "failed" ? null : 40_000 + (i % 5000),
          recipients,
          factsFor(i, createdAt - 5_000),
          hold ? 1 : 0,
          hold ? "incident review" : null,
          locked,
          state === "failed" ? "exec_failed: context deadline exceeded" : null,
          finishedAt,
        );
        counts.runs++;
        counts.backups++;
        if (state === "available") counts.available++;
      }
    }
    for (const ix of indexes) db.exec(ix.sql);
  })();
  db.pragma("journal_mode = WAL");
  const fileBytes = (db.prepare("select page_count * page_size as n from pragma_page_count(), pragma_page_size()").get() as { n: number }).n;
  db.close();
  return {
    clusters: shape.clusters,
    policies: FLEET_POLICIES.length,
    pairs: shape.clusters * FLEET_POLICIES.length,
    ...counts,
    fileBytes,
    seconds: (performance.now() - t0) / 1000,
  };
}
