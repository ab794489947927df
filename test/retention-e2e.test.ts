// Retention end to end: previews with reasons, apply with `expect`, holds and object lock that
// are never deleted, manual TTLs, deleted policies that keep their backups — with real captures
// in s3rver, checked object by object.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestService, type TestService } from "./helpers/service.js";
import { listKeys, registerFleet, startFleet, waitForRun, type Fleet } from "./helpers/fleet.js";
import { S3RVER_CREDENTIALS, S3RVER_REGION } from "./support/s3-server.js";

let f: Fleet;
let s: TestService;
let now = Date.parse("2026-11-20T09:30:00Z");

beforeAll(async () => {
  f = await startFleet({ keys: 20 });
  s = await startTestService({ ETCD_VAULT_SCHEDULER: "on" }, { clock: { now: () => new Date(now) } });
  await registerFleet(s, f, "prod-a", { env: "prod" });
}, 120_000);
afterAll(async () => {
  await s?.stop();
  await f?.stop();
});

const settledOk = (r: any) => r.state === "succeeded" || r.state === "failed";
async function manual(target = "s3") {
  const r = await s.call("POST", "/v1/clusters/prod-a/backups", { target });
  expect(r.status).toBe(202);
  const run = await waitForRun(s, r.json.id, settledOk);
  expect(run.state).toBe("succeeded");
  return run.backupId as string;
}
const objectsOf = async (id: string) => (await listKeys(f)).filter((k) => k.includes(id));

describe("object lock", () => {
  it("sets the retention date on upload and the backup's lockedUntil; deletion is refused", async () => {
    const t = await s.call("POST", "/v1/targets", {
      name: "locked",
      url: `s3://${f.bucket}/locked?endpoint=${encodeURIComponent(f.proxy.endpoint)}&region=${S3RVER_REGION}&forcePathStyle=true&checksums=false`,
      credentials: S3RVER_CREDENTIALS,
      objectLock: { mode: "GOVERNANCE", days: 3 },
    });
    expect(t.status).toBe(201);
    expect(t.text).not.toContain(S3RVER_CREDENTIALS.secretAccessKey);
    f.proxy.clearRecords();
    const id = await manual("locked");
    const put = f.proxy.requests.find((r) => (r.operation === "PutObject" || r.operation === "CreateMultipartUpload") && r.path.endsWith(".db.age"))!;
    expect(put.headers["x-amz-object-lock-mode"]).toBe("GOVERNANCE");
    const until = Date.parse(String(put.headers["x-amz-object-lock-retain-until-date"]));
    expect(until).toBe(now + 3 * 86_400_000);
    const b = (await s.call("GET", `/v1/backups/${id}`)).json;
    expect(Date.parse(b.lockedUntil)).toBe(until);
    const del = await s.call("DELETE", `/v1/backups/${id}`);
    expect(del.status).toBe(409);
    expect(del.json.error.message).toContain("locked");
  });
});

describe("policy retention", () => {
  const ids: string[] = [];
  it("plans with reasons and applies only the expected ids, removing exactly their objects", async () => {
    const p = await s.call("POST", "/v1/policies", {
      name: "hourly",
      selector: { matchLabels: { env: "prod" } },
      schedule: "0 * * * *",
      retention: { last: 4 },
      recipients: [f.recipient],
      target: "s3",
    });
    expect(p.status).toBe(201);
    for (const hour of [10, 11, 12, 13]) {
      now = Date.parse(`2026-11-20T${hour}:00:10Z`);
      expect((await s.call("POST", "/v1/tick")).json.created).toBe(1);
      const run = (await s.call("GET", "/v1/runs?policy=hourly&limit=1")).json.items[0];
      const done = await waitForRun(s, run.id, settledOk);
      expect(done.state).toBe("succeeded");
      ids.push(done.backupId);
    }
    // Each tick also applies retention; with last 4 nothing went. Tighten the policy and preview.
    expect((await s.call("PATCH", "/v1/policies/hourly", { retention: { last: 2 } })).status).toBe(200);
    const plan = (await s.call("POST", "/v1/retention/plan", { policy: "hourly" })).json;
    const reasons = Object.fromEntries([...plan.keep, ...plan.delete].map((i: any) => [i.backupId, i.reasons]));
    expect(reasons[ids[3]!]).toEqual(["newest", "last 1/2"]);
    expect(reasons[ids[2]!]).toEqual(["last 2/2"]);
    expect(plan.delete.map((d: any) => d.backupId).sort()).toEqual([ids[0], ids[1]].sort());
    expect(plan.delete.every((d: any) => d.reasons[0] === "no rule")).toBe(true);
    expect(plan.summary.delete.count).toBe(2);
    const before = await listKeys(f);

    // A hold on one of them: the next plan keeps it.
    expect((await s.call("PUT", `/v1/backups/${ids[1]}/hold`, { reason: "incident 42" })).status).toBe(200);
    const applied = (await s.call("POST", "/v1/retention/apply", { policy: "hourly", expect: [ids[0], ids[1], "01NOTPLANNED"] })).json;
    expect(applied.deleted).toEqual([ids[0]]);
    expect(applied.summary.mode).toBe("apply");
    expect((await s.call("GET", `/v1/backups/${ids[0]}`)).json.state).toBe("deleted");
    expect(await objectsOf(ids[0]!)).toEqual([]);
    const after = await listKeys(f);
    expect(before.filter((k) => !after.includes(k)).sort()).toEqual(before.filter((k) => k.includes(ids[0]!)).sort());
    for (const id of ids.slice(1)) expect((await objectsOf(id)).length).toBe(2);

    // A deleted backup is gone for holds as for links (410), and a reason is printable text.
    const goneHold = await s.call("PUT", `/v1/backups/${ids[0]}/hold`, { reason: "too late" });
    expect(goneHold.status).toBe(410);
    expect(goneHold.json.error.code).toBe("gone");
    expect((await s.call("POST", `/v1/backups/${ids[0]}/links`, { kind: "bundle" })).status).toBe(410);
    const ctl = await s.call("PUT", `/v1/backups/${ids[2]}/hold`, { reason: "\u0000\u001b[31m" });
    expect(ctl.status).toBe(400);
    expect(ctl.json.error.message).toContain("reason: must not contain control characters");
    const badExpect = await s.call("POST", "/v1/retention/apply", { policy: "hourly", expect: [42] });
    expect(badExpect.status).toBe(400);
    expect(badExpect.json.error.message).toContain("expect[0]");

    const held = await s.call("DELETE", `/v1/backups/${ids[1]}`);
    expect(held.status).toBe(409);
    expect(held.json.error.message).toContain("hold");
    const again = (await s.call("POST", "/v1/retention/plan", { policy: "hourly" })).json;
    expect(again.delete).toEqual([]);
    expect(again.keep.find((k: any) => k.backupId === ids[1]).reasons).toEqual(["hold"]);
  });

  it("keeps everything of a deleted policy and refuses bad scopes", async () => {
    expect((await s.call("DELETE", "/v1/policies/hourly")).status).toBe(204);
    expect((await s.call("DELETE", `/v1/backups/${ids[1]}/hold`)).status).toBe(200);
    // Releasing again answers the same and records nothing more.
    const released = await s.call("DELETE", `/v1/backups/${ids[1]}/hold`);
    expect(released.json).toMatchObject({ hold: false, holdReason: null });
    expect((await s.call("GET", `/v1/audit?subject=backup/${ids[1]}&action=backup.release`)).json.items).toHaveLength(1);
    const plan = (await s.call("POST", "/v1/retention/plan", {})).json;
    const mine = plan.keep.filter((k: any) => k.policy === "hourly");
    expect(mine.map((k: any) => k.backupId).sort()).toEqual(ids.slice(1).sort());
    expect(mine.every((k: any) => k.reasons.includes("policy deleted"))).toBe(true);
    expect(plan.delete.filter((d: any) => d.policy === "hourly")).toEqual([]);
    expect((await s.call("POST", "/v1/retention/plan", { policy: "nope" })).status).toBe(404);
    const bad = await s.call("POST", "/v1/retention/apply", { cluster: "Bad_Name" });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain("cluster");
  });

  it("expires manual backups after the TTL unless held or the newest, and the tick sweeps them", async () => {
    const a = await manual();
    now += 3_600_000;
    const b = await manual();
    // manual=true lists only manual backups, manual=false only policy ones (it used to list all).
    const onlyManual = (await s.call("GET", "/v1/backups?cluster=prod-a&manual=true&limit=100")).json.items;
    const onlyPolicy = (await s.call("GET", "/v1/backups?cluster=prod-a&manual=false&limit=100")).json.items;
    expect(onlyManual.map((x: any) => x.id)).toEqual(expect.arrayContaining([a, b]));
    expect(onlyManual.every((x: any) => x.policy === null)).toBe(true);
    expect(onlyPolicy.length).toBeGreaterThan(0);
    expect(onlyPolicy.every((x: any) => x.policy !== null)).toBe(true);
    const all = (await s.call("GET", "/v1/backups?cluster=prod-a&limit=100")).json.items;
    expect(onlyManual.length + onlyPolicy.length).toBe(all.length);
    now += 31 * 86_400_000;
    const plan = (await s.call("POST", "/v1/retention/plan", { cluster: "prod-a" })).json;
    const manualDeletes = plan.delete.filter((d: any) => d.policy === null).map((d: any) => d.backupId);
    expect(manualDeletes).toContain(a);
    expect(manualDeletes).not.toContain(b); // newest of its series
    expect(plan.delete.find((d: any) => d.backupId === a).reasons).toEqual(["expired"]);
    const t = (await s.call("POST", "/v1/tick")).json;
    expect(t.deleted).toBeGreaterThanOrEqual(1);
    expect((await s.call("GET", `/v1/backups/${a}`)).json.state).toBe("deleted");
    expect(await objectsOf(a)).toEqual([]);
    expect((await s.call("GET", `/v1/backups/${b}`)).json.state).toBe("available");
  });
});

describe("metrics", () => {
  it("exposes runs, backups and each cluster's backup age and RPO state, behind a token", async () => {
    expect((await s.call("GET", "/metrics", undefined, null)).status).toBe(401);
    const m = await s.call("GET", "/metrics");
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/etcd_vault_runs\{state="succeeded"\} \d+/);
    expect(m.text).toMatch(/etcd_vault_backups\{state="available"\} \d+/);
    expect(m.text).toMatch(/etcd_vault_last_backup_age_seconds\{cluster="prod-a"\} \d+/);
    // Deleted backups are counted, but their bytes are gone: not reported as stored.
    expect(m.text).toMatch(/etcd_vault_backups\{state="deleted"\} [1-9]/);
    expect(m.text).not.toContain('etcd_vault_backup_bytes{state="deleted"}');
    expect(m.text).toMatch(/etcd_vault_backup_bytes\{state="available"\} [1-9]/);

    // A cluster that just started matching a policy has no backup yet and is not late yet; it is
    // once the RPO has passed since.
    // (Unreachable, so a timer tick in between cannot give it a backup.)
    const unreachable = f.sim.kubeconfig.replace(/server: \S+/, "server: https://127.0.0.1:1");
    expect(unreachable).toContain("https://127.0.0.1:1");
    const fresh = await s.call("POST", "/v1/clusters", { name: "fresh-one", labels: { tier: "fresh" }, kubeconfig: unreachable, recipients: [f.recipient] });
    expect(fresh.status).toBe(201);
    expect((await s.call("POST", "/v1/policies", { name: "fresh-hourly", selector: { matchLabels: { tier: "fresh" } }, schedule: "@every 1h", retention: { last: 2 }, recipients: [f.recipient] })).status).toBe(201);
    const soon = (await s.call("GET", "/metrics")).text;
    expect(soon).toContain('etcd_vault_rpo_breached{cluster="fresh-one"} 0');
    now += 2 * 3_600_000; // past the default RPO (1.5 h) with still no backup
    const late = (await s.call("GET", "/metrics")).text;
    expect(late).toContain('etcd_vault_rpo_breached{cluster="fresh-one"} 1');
  });
});
