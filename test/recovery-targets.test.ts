// Start-up recovery after a crash mid-capture, and storage targets (CRUD, secrets never
// returned, /check against s3rver and against a broken target).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { startTestService, type TestService } from "./helpers/service.js";
import { startS3Server, S3RVER_CREDENTIALS, S3RVER_REGION, type S3Server } from "./support/s3-server.js";

const KC = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t0k3n}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;

describe("recovery after a crash mid-capture", () => {
  it("fails the interrupted attempt, removes partial files, and retries the run", async () => {
    const first = await startTestService();
    await first.call("POST", "/v1/clusters", { name: "prod-a", kubeconfig: KC });
    await first.close();
    // What a crash leaves: a running run leased to this host's in-process runner, an uploading
    // backup, and the local store's temp file for its object.
    const db = new Database(join(first.dir, "data", "catalog.db"));
    const now = Date.now();
    db.prepare(
      `insert into runs (id, kind, cluster, not_before, state, attempt, lease_owner, lease_expires_at, cancel_requested, bytes, created_at, started_at, backup_id)
       values ('01RUNCRASHED', 'capture', 'prod-a', ?, 'running', 1, ?, ?, 0, 0, ?, ?, '01BACKUPCRASHED')`,
    ).run(now, `inproc:${hostname()}`, now + 60_000, now, now);
    db.prepare(
      `insert into backups (id, cluster, run_id, state, created_at, target, object_key, recipients, hold, updated_at)
       values ('01BACKUPCRASHED', 'prod-a', '01RUNCRASHED', 'uploading', ?, 'default', 'prod-a/2026/11/23/01BACKUPCRASHED.db.age', '[]', 0, ?)`,
    ).run(now, now);
    // The same left by the pod this one replaced (a Deployment's new pod has a new host name),
    // and a remote runner's capture, which start-up must leave to its lease.
    const crashed = db.prepare(
      `insert into runs (id, kind, cluster, not_before, state, attempt, lease_owner, lease_expires_at, cancel_requested, bytes, created_at, started_at, backup_id)
       values (?, 'capture', 'prod-a', ?, 'running', 1, ?, ?, 0, 0, ?, ?, ?)`,
    );
    const uploading = db.prepare(
      `insert into backups (id, cluster, run_id, state, created_at, target, object_key, recipients, hold, updated_at)
       values (?, 'prod-a', ?, 'uploading', ?, 'default', ?, '[]', 0, ?)`,
    );
    crashed.run("01RUNOLDPOD", now, "inproc:etcd-vault-7d9f-oldpod", now + 60_000, now, now, "01BACKUPOLDPOD");
    uploading.run("01BACKUPOLDPOD", "01RUNOLDPOD", now, "prod-a/2026/11/23/01BACKUPOLDPOD.db.age", now);
    crashed.run("01RUNREMOTE", now, "runner:dc1(tok1):r-1", now + 60_000, now, now, "01BACKUPREMOTE");
    uploading.run("01BACKUPREMOTE", "01RUNREMOTE", now, "prod-a/2026/11/23/01BACKUPREMOTE.db.age", now);
    db.close();
    const dir = join(first.dir, "data", "vault", "prod-a", "2026", "11", "23");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, ".01BACKUPCRASHED.db.age.a1b2c3d4e5f6.etcd-vault-tmp"), Buffer.alloc(4096, 7));

    const second = await startTestService({}, { dir: first.dir });
    try {
      const b = (await second.call("GET", "/v1/backups/01BACKUPCRASHED")).json;
      expect(b.state).toBe("failed");
      const run = (await second.call("GET", "/v1/runs/01RUNCRASHED")).json;
      expect(run.state).toBe("queued");
      expect(run.attempt).toBe(2);
      expect(run.error.message).toContain("restarted");
      expect(run.lease).toBeNull();
      expect(readdirSync(dir)).toEqual([]);
      expect((await second.call("GET", "/v1/backups/01BACKUPOLDPOD")).json.state).toBe("failed");
      const old = (await second.call("GET", "/v1/runs/01RUNOLDPOD")).json;
      expect([old.state, old.attempt, old.error?.message]).toEqual(["queued", 2, "the service restarted during the capture"]);
      expect((await second.call("GET", "/v1/backups/01BACKUPREMOTE")).json.state).toBe("uploading");
      expect((await second.call("GET", "/v1/runs/01RUNREMOTE")).json.state).toBe("running");
    } finally {
      await second.stop();
    }
  });
});

describe("tick --db leaves a dead runner's upload to the server", () => {
  it("re-queues the run but keeps the backup uploading; the server's start-up then removes its object", async () => {
    const first = await startTestService();
    await first.call("POST", "/v1/clusters", { name: "prod-a", kubeconfig: KC });
    await first.close();
    const file = join(first.dir, "data", "catalog.db");
    const db = new Database(file);
    const now = Date.now();
    // A remote runner that died mid-upload: its lease has expired.
    db.prepare(
      `insert into runs (id, kind, cluster, not_before, state, attempt, lease_owner, lease_expires_at, cancel_requested, bytes, created_at, started_at, backup_id)
       values ('01RUNDEADRUNNER', 'capture', 'prod-a', ?, 'running', 1, 'runner:dc1(t1):r-9', ?, 0, 0, ?, ?, '01BACKUPDEADRUNNER')`,
    ).run(now - 600_000, now - 60_000, now - 600_000, now - 600_000);
    db.prepare(
      `insert into backups (id, cluster, run_id, state, created_at, target, object_key, recipients, hold, updated_at)
       values ('01BACKUPDEADRUNNER', 'prod-a', '01RUNDEADRUNNER', 'uploading', ?, 'default', 'prod-a/2026/11/23/01BACKUPDEADRUNNER.db.age', '[]', 0, ?)`,
    ).run(now, now);
    db.close();
    const dir = join(first.dir, "data", "vault", "prod-a", "2026", "11", "23");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, ".01BACKUPDEADRUNNER.db.age.part1-a1b2c3.etcd-vault-tmp"), Buffer.alloc(4096, 7));

    const cli = spawnSync(process.execPath, ["--import", "tsx", "src/entry/cli.ts", "tick", "--db", file], { encoding: "utf8", env: { ...process.env, ETCD_VAULT_DATA_DIR: join(first.dir, "data") } });
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ requeued: 1, deleted: 0 });
    expect(cli.stderr).not.toContain("could not remove");
    const check = new Database(file, { readonly: true });
    expect(check.prepare("select state from backups where id = '01BACKUPDEADRUNNER'").get()).toEqual({ state: "uploading" });
    expect(check.prepare("select state, attempt from runs where id = '01RUNDEADRUNNER'").get()).toEqual({ state: "queued", attempt: 2 });
    check.close();

    const second = await startTestService({}, { dir: first.dir });
    try {
      expect((await second.call("GET", "/v1/backups/01BACKUPDEADRUNNER")).json.state).toBe("failed");
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      await second.stop();
    }
  });
});

describe("storage targets", () => {
  let s: TestService;
  let s3: S3Server;
  let bucket: string;
  beforeAll(async () => {
    s = await startTestService();
    s3 = await startS3Server();
    bucket = await s3.createBucket();
  });
  afterAll(async () => {
    await s?.stop();
    await s3?.stop();
  });

  it("creates an S3 target whose credentials are sealed and never returned, and checks it", async () => {
    const url = `s3://${bucket}/vault?endpoint=${encodeURIComponent(s3.endpoint)}&region=${S3RVER_REGION}&forcePathStyle=true&checksums=false`;
    const r = await s.call("POST", "/v1/targets", { name: "offsite", url, credentials: S3RVER_CREDENTIALS, storageClass: "STANDARD_IA" });
    expect(r.status).toBe(201);
    expect(r.json).toEqual({ name: "offsite", kind: "s3", url, objectLock: null, storageClass: "STANDARD_IA" });
    const all = await s.call("GET", "/v1/targets");
    expect(all.json.items.map((t: any) => t.name)).toEqual(["default", "offsite"]);
    expect(all.text).not.toContain(S3RVER_CREDENTIALS.secretAccessKey);
    const db = new Database(join(s.dir, "data", "catalog.db"), { readonly: true });
    expect(JSON.stringify(db.prepare("select * from targets").all())).not.toContain(S3RVER_CREDENTIALS.secretAccessKey);
    db.close();
    const check = await s.call("POST", "/v1/targets/offsite/check");
    expect(check.json.ok).toBe(true);
    expect(check.json.steps.map((x: any) => x.step)).toEqual(["write", "read", "delete"]);
    const local = await s.call("POST", "/v1/targets/default/check");
    expect(local.json.ok).toBe(true);
  });

  it("reports which step failed for a target that cannot be reached", async () => {
    await s.call("POST", "/v1/targets", {
      name: "nowhere",
      url: `s3://${bucket}/x?endpoint=${encodeURIComponent("http://127.0.0.1:9")}&region=${S3RVER_REGION}&forcePathStyle=true&checksums=false`,
      credentials: S3RVER_CREDENTIALS,
    });
    const check = await s.call("POST", "/v1/targets/nowhere/check");
    expect(check.status).toBe(200);
    expect(check.json.ok).toBe(false);
    expect(check.json.steps[0].step).toBe("write");
    expect(check.json.steps[0].error).toMatch(/127\.0\.0\.1|ECONNREFUSED|refused/i);
    expect(check.text).not.toContain(S3RVER_CREDENTIALS.secretAccessKey);
  });

  it("rejects bad targets naming the field, and protects targets in use", async () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ name: "x1", url: "ftp://nope" }, "url"],
      [{ name: "x2", url: "s3://" }, "url"],
      [{ name: "x3", url: "file:///tmp/x", credentials: S3RVER_CREDENTIALS }, "credentials"],
      [{ name: "x4", url: "file:///tmp/x", objectLock: { mode: "GOVERNANCE", days: 1 } }, "objectLock"],
      [{ name: "x5", url: `s3://${bucket}`, objectLock: { mode: "SOMETIMES", days: 1 } }, "objectLock.mode"],
      [{ name: "Bad Name", url: "file:///tmp/x" }, "name"],
      [{ name: "x6", url: "file:///tmp/x", storageClass: "GLACIER" }, "storageClass"],
      [{ name: "x7", url: `s3://${bucket}`, storageClass: "\u0000\n" }, "storageClass"],
      [{ name: "x8", url: "file://./vault" }, "url"], // relative to wherever the server started
    ];
    for (const [body, field] of bad) {
      const r = await s.call("POST", "/v1/targets", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.message).toContain(field);
    }
    expect((await s.call("POST", "/v1/targets", { name: "offsite", url: "file:///tmp/x" })).status).toBe(409);
    await s.call("POST", "/v1/policies", {
      name: "p",
      selector: { matchLabels: {} },
      schedule: "@every 6h",
      retention: { last: 1 },
      recipients: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"],
      target: "offsite",
    });
    const del = await s.call("DELETE", "/v1/targets/offsite");
    expect(del.status).toBe(409);
    expect(del.json.error.message).toContain("policy 'p'");
    expect((await s.call("DELETE", "/v1/targets/nowhere")).status).toBe(204);
    expect(existsSync(join(s.dir, "data"))).toBe(true);
    // `default` is ETCD_VAULT_STORAGE's: it cannot be deleted, and its URL is the variable's.
    const before = (await s.call("GET", "/v1/targets/default")).json;
    const delDefault = await s.call("DELETE", "/v1/targets/default");
    expect(delDefault.status).toBe(409);
    expect(delDefault.json.error.message).toContain("ETCD_VAULT_STORAGE");
    const moved = await s.call("PATCH", "/v1/targets/default", { url: "file:///tmp/elsewhere" });
    expect(moved.status).toBe(409);
    expect(moved.json.error.message).toContain("ETCD_VAULT_STORAGE");
    expect((await s.call("PATCH", "/v1/targets/default", { url: before.url })).status).toBe(200);
    expect((await s.call("GET", "/v1/targets/default")).json.url).toBe(before.url);
  });

  it("an ETCD_VAULT_ADMIN_TOKEN revoked through the API stays revoked after a restart", async () => {
    const first = await startTestService();
    const other = await first.call("POST", "/v1/tokens", { name: "second admin", role: "admin" });
    expect(other.status).toBe(201);
    const env = (await first.call("GET", "/v1/tokens")).json.items.find((t: { name: string }) => t.name.includes("ETCD_VAULT_ADMIN_TOKEN"));
    expect((await first.call("DELETE", `/v1/tokens/${env.id}`, undefined, other.json.token)).status).toBe(204);
    expect((await first.call("GET", "/v1/clusters")).status).toBe(401);
    await first.close();
    const second = await startTestService({}, { dir: first.dir });
    try {
      expect((await second.call("GET", "/v1/clusters")).status).toBe(401);
      expect((await second.call("GET", "/v1/clusters", undefined, other.json.token)).status).toBe(200);
    } finally {
      await second.stop();
    }
  });
});
