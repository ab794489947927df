// Retention reads the catalog two ways: the Node catalog's `scanRetentionSeries` fast path (one
// row per series, columns concatenated by SQLite, row by row for a series it cannot carry exactly)
// and the generic paged read D1 uses (any catalog without that capability). Both must give the
// same plan. Each case here plans the same real SQLite file both ways — the generic one through a
// copy of the catalog without `scanRetentionSeries` — and checks that each path really ran.

import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { openSqliteCatalog, type SqliteCatalog } from "../src/catalog/sqlite.js";
import type { Catalog } from "../src/catalog/db.js";
import type { ServiceContext } from "../src/services/context.js";
import { planRetention, type RetentionPlan } from "../src/services/retention.js";

const H = 3_600_000;
const D = 24 * H;
const NOW = Date.parse("2026-11-22T12:45:00Z");
const MANUAL_TTL = 30 * D;

type Scope = { policy?: string; cluster?: string };

let dir: string;
const opened: SqliteCatalog[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "etcd-vault-retention-paths-"));
});

afterAll(() => {
  for (const cat of opened) cat.close();
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Catalogs and the two paths.

/** What each path did, read off the catalog: calls, series queries, rows read one series at a time. */
interface Probe {
  cat: SqliteCatalog;
  /** The catalog without the capability: what planRetention sees on D1. */
  generic: Catalog;
  fastScans: () => number;
  /** Series queries (the fast path's) that prepared successfully, in order. */
  seriesQueries: string[];
  /** Series the fast path read row by row (its fallback). */
  rowFallbacks: number;
  /** Pages the generic path read through the query builder. */
  genericPages: number;
}

function openCatalog(name: string): Probe {
  const cat = openSqliteCatalog(join(dir, `${name}.db`));
  opened.push(cat);
  const scan = vi.spyOn(cat, "scanRetentionSeries");
  const { scanRetentionSeries: _omitted, ...rest } = cat;
  const generic: Catalog = rest;
  const probe: Probe = { cat, generic, fastScans: () => scan.mock.calls.length, seriesQueries: [], rowFallbacks: 0, genericPages: 0 };
  // Every statement goes through sqlite.prepare (drizzle's too): tell the paths' queries apart.
  const prepare = cat.sqlite.prepare.bind(cat.sqlite);
  cat.sqlite.prepare = ((source: string) => {
    const statement = prepare(source);
    const count = (bump: () => void) => {
      const all = statement.all.bind(statement);
      statement.all = ((...params: unknown[]) => {
        bump();
        return all(...params);
      }) as typeof statement.all;
    };
    if (source.includes("json_group_array(id)")) probe.seriesQueries.push(source);
    else if (/^\s*select id, created_at, hold, locked_until, cipher_size from backups/.test(source)) count(() => probe.rowFallbacks++);
    else if (/from "backups"/.test(source) && /order by "backups"\."cluster"/.test(source)) count(() => probe.genericPages++);
    return statement;
  }) as typeof cat.sqlite.prepare;
  return probe;
}

function contextOf(catalog: Catalog): ServiceContext {
  // planRetention reads the catalog, the clock and the manual TTL only.
  return {
    catalog,
    clock: { now: () => new Date(NOW) },
    settings: { manualTtlMs: MANUAL_TTL },
  } as unknown as ServiceContext;
}

/**
 * Plans `scope` through both paths, asserts that each path ran (and only it), and that the plans
 * are the same: deep-equal, and the same JSON (so `byReason` lists kinds in the same order too).
 */
async function bothPaths(p: Probe, scope: Scope, automatic: boolean): Promise<RetentionPlan> {
  const scans = p.fastScans();
  const pages = p.genericPages;
  const fast = await planRetention(contextOf(p.cat), scope, { automatic });
  expect(p.fastScans(), "fast path taken").toBe(scans + 1);
  expect(p.genericPages, "fast path read no generic pages").toBe(pages);
  const generic = await planRetention(contextOf(p.generic), scope, { automatic });
  expect(p.fastScans(), "generic path does not call scanRetentionSeries").toBe(scans + 1);
  expect(p.genericPages, "generic path read pages").toBeGreaterThan(pages);
  // The first difference, if any, named briefly (a diff of two fleet plans is slow and unreadable).
  expect(firstDifference(fast, generic), `${JSON.stringify(scope)} ${automatic ? "sweep" : "preview"}`).toBeNull();
  expect(fast).toEqual(generic);
  expect(JSON.stringify(fast)).toBe(JSON.stringify(generic));
  expect(fast.summary.mode).toBe(automatic ? "automatic" : "preview");
  if (automatic) expect(fast.keep).toEqual([]);
  return fast;
}

function firstDifference(fast: RetentionPlan, generic: RetentionPlan): string | null {
  for (const side of ["keep", "delete"] as const) {
    const a = fast[side], b = generic[side];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const x = JSON.stringify(a[i]), y = JSON.stringify(b[i]);
      if (x !== y) return `${side}[${i}] (of ${a.length} / ${b.length}): fast ${x}, generic ${y}`;
    }
  }
  const x = JSON.stringify(fast.summary), y = JSON.stringify(generic.summary);
  return x === y ? null : `summary: fast ${x}, generic ${y}`;
}

/** Both modes; the automatic plan deletes exactly what the preview deletes. */
async function bothModes(p: Probe, scope: Scope): Promise<RetentionPlan> {
  const preview = await bothPaths(p, scope, false);
  const sweep = await bothPaths(p, scope, true);
  expect(sweep.delete).toEqual(preview.delete);
  expect({ ...sweep.summary, mode: "preview" }).toEqual(preview.summary);
  return preview;
}

// ---------------------------------------------------------------------------------------------
// Rows, written with better-sqlite3 (the columns as the schema stores them, nothing validated).

interface PolicyRow {
  name: string;
  matchLabels: Record<string, string>;
  timezone: string;
  retention: Record<string, number | string>;
}

function insertClusters(db: Database.Database, rows: Array<[name: string, labels: Record<string, string>]>): void {
  const insert = db.prepare(
    "insert into clusters (name, labels, recipients, kubeconfig_sealed, etcd, created_at, updated_at) values (?, ?, '[]', 'sealed', '{}', 0, 0)",
  );
  db.transaction(() => {
    for (const [name, labels] of rows) insert.run(name, JSON.stringify(labels));
  })();
}

function insertPolicies(db: Database.Database, rows: PolicyRow[]): void {
  const insert = db.prepare(
    `insert into policies (name, selector, schedule, timezone, spread, rpo, retention, recipients, target, paused, created_at, updated_at)
      values (?, ?, '0 * * * *', ?, '0s', '1h', ?, '[]', 'vault', 0, 0, 0)`,
  );
  db.transaction(() => {
    for (const p of rows) insert.run(p.name, JSON.stringify({ matchLabels: p.matchLabels }), p.timezone, JSON.stringify(p.retention));
  })();
}

interface BackupRow {
  id: string;
  cluster: string;
  policy: string | null;
  state?: string;
  createdAt: unknown;
  hold?: unknown;
  lockedUntil?: unknown;
  size?: unknown;
}

function insertBackups(db: Database.Database, rows: BackupRow[]): void {
  const insert = db.prepare(
    `insert into backups (id, cluster, policy, run_id, state, created_at, target, object_key, recipients, hold, locked_until, cipher_size, updated_at)
      values (?, ?, ?, 'run', ?, ?, 'vault', 'key', '[]', ?, ?, ?, 0)`,
  );
  db.transaction(() => {
    for (const b of rows) {
      insert.run(b.id, b.cluster, b.policy, b.state ?? "available", b.createdAt, b.hold ?? 0, b.lockedUntil ?? null, b.size === undefined ? 1000 : b.size);
    }
  })();
}

// ---------------------------------------------------------------------------------------------
// 1. A generated fleet (seeded: a failure reproduces).

/** mulberry32 */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FLEET_POLICIES: PolicyRow[] = [
  { name: "prod-hourly", matchLabels: { env: "prod" }, timezone: "UTC", retention: { last: 3, hourly: 6, daily: 3 } },
  { name: "all-berlin", matchLabels: {}, timezone: "Europe/Berlin", retention: { daily: 7, weekly: 4, monthly: 2 } },
  { name: "dev-chatham", matchLabels: { env: "dev" }, timezone: "Pacific/Chatham", retention: { hourly: 4, within: "2d" } },
  { name: "tier-b-ny", matchLabels: { tier: "b" }, timezone: "America/New_York", retention: { within: "10d", weekly: 3, yearly: 1 } },
  { name: "stage-last", matchLabels: { env: "stage" }, timezone: "UTC", retention: { last: 1 } },
];
/** Backups of a policy that has since been deleted. */
const GONE_POLICY = "retired-policy";
const SERIES_POLICIES = [null, ...FLEET_POLICIES.map((p) => p.name), GONE_POLICY];
const OTHER_STATES = ["failed", "deleted", "deleting", "uploading", "missing", "corrupt"];
const ULID_CHARS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

interface Fleet {
  clusters: string[];
  /** Clusters with backups but no row any more. */
  deletedClusters: string[];
  backups: number;
}

function buildFleet(db: Database.Database, seed: number, clusterCount: number): Fleet {
  const rnd = seeded(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const clusters: Array<[string, Record<string, string>]> = [];
  for (let c = 0; c < clusterCount; c++) {
    clusters.push([`c-${String(c).padStart(4, "0")}`, { env: pick(["prod", "prod", "dev", "stage"]), tier: pick(["a", "b"]) }]);
  }
  insertClusters(db, clusters);
  insertPolicies(db, FLEET_POLICIES);
  const deletedClusters = Array.from({ length: Math.max(3, clusterCount / 20) }, (_, i) => `gone-${String(i).padStart(3, "0")}`);
  const ulid = (): string => {
    let id = "01J";
    for (let i = 0; i < 23; i++) id += ULID_CHARS[Math.floor(rnd() * 32)];
    return id;
  };
  const rows: BackupRow[] = [];
  for (const cluster of [...clusters.map(([name]) => name), ...deletedClusters]) {
    for (const policy of SERIES_POLICIES) {
      // Every cluster has series of every kind now and then, matching its policy or not (a
      // cluster whose labels changed keeps its old series).
      if (rnd() > (policy === null ? 0.5 : 0.3)) continue;
      const count = 1 + Math.floor(rnd() * 14);
      const span = pick([H, 6 * H, D, 9 * D, 40 * D]);
      let t = Math.round(NOW - rnd() * 2 * D);
      for (let i = 0; i < count; i++) {
        const tied = rnd() < 0.15;
        const ids = tied ? [ulid(), ulid(), ulid()] : [ulid()];
        for (const id of ids) {
          const r = rnd();
          rows.push({
            id,
            cluster,
            policy,
            state: r < 0.8 ? "available" : pick(OTHER_STATES),
            createdAt: t,
            hold: rnd() < 0.07 ? 1 : 0,
            // Locks in the future and in the past, some exactly at "now".
            lockedUntil: rnd() < 0.12 ? (rnd() < 0.1 ? NOW : Math.round(NOW + (rnd() - 0.5) * 40 * D)) : null,
            size: rnd() < 0.1 ? null : Math.floor(rnd() * 5e9),
          });
        }
        t -= Math.round(rnd() * span);
      }
    }
  }
  insertBackups(db, rows);
  return { clusters: clusters.map(([name]) => name), deletedClusters, backups: rows.length };
}

/** Every reason kind and series situation the fleet is meant to exercise did occur. */
function expectCoverage(plan: RetentionPlan): void {
  const reasons = new Set(plan.keep.flatMap((k) => k.reasons.map((r) => r.split(" ")[0]!)));
  for (const kind of ["newest", "hold", "lock", "last", "hourly", "daily", "weekly", "monthly", "yearly", "within"]) {
    expect(reasons, kind).toContain(kind);
  }
  const keepAll = new Set(plan.keep.map((k) => k.reasons.join("|")));
  for (const whole of ["policy deleted", "cluster no longer matches", "cluster deleted"]) expect(keepAll, whole).toContain(whole);
  const deleteReasons = new Set(plan.delete.map((d) => d.reasons.join("|")));
  expect(deleteReasons).toEqual(new Set(["no rule", "expired"]));
  // A held backup no rule keeps (so a hold lost on the way would change the plan), and locks that
  // keep as well as locks already past.
  expect(plan.keep.some((k) => k.reasons.length === 1 && k.reasons[0] === "hold")).toBe(true);
  expect(plan.keep.some((k) => k.reasons.length === 1 && k.reasons[0]!.startsWith("lock until"))).toBe(true);
  expect(plan.keep.some((k) => k.policy === null)).toBe(true);
}

describe("generated fleet", () => {
  let p: Probe;
  let fleet: Fleet;
  let whole: RetentionPlan;

  beforeAll(() => {
    p = openCatalog("fleet");
    fleet = buildFleet(p.cat.sqlite, 20261122, 300);
  });

  it("is a fleet: hundreds of clusters, thousands of backups, ties and every state", () => {
    const db = p.cat.sqlite;
    expect(fleet.backups).toBeGreaterThan(3000);
    const count = (where: string) => db.prepare(`select count(*) from backups where ${where}`).pluck().get() as number;
    expect(count("state <> 'available'")).toBeGreaterThan(300);
    expect(count("cipher_size is null")).toBeGreaterThan(100);
    expect(count(`state = 'available' and locked_until > ${NOW}`)).toBeGreaterThan(20);
    expect(count(`state = 'available' and locked_until <= ${NOW}`)).toBeGreaterThan(20);
    expect(
      db.prepare("select count(*) from (select 1 from backups where state = 'available' group by cluster, policy, created_at having count(*) > 1)").pluck().get(),
    ).toBeGreaterThan(50);
  });

  it("same plan unscoped, preview and sweep", async () => {
    whole = await bothModes(p, {});
    expectCoverage(whole);
    expect(whole.summary.series as number).toBeGreaterThan(500);
    expect(whole.keep.length + whole.delete.length).toBe(
      p.cat.sqlite.prepare("select count(*) from backups where state = 'available'").pluck().get(),
    );
    // Series came in one piece each from the fast path (the fleet has nothing it cannot carry).
    expect(p.rowFallbacks).toBe(0);
    expect(p.seriesQueries.every((q) => q.includes("indexed by backups_retention_idx"))).toBe(true);
  });

  it("same plan scoped to each policy (a deleted one and an unknown one too)", async () => {
    for (const policy of [...FLEET_POLICIES.map((x) => x.name), GONE_POLICY, "no-such-policy"]) {
      const plan = await bothModes(p, { policy });
      // The scoped plan is the whole plan's share of that policy.
      const mine = (items: RetentionPlan["keep"]) => items.filter((i) => i.policy === policy);
      expect(plan.keep).toEqual(mine(whole.keep));
      expect(plan.delete).toEqual(mine(whole.delete));
    }
  });

  it("same plan scoped to clusters (matching, deleted, unknown) and to a cluster and policy", async () => {
    const clusters = [fleet.clusters[0]!, fleet.clusters[7]!, fleet.clusters[fleet.clusters.length - 1]!, fleet.deletedClusters[0]!, "no-such-cluster"];
    for (const cluster of clusters) {
      const plan = await bothModes(p, { cluster });
      expect(plan.keep).toEqual(whole.keep.filter((i) => i.cluster === cluster));
      expect(plan.delete).toEqual(whole.delete.filter((i) => i.cluster === cluster));
      for (const policy of ["prod-hourly", "all-berlin", GONE_POLICY]) await bothModes(p, { cluster, policy });
    }
  });

  it("same plan on a second fleet (another seed, other shapes)", async () => {
    const q = openCatalog("fleet-2");
    buildFleet(q.cat.sqlite, 7, 200);
    await bothModes(q, {});
    await bothModes(q, { policy: "dev-chatham" });
  });

  it("without backups_retention_idx the fast path falls back and still agrees", async () => {
    const q = openCatalog("fleet-noidx");
    buildFleet(q.cat.sqlite, 20261122, 300);
    q.cat.sqlite.exec("drop index backups_retention_idx");
    const plan = await bothModes(q, {});
    expect(plan).toEqual(whole);
    expect(q.seriesQueries.length).toBeGreaterThan(0);
    expect(q.seriesQueries.some((s) => s.includes("indexed by"))).toBe(false);
    await bothModes(q, { policy: "all-berlin" });
    await bothModes(q, { cluster: fleet.clusters[3]! });
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Odd rows: what the schema lets in beyond what the service writes.

/** Ids, cluster and policy names no concatenation may split or reorder. */
const ODD_IDS = [
  "a,b",
  ",",
  ",,lead",
  "trail,",
  '"quoted"',
  "it's",
  "back\\slash",
  "[1,2]",
  "{}",
  "null",
  "",
  " ",
  "tab\tand\nnewline",
  "é-accent",
  "日本語",
  "𝒳-astral",
  "｡-halfwidth", // sorts after 𝒳 by UTF-16 units, before it by UTF-8 bytes
  "\u{10FFFF}",
  "01JZZZZZZZZZZZZZZZZZZZZZZZ",
];

describe("odd rows", () => {
  let p: Probe;
  const oddClusters = ["odd,cluster", `q"uo'te`, "ünï-☃", "plain"];
  const oddPolicies: PolicyRow[] = [
    { name: "p,comma", matchLabels: { env: "prod" }, timezone: "UTC", retention: { last: 2, daily: 2 } },
    { name: `p'q"uote`, matchLabels: {}, timezone: "Asia/Kolkata", retention: { hourly: 3, within: "1d" } },
    { name: "pölicy-日本", matchLabels: {}, timezone: "UTC", retention: { last: 1, weekly: 2 } },
  ];

  beforeAll(() => {
    p = openCatalog("odd");
    insertClusters(p.cat.sqlite, oddClusters.map((name) => [name, { env: "prod" }]));
    insertPolicies(p.cat.sqlite, oddPolicies);
    const rows: BackupRow[] = [];
    const series = [null, ...oddPolicies.map((x) => x.name)];
    let n = 0;
    for (const cluster of oddClusters) {
      for (const policy of series) {
        const tag = `${cluster}/${policy ?? "manual"}/`;
        // Odd ids, several at one time (ties), each series otherwise plain.
        ODD_IDS.forEach((id, i) => rows.push({ id: tag + id, cluster, policy, createdAt: NOW - Math.floor(i / 3) * 7 * H, hold: i % 7 === 3 ? 1 : 0 }));
        // Ids alone at a time that only differ past the part where JS and SQLite orders diverge.
        rows.push({ id: `${tag}𝒳`, cluster, policy, createdAt: NOW - 40 * D });
        rows.push({ id: `${tag}｡`, cluster, policy, createdAt: NOW - 40 * D });
        rows.push({ id: `${tag}plain-${n++}`, cluster, policy, createdAt: NOW - 50 * D, size: null });
      }
    }
    // Series that hold one odd column value each, so a fallback of one leaves the rest alone.
    const oddValues: Array<[label: string, extra: Partial<BackupRow>]> = [
      ["hold-2", { hold: 2 }],
      ["hold-minus-1", { hold: -1 }],
      ["hold-half", { hold: 0.5 }],
      ["hold-text", { hold: "yes" }],
      ["hold-empty-text", { hold: "" }],
      ["hold-text-1", { hold: "1" }], // stored as the integer 1 (integer affinity)
      ["hold-blob", { hold: Buffer.from([0]) }],
      ["size-null", { size: null }],
      ["size-zero", { size: 0 }],
      ["size-real", { size: 12.5 }],
      ["size-negative", { size: -5 }],
      ["size-huge", { size: 2 ** 53 - 1 }],
      ["created-text", { createdAt: "2026-11-01T10:00:00Z" }],
      ["created-text-offset", { createdAt: "2026-11-01T12:00:00+02:00" }], // ties with the one above
      ["created-real", { createdAt: NOW - 3 * D + 0.5 }],
      ["created-negative", { createdAt: -86_400_000 }],
      ["created-16-digits", { createdAt: 1_000_000_000_000_000 }],
      ["lock-text", { lockedUntil: "2027-01-01T00:00:00Z" }],
      ["lock-text-past", { lockedUntil: "2020-01-01T00:00:00Z" }],
      ["lock-real", { lockedUntil: NOW + 10.25 }],
      ["lock-negative", { lockedUntil: -1 }],
      ["lock-zero", { lockedUntil: 0 }],
    ];
    oddValues.forEach(([label, extra], i) => {
      // Each on a cluster of its own (half of them deleted), in a manual and a policy series.
      const policy = "pölicy-日本";
      const own = `odd-${label}`;
      for (let k = 0; k < 6; k++) {
        rows.push({ id: `${own}-${k}`, cluster: own, policy: k % 2 ? null : policy, createdAt: NOW - (k + 1) * 11 * D - i, hold: k === 4 ? 1 : 0 });
      }
      rows.push({ id: `${own}-odd`, cluster: own, policy: null, createdAt: NOW - 45 * D, ...extra });
      rows.push({ id: `${own}-odd-p`, cluster: own, policy, createdAt: NOW - 45 * D, ...extra });
    });
    insertBackups(p.cat.sqlite, rows);
    insertClusters(p.cat.sqlite, oddValues.filter((_, i) => i % 2 === 0).map(([label]) => [`odd-${label}`, { env: "prod" }]));
  });

  it("the odd values are stored as written (the schema let them in)", () => {
    const db = p.cat.sqlite;
    const types = db.prepare("select distinct typeof(hold) from backups order by 1").pluck().all();
    expect(types).toEqual(["blob", "integer", "real", "text"]);
    expect(db.prepare("select count(*) from backups where hold not in (0, 1)").pluck().get()).toBeGreaterThanOrEqual(5);
    expect(db.prepare("select count(*) from backups where id like '%,%'").pluck().get()).toBeGreaterThan(10);
    expect(db.prepare("select count(*) from backups where cipher_size is null").pluck().get()).toBeGreaterThan(5);
    expect(db.prepare("select typeof(created_at) from backups where id = 'odd-created-text-odd'").pluck().get()).toBe("text");
  });

  it("same plan unscoped, preview and sweep; the series it cannot carry are read as rows", async () => {
    const plan = await bothModes(p, {});
    expect(p.rowFallbacks).toBeGreaterThanOrEqual(20);
    // Every odd id came through whole and once.
    const ids = [...plan.keep, ...plan.delete].map((i) => i.backupId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ODD_IDS) expect(ids).toContain(`odd,cluster/p,comma/${id}`);
    const byId = new Map([...plan.keep, ...plan.delete].map((i) => [i.backupId, i]));
    // Holds other than 0/1 keep as holds on both paths (what the row reader makes of them).
    expect(byId.get("odd-hold-2-odd")!.reasons).toContain("hold");
    expect(byId.get("odd-hold-text-odd")!.reasons).toContain("hold");
    expect(byId.get("odd-hold-empty-text-odd")!.reasons).not.toContain("hold");
    expect(byId.get("odd-lock-text-odd")!.reasons).toContain("lock until 2027-01-01T00:00:00.000Z");
  });

  it("same plan scoped to odd clusters and policies", async () => {
    for (const cluster of [...oddClusters, "odd-hold-2", "odd-created-text", "odd-lock-real"]) {
      await bothModes(p, { cluster });
      for (const policy of oddPolicies) await bothModes(p, { cluster, policy: policy.name });
    }
    for (const policy of oddPolicies) await bothModes(p, { policy: policy.name });
  });

  it("and still without backups_retention_idx", async () => {
    const before = await planRetention(contextOf(p.cat), {});
    p.cat.sqlite.exec("drop index backups_retention_idx");
    const queries = p.seriesQueries.length;
    const plan = await bothModes(p, {});
    expect(plan).toEqual(before);
    expect(p.seriesQueries.slice(queries).some((s) => s.includes("indexed by"))).toBe(false);
    await bothModes(p, { policy: "p,comma" });
    await bothModes(p, { cluster: "ünï-☃" });
  });

  it("a lock out of Date's range fails both paths alike", async () => {
    const q = openCatalog("bad-lock");
    insertClusters(q.cat.sqlite, [["c", {}]]);
    insertBackups(q.cat.sqlite, [
      { id: "a", cluster: "c", policy: null, createdAt: NOW - D },
      { id: "b", cluster: "c", policy: null, createdAt: NOW - 2 * D, lockedUntil: 9e15 },
    ]);
    const fast = await planRetention(contextOf(q.cat), {}).then(() => null, (e: unknown) => e);
    const generic = await planRetention(contextOf(q.generic), {}).then(() => null, (e: unknown) => e);
    expect(fast).toBeInstanceOf(RangeError);
    expect(generic).toBeInstanceOf(RangeError);
    expect(String(fast)).toBe(String(generic));
    expect(q.fastScans()).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Small catalogs, generated and shrunk by fast-check: ties, odd ids, odd holds, locks.

describe("generated small catalogs (fast-check)", () => {
  it("both paths agree", async () => {
    const p = openCatalog("property");
    insertClusters(p.cat.sqlite, [["c1", { env: "prod" }], ["c,2", { env: "dev" }], ["ü3", { env: "prod" }]]);
    insertPolicies(p.cat.sqlite, [
      { name: "pa", matchLabels: { env: "prod" }, timezone: "UTC", retention: { last: 2, hourly: 2 } },
      { name: "pb", matchLabels: {}, timezone: "Australia/Lord_Howe", retention: { daily: 2, within: "3h" } },
    ]);
    const idUnit = fc.constantFrom("a", "b", "Z", "0", ",", '"', "'", "\\", " ", "é", "𝒳", "｡", "\n");
    const row = fc.record({
      id: fc.string({ unit: idUnit, maxLength: 5 }),
      cluster: fc.constantFrom("c1", "c,2", "ü3", "gone"),
      policy: fc.constantFrom(null, "pa", "pb", "p-gone"),
      state: fc.constantFrom("available", "available", "available", "failed", "deleted"),
      // A few hours' worth of minutes, so times tie often.
      createdAt: fc.integer({ min: -600, max: 10 }).map((m) => NOW + m * 60_000),
      hold: fc.constantFrom<unknown>(0, 0, 0, 1, 2, -1, "x"),
      lockedUntil: fc.option(fc.integer({ min: -300, max: 300 }).map((m) => NOW + m * 60_000), { freq: 3 }),
      size: fc.option(fc.nat({ max: 10_000 }), { freq: 5 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(row, { selector: (r) => r.id, maxLength: 40 }), fc.boolean(), async (rows, automatic) => {
        p.cat.sqlite.exec("delete from backups");
        insertBackups(p.cat.sqlite, rows);
        await bothPaths(p, {}, automatic);
        await bothPaths(p, { cluster: "c,2" }, automatic);
        await bothPaths(p, { policy: "pa" }, automatic);
      }),
      { seed: 424242, numRuns: 150 },
    );
    // The generated rows reached the fast path's row-by-row fallback too (odd holds, ids that sort
    // differently in JavaScript and SQLite).
    expect(p.rowFallbacks).toBeGreaterThan(0);
  });
});
