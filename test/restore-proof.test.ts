// The proof (incident downloads): a real etcd with known keys → capture through the simulator
// into s3rver → the cluster moves on (keys written and deleted) → a bundle link → plain fetch with
// no token → unpack → restore.sh on a temporary node root → etcd started on the restored data
// holds exactly the keys of backup time. Plus the link rules and resumable snapshot downloads.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, type ServerType } from "@hono/node-server";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTestService, type TestService } from "./helpers/service.js";
import { registerFleet, startFleet, waitForRun, type Fleet } from "./helpers/fleet.js";
import { freePort } from "./support/etcd.js";
import { etcdctl, etcdKeys, restoreEnv, runEtcd, type NodeEtcd } from "./support/restore-fixtures.js";
import { etcdPod, masterNode } from "./support/kube-sim.js";
import { startCli } from "./helpers/processes.js";

const BEFORE = ["/registry/configmaps/prod/app-config", "/registry/secrets/prod/db-password", "/registry/deployments/prod/web"];
let f: Fleet;
let s: TestService;
let server: ServerType;
let base: string;
let skew = 0;
let root: string;
let live: NodeEtcd;
let backupId: string;
const paths = {} as { manifests: string; data: string; pki: string; parent: string };

beforeAll(async () => {
  f = await startFleet({ keys: 10 });
  root = join(f.dir, "node");
  paths.manifests = join(root, "etc/kubernetes/manifests");
  paths.pki = join(root, "etc/kubernetes/pki/etcd");
  paths.data = join(root, "var/lib/etcd");
  paths.parent = join(root, "var/lib");
  for (const d of [paths.manifests, paths.pki, paths.data]) mkdirSync(d, { recursive: true });
  writeFileSync(join(paths.manifests, "etcd.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: etcd, namespace: kube-system}\n");
  // The cluster's real etcd: member master-0 on the node root's data dir.
  live = await runEtcd(paths.data, "master-0", join(f.dir, "etcd-live.log"));
  for (const k of BEFORE) etcdctl(live.clientUrl, "put", k, `value of ${k}`);
  const pipe = ["bash", "-c", 'f=$(mktemp); ETCDCTL_API=3 etcdctl --endpoints "$1" snapshot save "$f" >/dev/null 2>&1 && cat "$f"; rc=$?; rm -f "$f"; exit $rc', "pipe", live.clientUrl];
  f.sim.config.nodes = [masterNode("master-0", "127.0.0.1")];
  f.sim.config.pods = [etcdPod("master-0", { image: "registry.k8s.io/etcd:3.4.23-0", exec: [{ argvIncludes: ["pipe"], run: pipe }] })];

  s = await startTestService(
    { ETCD_VAULT_SCHEDULER: "on", ETCD_VAULT_PUBLIC_URL: "http://127.0.0.1:1" },
    { clock: { now: () => new Date(Date.now() + skew) } },
  );
  const port = await freePort();
  server = serve({ fetch: s.app.fetch, port, hostname: "127.0.0.1" });
  base = `http://127.0.0.1:${port}`;
  await registerFleet(s, f, "prod-a");
  expect((await s.call("POST", "/v1/clusters/prod-a/discover")).status).toBe(200);
  const r = await s.call("POST", "/v1/clusters/prod-a/backups", { target: "s3" });
  const run = await waitForRun(s, r.json.id, (x) => x.state === "succeeded" || x.state === "failed");
  expect(run.state).toBe("succeeded");
  backupId = run.backupId;
  // After the backup the cluster moves on: a key is written, one is deleted.
  etcdctl(live.clientUrl, "put", "/registry/configmaps/prod/after-backup", "late");
  etcdctl(live.clientUrl, "del", "/registry/secrets/prod/db-password");
  await live.stop();
}, 120_000);

afterAll(async () => {
  server?.close();
  await s?.stop();
  await f?.stop();
});

/** The link's token path on our server (the public URL is only the printed base). */
const dl = (url: string) => base + new URL(url).pathname;

describe("bundle download and restore", () => {
  it("restores the cluster's etcd from a bundle fetched with curl-like plain HTTP", async () => {
    const link = await s.call("POST", `/v1/backups/${backupId}/links`, { kind: "bundle", ttlSeconds: 600 });
    expect(link.status).toBe(201);
    expect(link.json.url).toMatch(/^http:\/\/127\.0\.0\.1:1\/dl\//);
    const res = await fetch(dl(link.json.url));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-tar");
    expect(res.headers.get("content-disposition")).toMatch(/prod-a-\d{8}T\d{6}Z-restore\.tar/);
    const tar = Buffer.from(await res.arrayBuffer());
    expect(tar.length).toBe(Number(res.headers.get("content-length")));
    const work = join(f.dir, "incident");
    mkdirSync(work);
    writeFileSync(join(work, "bundle.tar"), tar);
    expect(spawnSync("tar", ["xf", "bundle.tar"], { cwd: work }).status).toBe(0);
    const [folder] = readdirSync(work).filter((n) => n.endsWith("-restore"));
    const dir = join(work, folder!);
    expect(readdirSync(dir).sort()).toEqual(["RESTORE.md", "SHA256SUMS", "backup.json", "restore.sh", "snapshot.db.age"]);
    expect(spawnSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: dir }).status).toBe(0);
    const md = readFileSync(join(dir, "RESTORE.md"), "utf8");
    expect(md).toContain("prod-a");
    expect(md).toContain("master-0");
    expect(md).toContain(backupId);

    // etcd-vault verify accepts it (a real CLI process).
    const v = startCli(["verify", join(work, "bundle.tar"), "--identity", f.identityFile], {});
    expect(await v.exited, v.output()).toBe(0);

    const r = spawnSync("bash", [join(dir, "restore.sh"), "--allow-non-root", "--yes", "--no-wait", "--identity", f.identityFile], {
      encoding: "utf8",
      env: restoreEnv(paths),
    });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    // Start etcd as the restored member (name and peer URL from the facts) and read it back.
    const restored = await runEtcd(paths.data, "master-0", join(f.dir, "etcd-restored.log"));
    try {
      expect(etcdKeys(restored.clientUrl)).toEqual([...BEFORE].sort());
      expect(etcdctl(restored.clientUrl, "member", "list")).toMatch(/started, master-0, https:\/\/127\.0\.0\.1:2380/);
    } finally {
      await restored.stop();
    }
    // Every use is audited with address and bytes; the token is not in the audit.
    const audit = (await s.call("GET", `/v1/audit?subject=backup/${backupId}&action=link.use`)).json.items;
    expect(audit[0].detail.bytes).toBe(tar.length);
    expect(audit[0].remoteAddr).toMatch(/127\.0\.0\.1/);
    expect(JSON.stringify(audit)).not.toContain(new URL(link.json.url).pathname.slice(4));
  });

  it("serves the snapshot with Content-Length, Repr-Digest and resumable ranges", async () => {
    const b = (await s.call("GET", `/v1/backups/${backupId}`)).json;
    const link = (await s.call("POST", `/v1/backups/${backupId}/links`, { kind: "snapshot" })).json;
    const whole = await fetch(dl(link.url));
    expect(whole.status).toBe(200);
    expect(Number(whole.headers.get("content-length"))).toBe(b.ciphertext.size);
    expect(whole.headers.get("repr-digest")).toBe(`sha-256=:${Buffer.from(b.ciphertext.sha256, "hex").toString("base64")}:`);
    const full = Buffer.from(await whole.arrayBuffer());
    // A dropped connection after `cut` bytes: resume from there.
    const cut = Math.floor(b.ciphertext.size / 3);
    const part1 = Buffer.from(await (await fetch(dl(link.url), { headers: { range: `bytes=0-${cut - 1}` } })).arrayBuffer());
    const rest = await fetch(dl(link.url), { headers: { range: `bytes=${cut}-`, "x-request-id": "resume-7" } });
    expect(rest.status).toBe(206);
    // A route that returns its own Response (a stream) still carries the request id.
    expect(rest.headers.get("x-request-id")).toBe("resume-7");
    expect(whole.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(rest.headers.get("content-range")).toBe(`bytes ${cut}-${b.ciphertext.size - 1}/${b.ciphertext.size}`);
    const joined = Buffer.concat([part1, Buffer.from(await rest.arrayBuffer())]);
    expect(joined.equals(full)).toBe(true);
    expect(createHash("sha256").update(joined).digest("hex")).toBe(b.ciphertext.sha256);
    const bad = await fetch(dl(link.url), { headers: { range: `bytes=${b.ciphertext.size + 10}-` } });
    expect(bad.status).toBe(416);
  });

  it("refuses altered, revoked, expired and deleted links with the right codes", async () => {
    const link = (await s.call("POST", `/v1/backups/${backupId}/links`, { kind: "snapshot", ttlSeconds: 120 })).json;
    const url = dl(link.url);
    const token = url.split("/dl/")[1]!;
    // Every one-character change of the token is refused — including the last character, whose
    // low bits base64 decoders ignore.
    const last = token.at(-1)!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // Same data bits, different unused low bit: decodes to the very same MAC bytes.
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    for (const altered of [url.replace(/.$/, last === "A" ? "B" : "A"), url.replace(/.$/, sibling), url.replace(/\/dl\/./, (m) => m.slice(0, -1) + (token[0] === "A" ? "B" : "A"))]) {
      const r = await fetch(altered);
      expect(r.status, altered).toBe(403);
      expect((await r.json()).error.code).toBe("link_invalid");
    }
    let r: Response;
    expect((await fetch(`${base}/dl/garbage`)).status).toBe(403);
    skew = 121_000;
    r = await fetch(url);
    expect((await r.json()).error.code).toBe("link_expired");
    skew = 0;
    expect((await s.call("DELETE", `/v1/links/${link.id}`)).status).toBe(200);
    r = await fetch(url);
    expect((await r.json()).error.code).toBe("link_revoked");
    const bad = await s.call("POST", `/v1/backups/${backupId}/links`, { kind: "bundle", ttlSeconds: 8 * 86400 });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain("ttlSeconds");
    const live2 = (await s.call("POST", `/v1/backups/${backupId}/links`, { kind: "bundle" })).json;
    expect((await s.call("DELETE", `/v1/backups/${backupId}`)).status).toBe(200);
    r = await fetch(dl(live2.url));
    expect(r.status).toBe(410);
    expect((await r.json()).error.code).toBe("gone");
  });
});
