// Backup, run and cluster lists are rendered as JSON text by SQLite (backupJson, runJson and
// clusterJson in services/) instead of through backupView/runView/clusterView and JSON.stringify. The two
// must give the same bytes for every row a catalog can hold: each case writes rows to a real
// SQLite file and compares both renderings of each.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eq, type SQL } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import { openSqliteCatalog, type SqliteCatalog } from "../src/catalog/sqlite.js";
import { backups, clusters, runs } from "../src/catalog/schema.js";
import { clusterJson, clusterView, listClustersJson } from "../src/services/clusters.js";
import { backupJson, backupView, listBackupsJson, type BackupRow } from "../src/services/backups.js";
import { listRunsJson, runJson, runView, type RunRow } from "../src/services/runs.js";
import type { ServiceContext } from "../src/services/context.js";

let dir: string;
let cat: SqliteCatalog;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "etcd-vault-backups-json-"));
  cat = openSqliteCatalog(join(dir, "catalog.db"));
});

afterAll(() => {
  cat.close();
  rmSync(dir, { recursive: true, force: true });
});

let serial = 0;
const nextId = () => `01KAB${String(serial++).padStart(21, "0")}`;

/**
 * Writes `row` to `table`, reads it back both ways and removes it again (its unique keys stay free
 * for the next case): [JSON.stringify(view(the stored row)), the text `json` renders in SQLite].
 */
async function bothWays<R>(table: SQLiteTable, key: SQLiteColumn, keyOf: (r: R) => string, view: (r: R) => unknown, json: SQL<string>, row: R): Promise<[string, string]> {
  const where = eq(key, keyOf(row));
  await cat.db.insert(table).values(row as never);
  const stored = (await cat.db.select().from(table).where(where))[0] as R;
  const rendered = ((await cat.db.select({ json }).from(table).where(where))[0] as { json: string }).json;
  await cat.db.delete(table).where(where);
  return [JSON.stringify(view(stored)), rendered];
}

const renderBoth = (row: BackupRow) => bothWays(backups, backups.id, (r) => r.id, backupView, backupJson, row);

const base = (over: Partial<BackupRow> = {}): BackupRow => ({
  id: nextId(),
  cluster: "prod-a",
  policy: "hourly",
  runId: "01KABRUN0000000000000000000",
  state: "available",
  createdAt: Date.parse("2026-11-22T12:45:00.123Z"),
  target: "default",
  objectKey: "prod-a/2026/11/22/x.db.age",
  plainSize: 268_435_488,
  plainSha256: "a".repeat(64),
  cipherSize: 268_501_120,
  cipherSha256: "b".repeat(64),
  etcdRevision: 123_456,
  etcdKeys: 9_876,
  etcdVersion: "3.5.16",
  recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"],
  facts: {
    masters: [{ name: "master-0", internalIP: "10.0.0.10" }],
    etcdPods: [{ name: "etcd-master-0", node: "master-0", ready: true }],
    etcdVersion: "3.5.16",
    kubernetesVersion: "v1.31.4",
    deckhouseVersion: null,
    multiMaster: false,
    discoveredAt: "2026-11-22T12:44:59.000Z",
  } as unknown as BackupRow["facts"],
  hold: false,
  holdReason: null,
  lockedUntil: null,
  errorMessage: null,
  updatedAt: Date.parse("2026-11-22T12:45:03Z"),
  ...over,
});

describe("backup JSON rendered by SQLite", () => {
  it("equals backupView + JSON.stringify for rows of every shape", async () => {
    const shapes: Array<Partial<BackupRow>> = [
      {},
      { policy: null }, // manual
      { state: "uploading", plainSize: null, plainSha256: null, cipherSize: null, cipherSha256: null, etcdRevision: null, etcdKeys: null, etcdVersion: null, facts: null },
      { hold: true, holdReason: "Störung 42 — \"incident\" \\ 🔥" },
      { lockedUntil: Date.parse("2027-01-01T00:00:00.999Z") },
      { createdAt: 0, lockedUntil: 1 },
      { recipients: [] },
      { facts: { masters: [], note: "tab\there\nnew line \u0001 \u007f \u2028 é" } as unknown as BackupRow["facts"] },
    ];
    for (const shape of shapes) {
      const [expected, actual] = await renderBoth(base(shape));
      expect(actual, JSON.stringify(shape)).toBe(expected);
    }
  });

  it("renders every millisecond instant exactly as toISOString does", async () => {
    const edges = [0, 1, 999, 1000, 1_763_815_500_000, 1_763_815_500_001, 1_763_815_500_999, 4_102_444_799_999, 253_402_300_799_999];
    for (const createdAt of edges) {
      const [expected, actual] = await renderBoth(base({ createdAt, lockedUntil: createdAt }));
      expect(actual, String(createdAt)).toBe(expected);
    }
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 253_402_300_799_999 }), async (ms) => {
        const [expected, actual] = await renderBoth(base({ createdAt: ms, lockedUntil: ms }));
        expect(actual).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it("holds for arbitrary text and JSON in every column", async () => {
    const text = fc.string({ unit: "binary", maxLength: 40 });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          cluster: text,
          policy: fc.option(text),
          target: text,
          objectKey: text,
          holdReason: fc.option(text),
          etcdVersion: fc.option(text),
          recipients: fc.array(text, { maxLength: 3 }),
          facts: fc.option(fc.jsonValue({ maxDepth: 3 })),
          hold: fc.boolean(),
          plainSize: fc.option(fc.integer({ min: 0, max: 2 ** 40 })),
          etcdRevision: fc.option(fc.maxSafeNat()),
        }),
        async (over) => {
          const [expected, actual] = await renderBoth(base(over as Partial<BackupRow>));
          expect(actual).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("pages as {items, nextCursor}, newest first, the cursor continuing where the page ended", async () => {
    const ctx = { catalog: cat } as unknown as ServiceContext;
    const rows = [0, 1, 2, 3, 4].map((i) => base({ cluster: "paged", createdAt: Date.parse("2026-11-20T00:00:00Z") + i * 60_000 }));
    for (const r of rows) await cat.db.insert(backups).values(r);
    const first = JSON.parse(await listBackupsJson(ctx, { cluster: "paged", limit: 2 }));
    expect(first.items.map((b: { id: string }) => b.id)).toEqual([rows[4]!.id, rows[3]!.id]);
    expect(first.items[0]).toEqual(JSON.parse(JSON.stringify(backupView(rows[4]!))));
    expect(typeof first.nextCursor).toBe("string");
    const second = JSON.parse(await listBackupsJson(ctx, { cluster: "paged", limit: 2, cursor: first.nextCursor }));
    expect(second.items.map((b: { id: string }) => b.id)).toEqual([rows[2]!.id, rows[1]!.id]);
    const last = JSON.parse(await listBackupsJson(ctx, { cluster: "paged", limit: 2, cursor: second.nextCursor }));
    expect(last).toEqual({ items: [JSON.parse(JSON.stringify(backupView(rows[0]!)))], nextCursor: null });
  });
});

const renderRunBoth = (row: RunRow) => bothWays(runs, runs.id, (r) => r.id, runView, runJson, row);

const run = (over: Partial<RunRow> = {}): RunRow => ({
  id: nextId(),
  kind: "capture",
  cluster: "prod-a",
  policy: "hourly",
  slot: Date.parse("2026-11-22T12:00:00Z"),
  notBefore: Date.parse("2026-11-22T12:07:13.456Z"),
  state: "succeeded",
  attempt: 1,
  nextAttemptAt: null,
  leaseOwner: null,
  leaseExpiresAt: null,
  cancelRequested: false,
  pod: "etcd-master-0",
  errorCode: null,
  errorMessage: null,
  bytes: 268_501_120,
  timings: { execFirstByteMs: 104, streamMs: 2871.5, uploadMs: 3912, totalMs: 4020 },
  options: null,
  result: null,
  createdAt: Date.parse("2026-11-22T12:00:01.002Z"),
  startedAt: Date.parse("2026-11-22T12:07:14Z"),
  finishedAt: Date.parse("2026-11-22T12:07:18.020Z"),
  backupId: "01KABBACKUP000000000000000",
  ...over,
});

describe("run JSON rendered by SQLite", () => {
  it("equals runView + JSON.stringify for runs in every state", async () => {
    const shapes: Array<Partial<RunRow>> = [
      {},
      { kind: "discover", policy: null, slot: null, backupId: null, timings: null, result: { masters: [] } },
      { state: "queued", pod: null, startedAt: null, finishedAt: null, backupId: null, timings: null, bytes: 0 },
      { state: "running", leaseOwner: "runner:pool-a:r1", leaseExpiresAt: Date.parse("2026-11-22T12:09:14.5Z"), finishedAt: null },
      { state: "running", leaseOwner: "", leaseExpiresAt: 5 }, // no owner: no lease
      { state: "running", leaseOwner: "r", leaseExpiresAt: 0 }, // no expiry: no lease
      { state: "running", cancelRequested: true, leaseOwner: "r", leaseExpiresAt: 1 },
      { state: "queued", attempt: 2, nextAttemptAt: Date.parse("2026-11-22T12:08:00Z"), errorCode: "timeout", errorMessage: "no byte for 60s\nstderr: \u001b[31mred\u001b[0m" },
      { state: "failed", errorCode: "exec_failed", errorMessage: null },
      { state: "failed", errorCode: "", errorMessage: "an empty code shows no error" },
      { timings: { execFirstByteMs: 0.1 + 0.2, streamMs: null } as unknown as RunRow["timings"] },
      { timings: { uploadMs: "odd", totalMs: { nested: [1, 2] }, extra: 1 } as unknown as RunRow["timings"] },
      { timings: {} },
    ];
    for (const shape of shapes) {
      const [expected, actual] = await renderRunBoth(run(shape));
      expect(actual, JSON.stringify(shape)).toBe(expected);
    }
  });

  it("holds for arbitrary text, numbers and timings", async () => {
    const text = fc.string({ unit: "binary", maxLength: 40 });
    const ms = fc.integer({ min: 0, max: 253_402_300_799_999 });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          cluster: text,
          policy: fc.option(text),
          slot: fc.option(ms),
          notBefore: ms,
          nextAttemptAt: fc.option(ms),
          pod: fc.option(text),
          errorCode: fc.option(text),
          errorMessage: fc.option(text),
          leaseOwner: fc.option(text),
          leaseExpiresAt: fc.option(ms),
          cancelRequested: fc.boolean(),
          attempt: fc.integer({ min: 1, max: 3 }),
          bytes: fc.maxSafeNat(),
          timings: fc.option(fc.dictionary(fc.constantFrom("execFirstByteMs", "streamMs", "uploadMs", "totalMs", "other"), fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.maxSafeInteger(), fc.constant(null)))),
          startedAt: fc.option(ms),
          finishedAt: fc.option(ms),
          backupId: fc.option(text),
        }),
        async (over) => {
          // (fc.dictionary's objects have no prototype; the query builder wants a plain object.)
          const timings = over.timings === null ? null : { ...over.timings };
          const [expected, actual] = await renderRunBoth(run({ ...over, timings } as Partial<RunRow>));
          expect(actual).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("pages a cluster's runs newest first across its active and finished halves", async () => {
    const ctx = { catalog: cat } as unknown as ServiceContext;
    const states: RunRow["state"][] = ["succeeded", "queued", "failed", "running", "cancelled"];
    const rows = states.map((state, i) => run({ cluster: "paged-runs", slot: i, state, leaseOwner: state === "running" ? "r" : null, leaseExpiresAt: state === "running" ? 1 : null }));
    for (const r of rows) await cat.db.insert(runs).values(r);
    const want = [...rows].reverse().map((r) => JSON.parse(JSON.stringify(runView(r))));
    const first = JSON.parse(await listRunsJson(ctx, { cluster: "paged-runs", limit: 3 }));
    expect(first.items).toEqual(want.slice(0, 3));
    const rest = JSON.parse(await listRunsJson(ctx, { cluster: "paged-runs", limit: 3, cursor: first.nextCursor }));
    expect(rest).toEqual({ items: want.slice(3), nextCursor: null });
    const active = JSON.parse(await listRunsJson(ctx, { cluster: "paged-runs", state: "running", limit: 10 }));
    expect(active.items.map((r: { id: string }) => r.id)).toEqual([rows[3]!.id]);
  });
});

type ClusterRow = typeof clusters.$inferSelect;

describe("cluster JSON rendered by SQLite", () => {
  const cluster = (over: Partial<ClusterRow> = {}): ClusterRow => ({
    name: `c-${serial++}`,
    labels: { env: "prod", region: "eu-central" },
    recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"],
    pool: null,
    kubeconfigSealed: "k1:never-rendered",
    context: null,
    etcd: { namespace: "kube-system", selector: "component=etcd", container: "etcd", command: ["/usr/bin/etcdctl", "snapshot", "pipe"] },
    facts: null,
    createdAt: Date.parse("2026-11-20T08:00:00.5Z"),
    updatedAt: Date.parse("2026-11-21T09:30:00Z"),
    ...over,
  } as ClusterRow);

  const renderClusterBoth = (row: ClusterRow) => bothWays(clusters, clusters.name, (r) => r.name, clusterView, clusterJson, row);

  it("equals clusterView + JSON.stringify, and never carries the kubeconfig", async () => {
    const text = fc.string({ unit: "binary", maxLength: 30 });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          labels: fc.dictionary(text, text, { maxKeys: 4 }),
          recipients: fc.array(text, { maxLength: 3 }),
          pool: fc.option(text),
          context: fc.option(text),
          facts: fc.option(fc.jsonValue({ maxDepth: 3 })),
          createdAt: fc.integer({ min: 0, max: 253_402_300_799_999 }),
        }),
        async (over) => {
          const [expected, actual] = await renderClusterBoth(cluster({ ...over, labels: { ...over.labels } } as Partial<ClusterRow>));
          expect(actual).toBe(expected);
          expect(actual).not.toContain("never-rendered");
        },
      ),
      { numRuns: 300 },
    );
  });

  it("pages by name, with and without a label selector", async () => {
    const ctx = { catalog: cat } as unknown as ServiceContext;
    const rows = ["zz-a", "zz-b", "zz-c", "zz-d"].map((name, i) => cluster({ name, labels: { tier: i % 2 ? "odd" : "even" } }));
    for (const r of rows) await cat.db.insert(clusters).values(r);
    const view = (r: ClusterRow) => JSON.parse(JSON.stringify(clusterView(r)));
    const all = JSON.parse(await listClustersJson(ctx, { limit: 100 }));
    expect(all.items.filter((c: { name: string }) => c.name.startsWith("zz-"))).toEqual(rows.map(view));
    const even = JSON.parse(await listClustersJson(ctx, { selector: { tier: "even" }, limit: 1 }));
    expect(even.items).toEqual([view(rows[0]!)]);
    const more = JSON.parse(await listClustersJson(ctx, { selector: { tier: "even" }, limit: 1, cursor: even.nextCursor }));
    expect(more).toEqual({ items: [view(rows[2]!)], nextCursor: null });
  });
});
