// Remote runners as real processes against a Node control plane: captures once, survives a
// runner killed mid-capture, keeps pools apart, refuses uploads from runners without the lease,
// and never logs a kubeconfig.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, type ServerType } from "@hono/node-server";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startTestService, type TestService } from "./helpers/service.js";
import { registerFleet, startFleet, waitForRun, type Fleet } from "./helpers/fleet.js";
import { startCli, type CliProcess } from "./helpers/processes.js";
import { freePort } from "./support/etcd.js";

let f: Fleet;
let s: TestService;
let server: ServerType;
let url: string;
const runners: CliProcess[] = [];
let tokenA: string;
let slowFile: string;

const slowPipe = (file: string): string[] => [
  "bash",
  "-c",
  // 1 MiB every 150 ms: slow enough to kill a runner mid-capture.
  'size=$(stat -c %s "$1"); n=$(( (size + 1048575) / 1048576 )); for ((i=0;i<n;i++)); do dd if="$1" bs=1048576 skip=$i count=1 status=none; sleep 0.15; done',
  "slow-pipe",
  file,
];

beforeAll(async () => {
  f = await startFleet({ keys: 100 });
  s = await startTestService({ ETCD_VAULT_SCHEDULER: "off", ETCD_VAULT_LEASE: "3s" });
  const port = await freePort();
  server = serve({ fetch: s.app.fetch, port, hostname: "127.0.0.1" });
  url = `http://127.0.0.1:${port}`;
  await registerFleet(s, f, "main", { env: "prod" });
  await s.call("PATCH", "/v1/clusters/main", { pool: "a" });
  await s.call("POST", "/v1/clusters", { name: "other", pool: "b", kubeconfig: f.sim.kubeconfig, recipients: [f.recipient] });
  tokenA = (await s.call("POST", "/v1/tokens", { name: "runners-a", role: "runner", pool: "a" })).json.token;
  // A ~12 MiB snapshot streamed slowly, uploaded in 5 MiB parts.
  await f.etcd.fillTo(12 * 1024 * 1024, { valueSize: 256 * 1024 });
  // etcdctl 3.4's `snapshot save` file already ends with the SHA-256 trailer: it is exactly
  // the stream `snapshot pipe` would send.
  slowFile = join(f.dir, "slow-stream.bin");
  await f.etcd.snapshotTo(slowFile);
  for (const name of ["runner-1", "runner-2"]) {
    runners.push(startCli(["runner", "--server", url, "--name", name, "--part-size", "5m", "--concurrency", "1"], { ETCD_VAULT_RUNNER_TOKEN: tokenA }));
  }
}, 120_000);

afterAll(async () => {
  for (const r of runners) r.kill("SIGKILL");
  await Promise.all(runners.map((r) => r.exited));
  await new Promise((res) => setTimeout(res, 700)); // in-flight long polls see their clients gone
  server?.close();
  await s?.stop();
  await f?.stop();
});

describe("remote runners", () => {
  it("captures a manual backup once, through the control plane", async () => {
    const r = await s.call("POST", "/v1/clusters/main/backups", { target: "s3" });
    expect(r.status).toBe(202);
    const run = await waitForRun(s, r.json.id, (x) => x.state === "succeeded" || x.state === "failed");
    expect(run.state).toBe("succeeded");
    expect(run.lease).toBeNull();
    const backups = (await s.call("GET", "/v1/backups?cluster=main")).json.items.filter((b: any) => b.runId === run.id);
    expect(backups).toHaveLength(1);
    expect(backups[0].state).toBe("available");
    expect(f.sim.execs.filter((e) => e.argv.includes("pipe")).length).toBe(1);
  });

  it("discovers a pool cluster through its pool's runner", async () => {
    const before = (await s.call("GET", "/v1/runs?cluster=main&limit=500")).json.items.filter((r: any) => r.kind === "discover").length;
    const r = await s.call("POST", "/v1/clusters/main/discover");
    expect(r.status, r.text).toBe(200);
    expect(r.json.facts.masters).toEqual([{ name: "master-0", internalIP: "127.0.0.1" }]);
    const runs = (await s.call("GET", "/v1/runs?cluster=main&limit=500")).json.items.filter((x: any) => x.kind === "discover");
    expect(runs.length).toBe(before + 1);
    expect(runs[0].state).toBe("succeeded");
    expect(runs[0].lease).toBeNull();
  });

  it("never hands a pool-b cluster to pool-a runners", async () => {
    const r = await s.call("POST", "/v1/clusters/other/backups", { target: "s3" });
    expect(r.status).toBe(202);
    await new Promise((res) => setTimeout(res, 3000));
    const run = (await s.call("GET", `/v1/runs/${r.json.id}`)).json;
    expect(run.state).toBe("queued");
    expect(run.lease).toBeNull();
    await s.call("POST", `/v1/runs/${r.json.id}/cancel`);
  });

  it("a runner killed mid-capture: the lease expires, the other runner captures, nothing stray", { timeout: 120_000 }, async () => {
    f.sim.config.pods![0]!.exec = [{ argvIncludes: ["pipe"], run: slowPipe(slowFile) }];
    f.proxy.clearRecords();
    const r = await s.call("POST", "/v1/clusters/main/backups", { target: "s3" });
    // Wait until the first part has reached S3, then kill whoever holds the lease.
    let run: any;
    for (let i = 0; i < 200; i++) {
      run = (await s.call("GET", `/v1/runs/${r.json.id}`)).json;
      if (run.state === "running" && f.proxy.ops("UploadPart").length >= 1) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(run.state).toBe("running");
    const victimName = run.lease.owner.split(":").pop();
    const victim = runners.find((p) => p.child.spawnargs.includes(victimName))!;
    const survivor = runners.find((p) => p !== victim)!;
    const firstUpload = f.proxy.ops("UploadPart")[0]!.query.uploadId;
    expect(firstUpload).toBeTruthy();
    victim.kill("SIGKILL");
    await victim.exited;
    // Lease 3 s; the tick re-queues the run and aborts the dead attempt's upload.
    await new Promise((res) => setTimeout(res, 3500));
    const t = (await s.call("POST", "/v1/tick")).json;
    expect(t.requeued).toBe(1);
    const done = await waitForRun(s, r.json.id, (x) => x.state === "succeeded" || x.state === "failed", 60_000).catch((e) => {
      throw new Error(`${(e as Error).message}\nsurvivor log:\n${survivor.output().slice(-3000)}`);
    });
    expect(done.state).toBe("succeeded");
    expect(done.attempt).toBe(2);
    expect(done.lease).toBeNull();
    const mine = (await s.call("GET", "/v1/backups?cluster=main&limit=50")).json.items.filter((b: any) => b.runId === r.json.id);
    expect(mine.filter((b: any) => b.state === "available")).toHaveLength(1);
    expect(mine.filter((b: any) => b.state === "failed")).toHaveLength(1);
    const aborts = f.proxy.ops("AbortMultipartUpload").map((a) => a.query.uploadId);
    expect(aborts).toContain(firstUpload);
    expect(survivor.output()).toContain(r.json.id);
    // Restore a live second runner for the remaining tests.
    runners.splice(runners.indexOf(victim), 1);
    runners.push(startCli(["runner", "--server", url, "--name", "runner-3", "--part-size", "5m"], { ETCD_VAULT_RUNNER_TOKEN: tokenA }));
    f.sim.config.pods![0]!.exec = [f.pipeRule()];
  });

  it("refuses uploads without the lease, and parts after a lost lease", async () => {
    const ghost = (await s.call("POST", "/v1/tokens", { name: "ghost", role: "runner", pool: "b" })).json.token;
    const headers = { authorization: `Bearer ${ghost}`, "x-etcd-vault-runner": "ghost", "content-type": "application/json" };
    // A run that another runner holds (or held): 409.
    const someRun = (await s.call("GET", "/v1/runs?cluster=main&limit=1")).json.items[0];
    let res = await fetch(`${url}/v1/runners/runs/${someRun.id}/parts/1`, { method: "PUT", headers: { ...headers, "content-type": "application/octet-stream" }, body: new Uint8Array(10) });
    expect(res.status).toBe(409);
    // The ghost claims a pool-b run, then loses its lease by not heart-beating.
    const q = await s.call("POST", "/v1/clusters/other/backups", { target: "s3" });
    res = await fetch(`${url}/v1/runners/claim`, { method: "POST", headers, body: JSON.stringify({ waitSeconds: 5 }) });
    expect(res.status).toBe(200);
    const job = await res.json();
    expect(job.run.id).toBe(q.json.id);
    expect(job.cluster.kubeconfig).toContain("current-context");
    await new Promise((r) => setTimeout(r, 3500));
    expect((await s.call("POST", "/v1/tick")).json.requeued).toBe(1);
    f.proxy.clearRecords();
    res = await fetch(`${url}/v1/runners/runs/${q.json.id}/parts/1`, { method: "PUT", headers: { ...headers, "content-type": "application/octet-stream" }, body: new Uint8Array(1024) });
    expect(res.status).toBe(409);
    expect(f.proxy.ops("UploadPart")).toHaveLength(0);
    res = await fetch(`${url}/v1/runners/runs/${q.json.id}/heartbeat`, { method: "POST", headers });
    expect(res.status).toBe(409);
    await s.call("POST", `/v1/runs/${q.json.id}/cancel`);

    // Cancelling a run the ghost holds: it says so at once, and ends cancelled when the runner obeys.
    const q2 = await s.call("POST", "/v1/clusters/other/backups", { target: "s3" });
    res = await fetch(`${url}/v1/runners/claim`, { method: "POST", headers, body: JSON.stringify({ waitSeconds: 5 }) });
    expect((await res.json()).run.id).toBe(q2.json.id);
    const asked = await s.call("POST", `/v1/runs/${q2.json.id}/cancel`);
    expect(asked.status).toBe(200);
    expect(asked.json).toMatchObject({ state: "running", cancelRequested: true });
    expect((await s.call("GET", `/v1/runs/${q2.json.id}`)).json.cancelRequested).toBe(true);
    // Asking again changes nothing and is not audited twice.
    expect((await s.call("POST", `/v1/runs/${q2.json.id}/cancel`)).json).toMatchObject({ state: "running", cancelRequested: true });
    expect((await s.call("GET", `/v1/audit?subject=run/${q2.json.id}&action=run.cancel`)).json.items).toHaveLength(1);
    res = await fetch(`${url}/v1/runners/runs/${q2.json.id}/heartbeat`, { method: "POST", headers });
    expect(res.status).toBe(409);
    expect((await res.json()).error.message).toContain("was cancelled");
    res = await fetch(`${url}/v1/runners/runs/${q2.json.id}/fail`, { method: "POST", headers, body: JSON.stringify({ code: "cancelled", message: "told to stop" }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ state: "cancelled", cancelRequested: true, lease: null });
    // A second cancel of a finished run is a conflict, not a change.
    expect((await s.call("POST", `/v1/runs/${q2.json.id}/cancel`)).status).toBe(409);
  });

  it("checks what a runner sends: damaged parts are not stored, racing parts never mix, empty or implausible captures are refused", async () => {
    const token = (await s.call("POST", "/v1/tokens", { name: "prober", role: "runner", pool: "c" })).json.token;
    expect((await s.call("POST", "/v1/clusters", { name: "pool-c", pool: "c", kubeconfig: f.sim.kubeconfig, recipients: [f.recipient] })).status).toBe(201);
    const headers = { authorization: `Bearer ${token}`, "x-etcd-vault-runner": "prober" };
    const json = { ...headers, "content-type": "application/json" };
    const claim = async (): Promise<string> => {
      const q = await s.call("POST", "/v1/clusters/pool-c/backups", {});
      expect(q.status).toBe(202);
      const r = await fetch(`${url}/v1/runners/claim`, { method: "POST", headers: json, body: JSON.stringify({ waitSeconds: 5 }) });
      expect(r.status).toBe(200);
      const job = await r.json();
      expect(job.run.id).toBe(q.json.id);
      return job.run.id;
    };
    const put = (id: string, n: number, body: Uint8Array, sha?: string) =>
      fetch(`${url}/v1/runners/runs/${id}/parts/${n}`, { method: "PUT", headers: { ...headers, "content-type": "application/octet-stream", ...(sha ? { "x-part-sha256": sha } : {}) }, body: body as unknown as BodyInit });
    const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    const report = (plain: number, cipher: Uint8Array) => ({
      pod: "etcd-m0",
      plaintext: { size: plain, sha256: "a".repeat(64) },
      ciphertext: { size: cipher.length, sha256: sha(cipher) },
      timings: { execFirstByteMs: 1, streamMs: 1, uploadMs: 1, totalMs: 1 },
      facts: null,
    });
    const complete = (id: string, body: unknown) => fetch(`${url}/v1/runners/runs/${id}/complete`, { method: "POST", headers: json, body: JSON.stringify(body) });
    const backupOf = async (id: string) => (await s.call("GET", `/v1/runs/${id}`)).json;

    // A part whose checksum does not match is refused before it is stored: the number stays free.
    let id = await claim();
    const a = randomBytes(3_000_000);
    const b = randomBytes(3_000_000);
    let res = await put(id, 1, a, sha(b));
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toContain("x-part-sha256");
    res = await put(id, 1, a, sha(a).toUpperCase());
    expect(res.status).toBe(200);
    // The same part number twice at once: one wins, and the object is assembled from its bytes.
    const [r2a, r2b] = await Promise.all([put(id, 2, a), put(id, 2, b)]);
    expect([r2a.status, r2b.status].sort()).toEqual([200, 409]);
    const won = r2a.status === 200 ? a : b;
    const cipher = Buffer.concat([a, won]);
    res = await complete(id, report(5_000_000 - ((5_000_000 - 32) % 512), cipher));
    expect(res.status).toBe(200);
    const backup = await res.json();
    expect(backup.state).toBe("available");
    const link = await s.call("POST", `/v1/backups/${backup.id}/links`, { kind: "snapshot" });
    const stored = Buffer.from(await (await fetch(link.json.url.replace(/^https?:\/\/[^/]+/, url))).arrayBuffer());
    expect(sha(stored)).toBe(backup.ciphertext.sha256);
    expect(sha(stored)).toBe(sha(cipher));
    // The object deleted behind the service's back: HEAD and GET both say so, without the object key.
    const objectFile = join(s.dir, "data", "vault", backup.objectKey);
    expect(existsSync(objectFile)).toBe(true);
    rmSync(objectFile);
    const dl = link.json.url.replace(/^https?:\/\/[^/]+/, url);
    const headGone = await fetch(dl, { method: "HEAD" });
    expect(headGone.status).toBe(404);
    const getGone = await fetch(dl);
    expect(getGone.status).toBe(404);
    const goneText = await getGone.text();
    expect(goneText).toContain("missing from target");
    expect(goneText).not.toContain(backup.objectKey);

    // Nothing uploaded, or sizes no etcd snapshot and age file can have: refused, no backup.
    for (const [parts, plain, why] of [
      [[], 544, "no ciphertext was uploaded"],
      [[randomBytes(4328)], 999_999_968 + 32 - ((999_999_968) % 512), "cannot be the age encryption"],
      [[randomBytes(4328)], 1000, "is not an etcd snapshot's"],
    ] as const) {
      id = await claim();
      for (const [i, p] of parts.entries()) expect((await put(id, i + 1, p)).status).toBe(200);
      res = await complete(id, report(plain, Buffer.concat(parts.length ? [...parts] : [Buffer.alloc(0)])));
      expect(res.status).toBe(400);
      expect((await res.json()).error.message).toContain(why);
      const run = await backupOf(id);
      expect(run.state).not.toBe("succeeded");
      if (run.backupId) expect((await s.call("GET", `/v1/backups/${run.backupId}`)).json.state).not.toBe("available");
      await s.call("POST", `/v1/runs/${id}/cancel`);
    }

    // What a runner reports is shown to people (runs, RESTORE.md). Facts that do not pass are
    // dropped, not the backup; a failure message is cleaned, not refused (it must be recorded).
    id = await claim();
    const good = randomBytes(700);
    expect((await put(id, 1, good)).status).toBe(200);
    const badFacts = { masters: [{ name: "m0\u001b[31m", internalIP: "not-an-ip" }], etcdPods: [], etcdVersion: null, kubernetesVersion: null, deckhouseVersion: null, multiMaster: false, discoveredAt: "yesterday" };
    res = await complete(id, { ...report(544, good), pod: "etcd-\u0000m0", facts: badFacts, etcd: { revision: 0.1 + 0.2, keys: 1e19 } });
    expect(res.status).toBe(200);
    const kept = await res.json();
    expect(kept.state).toBe("available");
    expect(kept.facts).toBeNull();
    // Counts that are not counts are not kept either, and the list (rendered by SQLite) shows the
    // backup exactly as its own GET does.
    expect(kept.etcd).toMatchObject({ revision: null, keys: null });
    const listed = (await s.call("GET", "/v1/backups?cluster=pool-c&limit=500")).json.items.find((b: { id: string }) => b.id === kept.id);
    expect(listed).toEqual((await s.call("GET", `/v1/backups/${kept.id}`)).json);
    id = await claim();
    const fail = (body: unknown) => fetch(`${url}/v1/runners/runs/${id}/fail`, { method: "POST", headers: json, body: JSON.stringify(body) });
    expect((await fail({ code: "exec_failed", message: "ok", pod: "x".repeat(5000) })).status).toBe(400);
    res = await fail({ code: "exec_failed", message: "etcdctl exited 1:\r\n\u001b[31mError:\u001b[0m context deadline exceeded\u0000\u202e\n", pod: "etcd-m0" });
    expect(res.status).toBe(200);
    const recorded = (await backupOf(id)).error.message as string;
    expect(recorded).toContain("etcdctl exited 1:\nError: context deadline exceeded");
    expect(recorded).not.toMatch(/[\u0000\u001b\r\u202e]/);
  });

  it("a runner token can call nothing else, and runner logs never hold a kubeconfig", async () => {
    const res = await fetch(`${url}/v1/clusters`, { headers: { authorization: `Bearer ${tokenA}` } });
    expect(res.status).toBe(403);
    expect((await res.json()).error.code).toBe("forbidden");
    const logs = runners.map((r) => r.output()).join("\n");
    expect(logs).toContain("claimed run");
    expect(logs).not.toContain(f.sim.token);
    expect(logs).not.toContain("certificate-authority-data");
    expect(logs).not.toContain(tokenA);
  });

  it("stops on SIGTERM after finishing its work", async () => {
    const r = runners[0]!;
    r.kill("SIGTERM");
    expect(await r.exited).toBe(0);
    expect(r.output()).toContain("runner stopped");
  });
});
