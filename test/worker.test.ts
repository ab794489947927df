// The proof of the serverless edition, with real processes only: wrangler's local runtime
// (workerd, D1, R2) serving src/entry/worker.ts, migrations applied by `wrangler d1 migrations
// apply --local`, a real etcd behind the Kubernetes API simulator, and a real Node
// `etcd-vault runner --server <Worker>` that claims runs, captures, and uploads the ciphertext
// through the Worker into R2. Downloads come back out of R2 through /dl links: a bundle that
// `etcd-vault verify` and the age CLI accept, and a snapshot that resumes with Range.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEtcd, type TestEtcd } from "./support/etcd.js";
import { etcdPod, masterNode, startKubeSim, type KubeSim } from "./support/kube-sim.js";
import { ageKeygen } from "./support/restore-fixtures.js";
import { applyD1Migrations, buildWorker, startWranglerDev, type BuiltWorker, type WranglerDev } from "./support/wrangler-dev.js";
import { startCli, type CliProcess } from "./helpers/processes.js";

const ADMIN = "worker-admin-token-0123456789abcdef";
const MASTER_KEY = "00".repeat(31) + "09";
const MiB = 1024 * 1024;

let dir: string;
let etcd: TestEtcd;
let sim: KubeSim;
let wd: WranglerDev;
let runner: CliProcess | undefined;
let identityFile: string;
let recipient: string;
let migrationsOutput: string;
let built: BuiltWorker;
let scheduledBackupId: string;
/** POST /discover of a cluster no runner serves, started early and checked last (20 s wait). */
let orphanDiscovery: Promise<Api>;

interface Api {
  status: number;
  json: any;
  text: string;
}

async function api(method: string, path: string, body?: unknown, token: string | null = ADMIN): Promise<Api> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(wd.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text };
}

async function waitForRun(id: string, until: (run: any) => boolean, timeoutMs = 60_000): Promise<any> {
  const t0 = Date.now();
  for (;;) {
    const r = await api("GET", `/v1/runs/${id}`);
    if (until(r.json)) return r.json;
    if (Date.now() - t0 > timeoutMs) throw new Error(`run ${id} did not settle: ${r.text}\n--- runner:\n${runner?.output().slice(-3000)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}
const finished = (run: any) => ["succeeded", "failed", "cancelled"].includes(run.state) || (run.state === "queued" && run.error);

/** A link's path on the Worker (its public URL is the origin the Worker saw first, the same here). */
const onWorker = (url: string) => wd.url + new URL(url).pathname;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "etcd-vault-worker-"));
  const persistTo = join(dir, "wrangler-state");
  // Independent start-ups in parallel: the bundle, wrangler's migration run, and etcd. Each is
  // kept as soon as it is up, so afterAll stops etcd even when another one failed.
  const started = await Promise.allSettled([
    buildWorker(join(dir, "bundle")).then((b) => (built = b)),
    applyD1Migrations(persistTo).then((out) => (migrationsOutput = out)),
    startEtcd({ name: "master-0" }).then((e) => (etcd = e)),
  ]);
  const failed = started.find((r) => r.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  await etcd.putObjects({ count: 200, resource: "configmaps" });
  sim = await startKubeSim({
    nodes: [masterNode("master-0", "127.0.0.1")],
    pods: [etcdPod("master-0", { image: "registry.k8s.io/etcd:3.4.23-0", exec: [{ argvIncludes: ["snapshot", "pipe"], run: etcd.snapshotPipeCommand() }] })],
  });
  identityFile = join(dir, "key.txt");
  recipient = ageKeygen(identityFile);
  wd = await startWranglerDev({
    config: built.config,
    persistTo,
    vars: { ETCD_VAULT_ADMIN_TOKEN: ADMIN, ETCD_VAULT_MASTER_KEY: MASTER_KEY },
  });
}, 90_000);

afterAll(async () => {
  if (runner) {
    runner.kill("SIGTERM");
    const gone = await Promise.race([runner.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);
    if (!gone) runner.kill("SIGKILL");
  }
  await wd?.stop();
  await sim?.close();
  await etcd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("serverless edition in wrangler's local runtime", () => {
  it("bundles without Node-only modules on the Worker's import graph", () => {
    const inputs = Object.keys(built.metafile.inputs);
    expect(inputs).toContain("src/entry/worker.ts");
    expect(inputs).toContain("src/vault/r2-store.ts");
    const forbidden = /better-sqlite3|@kubernetes\/client-node|@aws-sdk\/|node_modules\/ws\/|src\/kube\/|src\/vault\/(local|s3)-store|src\/catalog\/sqlite|src\/entry\/(node|config|master-key)\.ts/;
    expect(inputs.filter((i) => forbidden.test(i))).toEqual([]);
    const externals = Object.values(built.metafile.outputs).flatMap((o) => (o.imports ?? []).filter((i) => i.external).map((i) => i.path));
    expect(externals.filter((p) => /^(node:)?(fs|child_process|net|tls|http|https|os|path|zlib|crypto)(\/|$)/.test(p))).toEqual([]);
  });

  it("applies the drizzle migrations to local D1 and serves the control plane", async () => {
    expect(migrationsOutput).toContain("0000_init.sql");
    expect(migrationsOutput).toContain("0001_runner_uploads.sql");
    expect((await api("GET", "/readyz", undefined, null)).json).toEqual({ ok: true });
    // The admin token comes from the --var secret; target `default` is the R2 binding.
    const targets = await api("GET", "/v1/targets");
    expect(targets.status).toBe(200);
    expect(targets.json.items).toEqual([expect.objectContaining({ name: "default", kind: "r2", url: "r2://VAULT" })]);
    expect((await api("GET", "/v1/targets", undefined, "not-the-admin-token-at-all-0000")).json.error.code).toBe("unauthorized");
    const check = await api("POST", "/v1/targets/default/check");
    expect(check.json.ok, check.text).toBe(true);
  });

  it("hands discovery to a Node runner and gets the facts back (ClusterAccess over runs)", async () => {
    const token = await api("POST", "/v1/tokens", { name: "worker-test-runner", role: "runner" });
    expect(token.status).toBe(201);
    const c = await api("POST", "/v1/clusters", { name: "prod-a", labels: { env: "prod" }, kubeconfig: sim.kubeconfig, recipients: [recipient] });
    expect(c.status, c.text).toBe(201);
    // A cluster in a pool no runner serves: its discovery must come back 202 after 20 s.
    const o = await api("POST", "/v1/clusters", { name: "orphan", pool: "nowhere", kubeconfig: sim.kubeconfig, recipients: [recipient] });
    expect(o.status, o.text).toBe(201);
    orphanDiscovery = api("POST", "/v1/clusters/orphan/discover");

    runner = startCli(["runner", "--server", wd.url, "--name", "worker-test-runner", "--concurrency", "1"], {
      ETCD_VAULT_RUNNER_TOKEN: token.json.token,
    });
    const d = await api("POST", "/v1/clusters/prod-a/discover");
    expect(d.status, d.text + runner.output().slice(-2000)).toBe(200);
    expect(d.json.facts.masters).toEqual([{ name: "master-0", internalIP: "127.0.0.1" }]);
    expect(d.json.facts.etcdPods[0]).toMatchObject({ name: "etcd-master-0", ready: true });
    const runs = await api("GET", "/v1/runs?cluster=prod-a");
    expect(runs.json.items[0]).toMatchObject({ kind: "discover", state: "succeeded" });
    // Lists are JSON rendered by D1 itself (json_object): the same resource as the single GET.
    const one = (await api("GET", "/v1/clusters/prod-a")).json;
    const listed = (await api("GET", "/v1/clusters?selector=env%3Dprod")).json;
    expect(listed).toEqual({ items: [one], nextCursor: null });
    expect(one.facts.masters).toEqual([{ name: "master-0", internalIP: "127.0.0.1" }]);
    expect((await api("GET", `/v1/runs/${runs.json.items[0].id}`)).json).toEqual(runs.json.items[0]);
  });

  it("fires the cron handler: tick creates the policy's run, the runner captures it into R2", async () => {
    const p = await api("POST", "/v1/policies", {
      name: "every-2s",
      selector: { matchLabels: { env: "prod" } },
      schedule: "@every 2s",
      retention: { last: 5 },
      recipients: [recipient],
    });
    expect(p.status, p.text).toBe(201);
    // The scheduled() handler, as the cron trigger calls it (Miniflare's trigger route; the
    // `--test-scheduled` /__scheduled route is a middleware wrangler only adds when it bundles).
    // A new policy's first run is at its first slot after creation: wait for that slot to pass.
    const firstSlot = Math.floor(Date.parse(p.json.createdAt) / 2000) * 2000 + 2000;
    await new Promise((r) => setTimeout(r, Math.max(0, firstSlot + 150 - Date.now())));
    expect((await api("GET", "/v1/runs?policy=every-2s")).json.items).toEqual([]); // nothing without a tick
    const fired = await fetch(`${wd.url}/cdn-cgi/handler/scheduled?cron=*+*+*+*+*`);
    expect(fired.status).toBe(200);
    await fired.text();
    // No more slots: the later ticks of this test must not queue further runs. (Pausing would
    // also cancel the run just queued: a paused policy starts nothing.)
    expect((await api("PATCH", "/v1/policies/every-2s", { schedule: "@every 24h" })).status).toBe(200);
    const runs = (await api("GET", "/v1/runs?policy=every-2s")).json.items;
    expect(runs).toHaveLength(1);
    expect(Date.parse(runs[0].slot)).toBeGreaterThanOrEqual(firstSlot);
    const run = await waitForRun(runs[0].id, finished);
    expect(run.state, JSON.stringify(run.error) + runner!.output().slice(-3000)).toBe("succeeded");
    expect(run.lease).toBeNull();

    const list = await api("GET", "/v1/backups?cluster=prod-a");
    expect(list.status).toBe(200);
    const b = list.json.items.find((x: any) => x.id === run.backupId);
    expect((await api("GET", `/v1/backups/${run.backupId}`)).json).toEqual(b);
    expect(b).toMatchObject({ state: "available", target: "default", policy: "every-2s", recipients: [recipient] });
    expect(b.objectKey).toMatch(new RegExp(`^prod-a/\\d{4}/\\d{2}/\\d{2}/${b.id}\\.db\\.age$`));
    expect(b.plaintext.size % 512).toBe(32);
    expect(b.ciphertext.size).toBeGreaterThan(b.plaintext.size);
    scheduledBackupId = b.id;
  });

  it("serves a bundle link from R2 that etcd-vault verify and the age CLI accept", async () => {
    const b = (await api("GET", `/v1/backups/${scheduledBackupId}`)).json;
    const link = await api("POST", `/v1/backups/${scheduledBackupId}/links`, { kind: "bundle", ttlSeconds: 600 });
    expect(link.status).toBe(201);
    expect(link.json.url.startsWith(`${wd.url}/dl/`)).toBe(true);
    const res = await fetch(onWorker(link.json.url)); // no bearer token
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-tar");
    const tar = Buffer.from(await res.arrayBuffer());
    expect(tar.length).toBe(Number(res.headers.get("content-length")));
    const tarFile = join(dir, "bundle.tar");
    writeFileSync(tarFile, tar);

    const v = startCli(["verify", tarFile, "--identity", identityFile], {});
    expect(await v.exited, v.output()).toBe(0);

    // Independently: unpack with tar, check the sums, decrypt with the age CLI.
    const out = join(dir, "unpacked");
    expect(spawnSync("mkdir", ["-p", out]).status).toBe(0);
    expect(spawnSync("tar", ["xf", tarFile, "-C", out]).status).toBe(0);
    const folder = spawnSync("ls", [out], { encoding: "utf8" }).stdout.trim();
    expect(folder).toMatch(/^prod-a-\d{8}T\d{6}Z-restore$/);
    expect(spawnSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: join(out, folder) }).status).toBe(0);
    const plain = join(dir, "snapshot.db");
    const age = spawnSync("age", ["-d", "-i", identityFile, "-o", plain, join(out, folder, "snapshot.db.age")], { encoding: "utf8" });
    expect(age.status, age.stderr).toBe(0);
    expect(createHash("sha256").update(readFileSync(plain)).digest("hex")).toBe(b.plaintext.sha256);
  });

  it("serves a snapshot link from R2 that resumes with Range", async () => {
    const b = (await api("GET", `/v1/backups/${scheduledBackupId}`)).json;
    const link = (await api("POST", `/v1/backups/${scheduledBackupId}/links`, { kind: "snapshot" })).json;
    const whole = await fetch(onWorker(link.url));
    expect(whole.status).toBe(200);
    expect(Number(whole.headers.get("content-length"))).toBe(b.ciphertext.size);
    const full = Buffer.from(await whole.arrayBuffer());
    const head = await fetch(onWorker(link.url), { method: "HEAD" });
    expect([head.status, head.headers.get("content-length"), head.headers.get("accept-ranges")]).toEqual([200, String(b.ciphertext.size), "bytes"]);
    // The connection dropped after `cut` bytes: the second request resumes from there.
    const cut = Math.floor(b.ciphertext.size / 3) + 7;
    const first = await fetch(onWorker(link.url), { headers: { range: `bytes=0-${cut - 1}` } });
    expect(first.status).toBe(206);
    expect(first.headers.get("content-range")).toBe(`bytes 0-${cut - 1}/${b.ciphertext.size}`);
    const start = Buffer.from(await first.arrayBuffer());
    const rest = await fetch(onWorker(link.url), { headers: { range: `bytes=${cut}-` } });
    expect(rest.status).toBe(206);
    expect(rest.headers.get("content-range")).toBe(`bytes ${cut}-${b.ciphertext.size - 1}/${b.ciphertext.size}`);
    const joined = Buffer.concat([start, Buffer.from(await rest.arrayBuffer())]);
    expect(joined.length).toBe(b.ciphertext.size);
    expect(joined.equals(full)).toBe(true);
    expect(createHash("sha256").update(joined).digest("hex")).toBe(b.ciphertext.sha256);
    expect((await fetch(onWorker(link.url), { headers: { range: `bytes=${b.ciphertext.size}-` } })).status).toBe(416);
  });

  it("measures a ~64 MiB capture through the Worker into R2", async () => {
    await etcd.fillTo(64 * MiB);
    const t0 = performance.now();
    const r = await api("POST", "/v1/clusters/prod-a/backups", {});
    expect(r.status, r.text).toBe(202);
    const run = await waitForRun(r.json.id, finished, 90_000);
    const wallMs = performance.now() - t0;
    expect(run.state, JSON.stringify(run.error) + runner!.output().slice(-3000)).toBe("succeeded");
    const b = (await api("GET", `/v1/backups/${run.backupId}`)).json;
    expect(b.state).toBe("available");
    expect(b.plaintext.size).toBeGreaterThan(60 * MiB);
    const mibps = (bytes: number, ms: number) => ((bytes / MiB) / (ms / 1000)).toFixed(1);
    const line =
      `worker capture: ${(b.ciphertext.size / MiB).toFixed(1)} MiB ciphertext; ` +
      `runner total ${run.timings.totalMs} ms = ${mibps(b.ciphertext.size, run.timings.totalMs)} MiB/s ` +
      `(first byte ${run.timings.execFirstByteMs} ms, stream ${run.timings.streamMs} ms, upload ${run.timings.uploadMs} ms); ` +
      `request→available ${Math.round(wallMs)} ms = ${mibps(b.ciphertext.size, wallMs)} MiB/s`;
    // Per-part time inside the Worker (receive, hash, write to R2), from wrangler's request log.
    const parts = [...wd.output().matchAll(new RegExp(`PUT /v1/runners/runs/${run.id}/parts/(\\d+) 200 OK \\((\\d+)ms\\)`, "g"))];
    console.log(`${line}\nworker part requests: ${parts.map((m) => `#${m[1]} ${m[2]} ms`).join(", ")}`);
    // The same bytes come back out of R2.
    const link = (await api("POST", `/v1/backups/${b.id}/links`, { kind: "snapshot" })).json;
    const got = createHash("sha256");
    let n = 0;
    const reader = (await fetch(onWorker(link.url))).body!.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      got.update(r.value);
      n += r.value.length;
    }
    expect(n).toBe(b.ciphertext.size);
    expect(got.digest("hex")).toBe(b.ciphertext.sha256);
  }, 120_000);

  it("renders the dashboard from D1", async () => {
    expect((await fetch(`${wd.url}/`)).status).toBe(200); // the sign-in form
    const res = await fetch(`${wd.url}/`, { headers: { cookie: `ev_token=${ADMIN}` } });
    const html = await res.text();
    expect(res.status, html.slice(0, 500)).toBe(200);
    expect(html).toContain("prod-a");
    expect(html).toContain("every-2s");
  });

  it("built its services once per isolate, not per request", () => {
    expect(wd.output().match(/etcd-vault worker isolate started/g)).toHaveLength(1);
  });

  it("answers discovery with 202 and the run when no runner finishes within 20 s", async () => {
    const r = await orphanDiscovery;
    expect(r.status, r.text).toBe(202);
    expect(r.json).toMatchObject({ kind: "discover", cluster: "orphan", state: "queued" });
    expect((await api("GET", `/v1/runs/${r.json.id}`)).json.state).toBe("queued");
  }, 30_000);
});
