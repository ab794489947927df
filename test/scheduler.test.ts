// Fleet policies and the scheduler: policy validation, exactly-once runs from two processes
// ticking one SQLite file, lease expiry and re-queue, and scheduled backups end to end.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import Database from "better-sqlite3";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startTestService, type TestService } from "./helpers/service.js";
import { registerFleet, startFleet, waitForRun, type Fleet } from "./helpers/fleet.js";
import { cancelRun, claimRun, enqueueRun } from "../src/services/runs.js";
import type { PendingStatement } from "../src/catalog/db.js";
import { tick } from "../src/scheduler/tick.js";
import { refreshFacts } from "../src/scheduler/runner.js";
import { Schedule, spreadOffsetMs } from "../src/core/schedule.js";
import fc from "fast-check";
import { decodeTime } from "ulid";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const KC = (server: string) => `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t0k3n}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;
const RCPT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

describe("policies: validation and description", () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService({}, { clock: { now: () => new Date("2026-11-20T10:17:00Z") } });
    for (let i = 0; i < 3; i++) {
      await s.call("POST", "/v1/clusters", { name: `c${i}`, labels: { env: i < 2 ? "prod" : "dev" }, kubeconfig: KC("https://127.0.0.1:1") });
    }
  });
  afterAll(async () => s.stop());

  const base = { name: "p1", selector: { matchLabels: { env: "prod" } }, schedule: "0 */6 * * *", retention: { daily: 7 }, recipients: [RCPT] };

  it("rejects bad input naming the field", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...base, schedule: "61 * * * *" }, "schedule"],
      [{ ...base, schedule: "@every 0s" }, "schedule"],
      [{ ...base, timezone: "Mars/Olympus" }, "timezone"],
      [{ ...base, recipients: ["age1garbage"] }, "recipients"],
      [{ ...base, recipients: [] }, "recipients"],
      [{ ...base, spread: "7h" }, "spread"],
      [{ ...base, target: "nowhere" }, "target"],
      [{ ...base, retention: { daily: -1 } }, "retention.daily"],
      [{ ...base, retention: { daily: 0 } }, "retention"],
      [{ ...base, retention: { within: "3x" } }, "retention.within"],
      [{ ...base, rpo: "1m" }, "rpo"],
      [{ ...base, recipients: [42] }, "recipients[0]"],
    ];
    for (const [body, field] of cases) {
      const r = await s.call("POST", "/v1/policies", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.code).toBe("invalid_input");
      expect(r.json.error.message).toContain(field);
    }
    // A selector on "__proto__" used to parse as {} and match every cluster (raw text: a JS literal
    // would set the prototype instead of a key).
    for (const spelled of ['"__proto__"', '"__pro\\u0074o__"']) {
      const proto = JSON.stringify({ ...base, selector: { matchLabels: { PROTO: "x" } } }).replace('"PROTO"', spelled);
      expect(proto).toContain(spelled);
      const r = await s.call("POST", "/v1/policies", proto);
      expect(r.status, spelled).toBe(400);
      expect(r.json.error.code).toBe("invalid_input");
      expect(r.json.error.message).toContain("__proto__");
    }
    expect((await s.call("GET", "/v1/policies")).json.items).toEqual([]);
  });

  it("creates a policy with a default RPO and lists matching clusters with their next slot", async () => {
    const r = await s.call("POST", "/v1/policies", { ...base, spread: "30m", timezone: "Europe/Berlin" });
    expect(r.status).toBe(201);
    // 1.5 × the longest interval: 6 h slots in Berlin stretch to 7 h across the October fall-back.
    expect(r.json.rpo).toBe("10h30m");
    const d = (await s.call("GET", "/v1/policies/p1")).json;
    expect(d.clusters.map((c: any) => c.name)).toEqual(["c0", "c1"]);
    for (const c of d.clusters) {
      const nb = Date.parse(c.notBefore) - Date.parse(c.nextSlot);
      expect(nb).toBeGreaterThanOrEqual(0);
      expect(nb).toBeLessThan(30 * 60_000);
      expect(Date.parse(c.notBefore)).toBeGreaterThan(Date.parse("2026-11-20T10:17:00Z"));
    }
    // Berlin is UTC+1 in November: "0 */6" local = 11:00 UTC next.
    expect(d.clusters[0].nextSlot).toBe("2026-11-20T11:00:00.000Z");
  });

  it("shows the slot the tick will fire: never one from before the policy existed", async () => {
    // Created at 10:17 with up to 59 min of spread: c0's offset (~29 min) puts the 10:00 slot's
    // notBefore at ~10:29, still ahead — but 10:00 is before the policy, so its first run is 11:00.
    expect(spreadOffsetMs("c0", "p2", 59 * 60_000)).toBeGreaterThan(17 * 60_000);
    expect((await s.call("POST", "/v1/policies", { ...base, name: "p2", schedule: "0 * * * *", spread: "59m" })).status).toBe(201);
    const d = (await s.call("GET", "/v1/policies/p2")).json;
    expect(d.clusters.map((c: any) => [c.name, c.nextSlot])).toEqual([
      ["c0", "2026-11-20T11:00:00.000Z"],
      ["c1", "2026-11-20T11:00:00.000Z"],
    ]);
    expect((await tick(s.svc)).created).toBe(0);
  });
});

describe("PATCH /v1/policies/{name} is a JSON merge patch", () => {
  let s: TestService;
  let now = Date.parse("2026-11-20T10:17:00Z");
  beforeAll(async () => {
    s = await startTestService({}, { clock: { now: () => new Date(now) } });
    for (let i = 0; i < 2; i++) await s.call("POST", "/v1/clusters", { name: `m${i}`, labels: { env: "prod", tier: "core" }, kubeconfig: KC("https://127.0.0.1:1") });
  });
  afterAll(async () => s.stop());
  const patch = (name: string, body: unknown) => s.call("PATCH", `/v1/policies/${name}`, body);

  it("merges the selector's labels and resets what is set to null", async () => {
    const body = { name: "mp", selector: { matchLabels: { env: "prod" } }, schedule: "0 3 * * *", timezone: "Europe/Berlin", spread: "1h", retention: { last: 4, daily: 7 }, recipients: [RCPT] };
    expect((await s.call("POST", "/v1/policies", body)).status).toBe(201);
    let r = await patch("mp", { selector: { matchLabels: { tier: "core" } } });
    expect(r.status).toBe(200);
    expect(r.json.selector.matchLabels).toEqual({ env: "prod", tier: "core" });
    r = await patch("mp", { selector: { matchLabels: { env: null } }, retention: { daily: null, weekly: 2 }, timezone: null, spread: null });
    expect(r.status).toBe(200);
    expect(r.json.selector.matchLabels).toEqual({ tier: "core" });
    expect(r.json.retention).toMatchObject({ last: 4, daily: 0, weekly: 2 });
    expect([r.json.timezone, r.json.spread]).toEqual(["UTC", "0s"]);
    expect((await patch("mp", { selector: { matchLabels: { tier: 5 } } })).json.error.message).toContain("selector.matchLabels.tier");
  });

  it("keeps an RPO that was given, and lets a default one follow the schedule", async () => {
    const body = { selector: { matchLabels: { env: "none" } }, retention: { last: 4 }, recipients: [RCPT] };
    expect((await s.call("POST", "/v1/policies", { ...body, name: "given", schedule: "0 3 * * *", rpo: "3d" })).json.rpo).toBe("3d");
    expect((await patch("given", { schedule: "0 4 * * *" })).json.rpo).toBe("3d");
    // Still checked against the new schedule.
    expect((await patch("given", { schedule: "0 4 * * 1" })).json.error.message).toContain("rpo");
    expect((await s.call("POST", "/v1/policies", { ...body, name: "dflt", schedule: "0 * * * *" })).json.rpo).toBe("1h30m");
    // Berlin's fall-back makes one hourly interval 2 h: the default follows the time zone too.
    expect((await patch("dflt", { timezone: "Europe/Berlin" })).json.rpo).toBe("3h");
    expect((await patch("dflt", { schedule: "0 3 * * *", timezone: null })).json.rpo).toBe("1d12h");
    expect((await patch("given", { rpo: null })).json.rpo).toBe("1d12h");
  });

  it("lists policies a page at a time, in name order, with the list conventions' checks", async () => {
    const all = (await s.call("GET", "/v1/policies")).json;
    expect(all.nextCursor).toBeNull();
    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const r: any = (await s.call("GET", `/v1/policies?limit=1${cursor ? `&cursor=${cursor}` : ""}`)).json;
      expect(r.items.length).toBe(1);
      names.push(r.items[0].name);
      cursor = r.nextCursor;
    } while (cursor);
    expect(names).toEqual(all.items.map((p: any) => p.name));
    expect(names).toEqual([...names].sort());
    expect(names.length).toBeGreaterThan(1);
    for (const [q, field] of [["limit=abc", "limit"], ["limit=501", "limit"], ["cursor=zzz", "cursor"]]) {
      const r = await s.call("GET", `/v1/policies?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error.message).toContain(field);
    }
  });

  it("a new schedule fires no slot from before the change", async () => {
    const body = { name: "sch", selector: { matchLabels: { tier: "core" } }, schedule: "0 0 1 1 *", retention: { last: 4 }, recipients: [RCPT] };
    expect((await s.call("POST", "/v1/policies", body)).status).toBe(201);
    now = Date.parse("2026-11-20T10:21:00Z");
    expect((await patch("sch", { schedule: "*/5 * * * *" })).status).toBe(200);
    const d = (await s.call("GET", "/v1/policies/sch")).json;
    expect(d.clusters.map((c: any) => c.nextSlot)).toEqual(["2026-11-20T10:25:00.000Z", "2026-11-20T10:25:00.000Z"]);
    // 10:20 is a slot of the new schedule after the policy was created, but before the change.
    expect((await s.call("POST", "/v1/tick")).json.created).toBe(0);
    now = Date.parse("2026-11-20T10:25:00Z");
    expect((await s.call("POST", "/v1/tick")).json.created).toBe(2);
    const runs = (await s.call("GET", "/v1/runs?policy=sch")).json.items;
    expect(runs.map((r: any) => r.slot)).toEqual(["2026-11-20T10:25:00.000Z", "2026-11-20T10:25:00.000Z"]);
  });
});

describe("pausing or deleting a policy stops its queued runs", () => {
  it("cancels the runs it queued that nobody started, with the reason", async () => {
    let now = Date.parse("2026-11-20T10:17:00Z");
    const s = await startTestService({}, { clock: { now: () => new Date(now) } });
    try {
      for (let i = 0; i < 2; i++) await s.call("POST", "/v1/clusters", { name: `c${i}`, labels: { env: "prod" }, kubeconfig: KC("https://127.0.0.1:1") });
      for (const name of ["paused-one", "deleted-one"]) {
        expect((await s.call("POST", "/v1/policies", { name, selector: { matchLabels: { env: "prod" } }, schedule: "0 * * * *", retention: { last: 3 }, recipients: [RCPT] })).status).toBe(201);
      }
      now = Date.parse("2026-11-20T11:00:30Z");
      expect((await tick(s.svc)).created).toBe(4);
      expect((await s.call("PATCH", "/v1/policies/paused-one", { paused: true })).status).toBe(200);
      expect((await s.call("GET", "/v1/policies/paused-one")).json.clusters).toEqual([
        { name: "c0", nextSlot: null, notBefore: null },
        { name: "c1", nextSlot: null, notBefore: null },
      ]);
      expect((await s.call("DELETE", "/v1/policies/deleted-one")).status).toBe(204);
      for (const [policy, why] of [["paused-one", "policy paused"], ["deleted-one", "policy deleted"]]) {
        const items = (await s.call("GET", `/v1/runs?policy=${policy}`)).json.items;
        expect(items).toHaveLength(2);
        for (const r of items) {
          expect(r.state).toBe("cancelled");
          expect(r.cancelRequested).toBe(true);
          expect(r.error.message).toBe(why);
        }
      }
      // Nothing is left to claim, and a later tick queues nothing for either.
      now = Date.parse("2026-11-20T12:00:30Z");
      expect((await tick(s.svc)).created).toBe(0);

      // Resumed at 12:20, the policy starts afresh: the 12:00 slot fell inside the pause and
      // never runs; the first runs are 13:00's, which the description shows.
      now = Date.parse("2026-11-20T12:20:00Z");
      expect((await s.call("PATCH", "/v1/policies/paused-one", { paused: false })).status).toBe(200);
      expect((await s.call("GET", "/v1/policies/paused-one")).json.clusters.map((c: any) => c.nextSlot)).toEqual([
        "2026-11-20T13:00:00.000Z",
        "2026-11-20T13:00:00.000Z",
      ]);
      expect((await tick(s.svc)).created).toBe(0);
      now = Date.parse("2026-11-20T13:00:30Z");
      expect((await s.call("POST", "/v1/tick")).json.created).toBe(2);
      expect((await s.call("POST", "/v1/tick")).json.created).toBe(0); // changes nothing: not audited
      const ticks = (await s.call("GET", "/v1/audit?action=scheduler.tick")).json.items;
      expect(ticks).toHaveLength(1);
      expect(ticks[0]).toMatchObject({ subject: "scheduler", detail: { created: 2, requeued: 0, deleted: 0 } });
      expect(ticks[0].actor).toContain("admin");
      // The deleted policy's definition stays in its audit entry.
      const gone = (await s.call("GET", "/v1/audit?subject=policy/deleted-one&action=policy.delete")).json.items;
      expect(gone).toHaveLength(1);
      expect(gone[0].detail.definition).toMatchObject({ name: "deleted-one", schedule: "0 * * * *", selector: { matchLabels: { env: "prod" } }, recipients: [RCPT] });
      const slots = (await s.call("GET", "/v1/runs?policy=paused-one&state=queued")).json.items.map((r: any) => r.slot);
      expect(slots).toEqual(["2026-11-20T13:00:00.000Z", "2026-11-20T13:00:00.000Z"]);
    } finally {
      await s.stop();
    }
  });
});

describe("the facts refresh beside a capture", () => {
  const job = { cluster: "c0", conn: { name: "c0", kubeconfig: "", etcd: {} } } as never;
  const logged: string[] = [];
  const log = { debug: () => {}, info: () => {}, warn: (m: string) => void logged.push(m), error: () => {} } as never;
  /** A discovery that answers after `ms`, or never; it records whether it was told to stop. */
  const access = (ms: number | null, seen: { aborted?: boolean }) =>
    ({
      discover: (_c: unknown, signal: AbortSignal) =>
        new Promise((resolve, reject) => {
          const t = ms === null ? undefined : setTimeout(() => resolve({ masters: [], discoveredAt: "now" }), ms);
          signal.addEventListener("abort", () => {
            clearTimeout(t);
            seen.aborted = true;
            reject(new Error("aborted"));
          });
        }),
    }) as never;

  it("gives the facts when they come within the grace, null when they do not, and stops the refresh", async () => {
    const fast: { aborted?: boolean } = {};
    const a = refreshFacts(access(10, fast), job, new AbortController().signal, log);
    expect(await a.result(1000)).toEqual({ masters: [], discoveredAt: "now" });
    a.stop();
    const hung: { aborted?: boolean } = {};
    const b = refreshFacts(access(null, hung), job, new AbortController().signal, log);
    const t0 = Date.now();
    expect(await b.result(50)).toBeNull();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(hung.aborted).toBeUndefined();
    b.stop();
    expect(hung.aborted).toBe(true);
    expect(logged).toEqual(["refreshing facts took too long; using the stored ones"]);
    // The run aborted (cancel, lost lease): the refresh stops with it, quietly.
    const run = new AbortController();
    const cancelled: { aborted?: boolean } = {};
    const c = refreshFacts(access(null, cancelled), job, run.signal, log);
    run.abort();
    expect(cancelled.aborted).toBe(true);
    expect(await c.result(1000)).toBeNull();
    expect(logged).toHaveLength(1);
  });
});

describe("cancelling a run that finishes meanwhile", () => {
  it("is a conflict that changes and audits nothing", async () => {
    const s = await startTestService({ ETCD_VAULT_SCHEDULER: "off" });
    try {
      await s.call("POST", "/v1/clusters", { name: "c0", kubeconfig: KC("https://127.0.0.1:1"), recipients: [RCPT] });
      const run = await enqueueRun(s.svc, { kind: "capture", cluster: "c0" });
      // The runner's success lands between cancelRun's read and its write.
      const catalog = {
        ...s.svc.catalog,
        atomically: async (statements: PendingStatement[]) => {
          s.catalog.sqlite.prepare("update runs set state = 'succeeded', finished_at = 1 where id = ?").run(run.id);
          return s.svc.catalog.atomically(statements);
        },
      };
      const ctx = { ...s.svc, catalog, actor: { id: "t1", name: "ops", role: "operator" as const, pool: null }, remoteAddr: null, requestId: "r1" };
      await expect(cancelRun(ctx, run.id)).rejects.toMatchObject({ code: "conflict", message: `run ${run.id} is already succeeded` });
      const after = (await s.call("GET", `/v1/runs/${run.id}`)).json;
      expect(after).toMatchObject({ state: "succeeded", cancelRequested: false, error: null });
      expect((await s.call("GET", `/v1/audit?subject=run/${run.id}&action=run.cancel`)).json.items).toEqual([]);
    } finally {
      await s.stop();
    }
  });
});

describe("spread offsets stored with the membership", () => {
  it("records each pair's hash; the tick offsets runs by it and hashes memberships of older catalogs once", async () => {
    let now = Date.parse("2026-11-20T10:17:00Z");
    const s = await startTestService({}, { clock: { now: () => new Date(now) } });
    try {
      for (let i = 0; i < 3; i++) {
        await s.call("POST", "/v1/clusters", { name: `c${i}`, labels: { env: "prod" }, kubeconfig: KC("https://127.0.0.1:1") });
      }
      const r = await s.call("POST", "/v1/policies", { name: "p", selector: { matchLabels: { env: "prod" } }, schedule: "0 * * * *", spread: "30m", retention: { last: 3 }, recipients: [RCPT] });
      expect(r.status).toBe(201);
      const sqlite = s.catalog.sqlite;
      const hashes = () =>
        Object.fromEntries(
          (sqlite.prepare("select cluster, spread_hash from policy_members where policy = 'p'").all() as Array<{ cluster: string; spread_hash: number | null }>).map(
            (m) => [m.cluster, m.spread_hash],
          ),
        );
      const want = Object.fromEntries(["c0", "c1", "c2"].map((c) => [c, spreadOffsetMs(c, "p", 2 ** 32)]));
      expect(hashes()).toEqual(want);
      // A catalog from before migration 0007 (no hashes), and a membership the tick must add itself.
      sqlite.prepare("update policy_members set spread_hash = null where cluster in ('c0', 'c1')").run();
      sqlite.prepare("delete from policy_members where cluster = 'c2'").run();
      now = Date.parse("2026-11-20T11:45:00Z");
      const t = await tick(s.svc);
      // c0 and c1 are members since 10:17, so the 11:00 slot is due (offsets < 30 m); c2 joins at
      // 11:45 and waits for the first slot after that.
      expect(t.created).toBe(2);
      expect(hashes()).toEqual(want);
      const runs = sqlite.prepare("select cluster, slot, not_before from runs where policy = 'p' order by cluster").all() as Array<{ cluster: string; slot: number; not_before: number }>;
      expect(runs.map((x) => [x.cluster, x.slot, x.not_before - x.slot])).toEqual(
        ["c0", "c1"].map((c) => [c, Date.parse("2026-11-20T11:00:00Z"), spreadOffsetMs(c, "p", 30 * 60_000)]),
      );
    } finally {
      await s.stop();
    }
  });
});

describe("exactly-once ticking from two processes", () => {
  it("creates one run per due slot over a simulated week, no duplicates, none missing", async () => {
    const s = await startTestService({}, { clock: { now: () => new Date("2026-11-01T00:00:00Z") } });
    for (let i = 0; i < 20; i++) {
      await s.call("POST", "/v1/clusters", { name: `edge-${i}`, labels: { env: "prod" }, kubeconfig: KC("https://127.0.0.1:1") });
    }
    const p = await s.call("POST", "/v1/policies", { name: "hourly", selector: { matchLabels: { env: "prod" } }, schedule: "@every 1h", spread: "10m", retention: { last: 3 }, recipients: [RCPT] });
    expect(p.status).toBe(201);
    const db = join(s.dir, "data", "catalog.db");
    await s.close();
    // Two tickers over the same file: one on the hour, one every 20 minutes, both for a week.
    const tick = (every: string, start: string) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "src/entry/cli.ts"), "tick", "--db", db, "--now", start, "--until", "2026-11-08T00:00:00Z", "--every", every], {
          env: { ...process.env, ETCD_VAULT_DATA_DIR: join(s.dir, "tickers") },
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`tick exited ${code}: ${err}`))));
      });
    const [a, b] = await Promise.all([tick("1h", "2026-11-01T00:00:00Z"), tick("20m", "2026-11-01T00:05:00Z")]);
    const created = [...a.trim().split("\n"), ...b.trim().split("\n")].reduce((n, l) => n + JSON.parse(l).created, 0);
    const sqlite = new Database(db, { readonly: true });
    const rows = sqlite.prepare("select cluster, slot, not_before from runs where policy = 'hourly'").all() as Array<{ cluster: string; slot: number; not_before: number }>;
    const dupes = sqlite.prepare("select count(*) as n from (select cluster, slot from runs group by cluster, slot having count(*) > 1)").get() as { n: number };
    sqlite.close();
    expect(dupes.n).toBe(0);
    // The policy appeared at 2026-11-01T00:00Z: its first slot is 01:00; the last due one is
    // the slot whose offset has elapsed by the final tick at 2026-11-08T00:00Z.
    const hour = 3_600_000;
    const start = Date.parse("2026-11-01T01:00:00Z");
    const end = Date.parse("2026-11-08T00:00:00Z");
    let expected = 0;
    for (const r of rows) {
      expect(r.slot % hour).toBe(0);
      expect(r.not_before - r.slot).toBeLessThan(10 * 60_000);
    }
    const byCluster = new Map<string, number[]>();
    for (const r of rows) byCluster.set(r.cluster, [...(byCluster.get(r.cluster) ?? []), r.slot]);
    expect(byCluster.size).toBe(20);
    for (const [cluster, slots] of byCluster) {
      const offset = rows.find((r) => r.cluster === cluster)!.not_before - rows.find((r) => r.cluster === cluster)!.slot;
      const want: number[] = [];
      for (let t = start; t + offset <= end; t += hour) want.push(t);
      expect(slots.sort((x, y) => x - y), cluster).toEqual(want);
      expected += want.length;
    }
    expect(rows.length).toBe(expected);
    expect(created).toBe(expected);
    await s.stop();
  }, 120_000);
});

describe("scheduled backups and leases with real parts", () => {
  let f: Fleet;
  let s: TestService;
  let now = Date.parse("2026-11-20T10:00:00Z");
  beforeAll(async () => {
    f = await startFleet({ keys: 50 });
    s = await startTestService({ ETCD_VAULT_SCHEDULER: "on", ETCD_VAULT_LEASE: "3s" }, { clock: { now: () => new Date(now) } });
    await registerFleet(s, f, "prod-a", { env: "prod" });
    await s.call("POST", "/v1/clusters", { name: "dev-a", labels: { env: "dev" }, kubeconfig: f.sim.kubeconfig, recipients: [f.recipient] });
  });
  afterAll(async () => {
    await s?.stop();
    await f?.stop();
  });

  it("a policy over labelled clusters yields one scheduled backup per slot as the clock moves", async () => {
    const p = await s.call("POST", "/v1/policies", { name: "prod-hourly", selector: { matchLabels: { env: "prod" } }, schedule: "0 * * * *", retention: { last: 5 }, recipients: [f.recipient], target: "s3" });
    expect(p.status).toBe(201);
    // Creation at 10:00 does not fire the 10:00 slot.
    expect((await s.call("POST", "/v1/tick")).json.created).toBe(0);
    for (const hour of [11, 12]) {
      now = Date.parse(`2026-11-20T${hour}:00:30Z`);
      const t1 = (await s.call("POST", "/v1/tick")).json;
      const t2 = (await s.call("POST", "/v1/tick")).json;
      expect(t1.created).toBe(1);
      expect(t2.created).toBe(0);
      const runs = (await s.call("GET", "/v1/runs?policy=prod-hourly&limit=10")).json.items;
      const run = await waitForRun(s, runs[0].id, (r) => r.state === "succeeded" || r.state === "failed");
      expect(run.state).toBe("succeeded");
      expect(run.slot).toBe(`2026-11-20T${hour}:00:00.000Z`);
    }
    const backups = (await s.call("GET", "/v1/backups?policy=prod-hourly")).json.items;
    expect(backups).toHaveLength(2);
    expect(backups.every((b: any) => b.cluster === "prod-a" && b.state === "available")).toBe(true);
  });

  it("re-queues a run whose runner stopped heart-beating; it is captured once", async () => {
    // A runner that claims the run and then vanishes. Queue without waking the in-process
    // runner and claim at once, so the ghost holds the lease.
    const quiet = { ...s.svc, notifyWork: () => {} };
    const queued = await enqueueRun(quiet, { kind: "capture", cluster: "dev-a", options: { target: "s3" } });
    const claimed = await claimRun(quiet, "runner:ghost", { pool: null, anyPool: true });
    expect(claimed?.id).toBe(queued.id);
    const r = { json: { id: queued.id } };
    const held = (await s.call("GET", `/v1/runs/${r.json.id}`)).json;
    expect(held.lease.owner).toBe("runner:ghost");
    expect(held.state).toBe("running");
    now += 4_000; // lease (3 s) expired
    const t = (await s.call("POST", "/v1/tick")).json;
    expect(t.requeued).toBe(1);
    const done = await waitForRun(s, r.json.id, (x) => x.state === "succeeded" || x.state === "failed");
    expect(done.state).toBe("succeeded");
    expect(done.attempt).toBe(2);
    const mine = (await s.call("GET", "/v1/backups?cluster=dev-a")).json.items.filter((b: any) => b.runId === r.json.id);
    expect(mine.filter((b: any) => b.state === "available")).toHaveLength(1);
  });
});

describe("the tick's due runs, planned in SQL", () => {
  // The tick puts Schedule.dueSlotMs's rule into SQL over the memberships (scheduler/tick.ts).
  // Here both run on random pairs: memberships of any age and hash, slots that already have some
  // of their runs, time zones around both DST changes, spreads up to the schedule's interval.
  const schedules = [
    { schedule: "0 * * * *", timezone: "UTC", maxSpread: 59 },
    { schedule: "*/15 * * * *", timezone: "Europe/Berlin", maxSpread: 14 },
    { schedule: "30 2 * * *", timezone: "Europe/Berlin", maxSpread: 23 * 60 },
    { schedule: "0 1 * * *", timezone: "America/New_York", maxSpread: 22 * 60 },
    { schedule: "@every 45m", timezone: "UTC", maxSpread: 44 },
  ];
  const CLUSTERS = 8;
  let s: TestService;
  let now = Date.parse("2026-03-29T00:30:00Z");
  beforeAll(async () => {
    s = await startTestService({}, { clock: { now: () => new Date(now) } });
    for (let i = 0; i < CLUSTERS; i++) {
      await s.call("POST", "/v1/clusters", { name: `k${i}`, labels: { env: "prod" }, kubeconfig: KC("https://127.0.0.1:1") });
    }
    const p = await s.call("POST", "/v1/policies", { name: "p", selector: { matchLabels: { env: "prod" } }, schedule: "0 * * * *", retention: { last: 3 }, recipients: [RCPT] });
    expect(p.status).toBe(201);
  });
  afterAll(async () => s?.stop());
  const existingRun = (id: string, cluster: string, slot: number, notBefore: number, at: number) =>
    s.catalog.sqlite
      .prepare("insert into runs (id, kind, cluster, policy, slot, not_before, state, attempt, cancel_requested, bytes, created_at) values (?, 'capture', ?, 'p', ?, ?, 'succeeded', 1, 0, 0, ?)")
      .run(id, cluster, slot, notBefore, at);

  it("creates exactly the runs Schedule.dueSlotMs names, with ULIDs of the tick's time increasing in slot and cluster order", async () => {
    const DAY = 86_400_000;
    // Around the 2026 DST changes: Europe 29 March and 25 October, US 8 March and 1 November.
    const anchors = ["2026-03-08T07:00:00Z", "2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z", "2026-11-01T06:00:00Z"].map(Date.parse);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...schedules),
        fc.integer({ min: 0, max: 3 }),
        // Whole minutes, like slots and many offsets below, so that slot + offset = now comes up.
        fc.integer({ min: -2 * 1440, max: 2 * 1440 }).map((m) => m * 60_000),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.record({ age: fc.integer({ min: 0, max: 3 * DAY }), hash: fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 1440 }).map((m) => m * 60_000)), existing: fc.boolean() }), {
          minLength: CLUSTERS,
          maxLength: CLUSTERS,
        }),
        async (sched, anchor, shift, spreadFraction, pairs) => {
          now = anchors[anchor]! + shift;
          const spreadMin = Math.floor(spreadFraction * sched.maxSpread);
          const sqlite = s.catalog.sqlite;
          sqlite.prepare("delete from runs").run();
          sqlite.prepare("update policies set schedule = ?, timezone = ?, spread = ? where name = 'p'").run(sched.schedule, sched.timezone, `${spreadMin}m`);
          const schedule = new Schedule({ schedule: sched.schedule, timezone: sched.timezone, spread: spreadMin * 60_000 }, { now: new Date(now), stored: true });
          const want: Array<[string, number, number]> = [];
          pairs.forEach((pair, i) => {
            const cluster = `k${i}`;
            const since = now - pair.age;
            sqlite.prepare("update policy_members set since = ?, spread_hash = ? where policy = 'p' and cluster = ?").run(since, pair.hash, cluster);
            const offset = spreadMin ? pair.hash % (spreadMin * 60_000) : 0;
            const slot = schedule.dueSlotMs(now, since, offset);
            if (slot === null) return;
            if (pair.existing) {
              // Its slot has a run already (another tick made it): nothing new for this pair.
              existingRun(`01EXISTING${String(i).padStart(16, "0")}`, cluster, slot, slot + offset, now);
            } else want.push([cluster, slot, slot + offset]);
          });
          const t = await tick(s.svc);
          const made = sqlite.prepare("select id, cluster, slot, not_before from runs where created_at = ? and id not like '01EXISTING%' order by id").all(now) as Array<{
            id: string;
            cluster: string;
            slot: number;
            not_before: number;
          }>;
          expect(t.created).toBe(want.length);
          // Ordered by id, the runs come in (slot, cluster) order.
          expect(made.map((r) => [r.cluster, r.slot, r.not_before])).toEqual(want.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1)));
          for (const r of made) {
            expect(r.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
            expect(decodeTime(r.id)).toBe(now);
          }
          // A second tick at the same moment finds everything in place.
          expect((await tick(s.svc)).created).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
