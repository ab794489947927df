// The capture pipeline end to end with real parts: a real etcd, the Kubernetes API simulator
// running a real snapshot command, s3rver behind a recording proxy, the age CLI to decrypt and
// etcdctl to check the result. Every failure leaves no available backup and no object behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTestService, type TestService } from "./helpers/service.js";
import { downloadObject, listKeys, registerFleet, settled, startFleet, waitForRun, type Fleet } from "./helpers/fleet.js";
import { etcdPod, masterNode, rawDbWithTrailerCommand } from "./support/kube-sim.js";

let f: Fleet;
let s: TestService;

beforeAll(async () => {
  f = await startFleet({ keys: 300 });
  s = await startTestService({ ETCD_VAULT_SCHEDULER: "on", ETCD_VAULT_EXEC_IDLE_TIMEOUT: "2s" });
  await registerFleet(s, f);
});
afterAll(async () => {
  await s?.stop();
  await f?.stop();
});

async function backupNow(body: Record<string, unknown> = { target: "s3" }) {
  const r = await s.call("POST", "/v1/clusters/prod-a/backups", body);
  expect(r.status).toBe(202);
  return waitForRun(s, r.json.id, settled);
}

function setPods(pods: ReturnType<typeof etcdPod>[]) {
  f.sim.config.nodes = pods.map((p, i) => masterNode(p.node!, `127.0.0.${i + 1}`));
  f.sim.config.pods = pods;
}

async function expectCleanFailure(run: any, code: string, mentions?: string) {
  expect(run.error?.code).toBe(code);
  if (mentions) expect(run.error.message).toContain(mentions);
  const backups = (await s.call("GET", "/v1/backups?cluster=prod-a&limit=500")).json.items;
  const mine = backups.filter((b: any) => b.runId === run.id);
  expect(mine.every((b: any) => b.state === "failed")).toBe(true);
  const keys = await listKeys(f);
  for (const b of mine) expect(keys.some((k) => k.endsWith(`${b.id}.db.age`) || k.endsWith(`${b.id}.json`))).toBe(false);
}

describe("manual backup through the simulator into S3", () => {
  it("stores a verified, encrypted snapshot that age and etcdctl accept", async () => {
    const run = await backupNow();
    expect(run.state).toBe("succeeded");
    expect(run.pod).toBe("etcd-master-0");
    expect(run.timings.totalMs).toBeGreaterThan(0);
    const b = (await s.call("GET", `/v1/backups/${run.backupId}`)).json;
    expect(b.state).toBe("available");
    expect(b.objectKey).toMatch(new RegExp(`^prod-a/\\d{4}/\\d{2}/\\d{2}/${b.id}\\.db\\.age$`));
    expect(b.facts.masters).toEqual([{ name: "master-0", internalIP: "127.0.0.1" }]);
    expect(b.recipients).toEqual([f.recipient]);
    // The exact Deckhouse command was asked for.
    const exec = f.sim.execs.find((e) => e.argv.includes("pipe"))!;
    expect(exec.argv).toEqual([
      "/usr/bin/etcdctl", "--endpoints", "https://127.0.0.1:2379/", "--key", "/etc/kubernetes/pki/etcd/ca.key",
      "--cert", "/etc/kubernetes/pki/etcd/ca.crt", "--cacert", "/etc/kubernetes/pki/etcd/ca.crt", "snapshot", "pipe",
    ]);
    expect(exec).toMatchObject({ container: "etcd", stdin: false, tty: false, stdout: true, stderr: true });

    // By hand: the object from the bucket, decrypted with the age CLI, checked by etcdctl.
    const keys = await listKeys(f);
    expect(keys).toContain(`backups/${b.objectKey}`);
    expect(keys).toContain(`backups/${b.objectKey.replace(/\.db\.age$/, ".json")}`);
    const enc = join(f.dir, "snap.db.age");
    const dec = join(f.dir, "snap.db");
    await downloadObject(f, `backups/${b.objectKey}`, enc);
    expect(readFileSync(enc).length).toBe(b.ciphertext.size);
    expect(createHash("sha256").update(readFileSync(enc)).digest("hex")).toBe(b.ciphertext.sha256);
    const age = spawnSync("age", ["-d", "-i", f.identityFile, "-o", dec, enc], { encoding: "utf8" });
    expect(age.status, age.stderr).toBe(0);
    const plain = readFileSync(dec);
    expect(plain.length).toBe(b.plaintext.size);
    expect(createHash("sha256").update(plain).digest("hex")).toBe(b.plaintext.sha256);
    expect(plain.length % 512).toBe(32);
    const status = spawnSync("etcdctl", ["snapshot", "status", dec, "-w", "json"], { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } });
    expect(status.status, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).totalKey).toBeGreaterThanOrEqual(300);
    // The sidecar carries the same metadata, no secrets.
    const side = join(f.dir, "side.json");
    await downloadObject(f, `backups/${b.objectKey.replace(/\.db\.age$/, ".json")}`, side);
    const sidecar = JSON.parse(readFileSync(side, "utf8"));
    expect(sidecar).toMatchObject({ id: b.id, state: "available", plaintext: b.plaintext, ciphertext: b.ciphertext });
    expect(readFileSync(side, "utf8")).not.toContain(f.sim.token);
  });

  it("refreshes the facts alongside the capture; a refresh that fails keeps the stored facts, not the backup from happening", async () => {
    const stored = (await s.call("GET", "/v1/clusters/prod-a")).json.facts;
    expect(stored.masters).toEqual([{ name: "master-0", internalIP: "127.0.0.1" }]);
    f.sim.config.forbid = ["/api/v1/nodes"]; // discovery needs the nodes; the capture does not
    try {
      const run = await backupNow();
      expect(run.state).toBe("succeeded");
      const b = (await s.call("GET", `/v1/backups/${run.backupId}`)).json;
      expect(b.state).toBe("available");
      expect(b.facts).toEqual(stored);
    } finally {
      f.sim.config.forbid = [];
    }
    // With the API answering again, the next capture's facts are new ones.
    const run = await backupNow();
    const b = (await s.call("GET", `/v1/backups/${run.backupId}`)).json;
    expect(Date.parse(b.facts.discoveredAt)).toBeGreaterThan(Date.parse(stored.discoveredAt));
  });

  it("refuses a second capture while one runs, and unknown recipients at request time", async () => {
    const bad = await s.call("POST", "/v1/clusters/prod-a/backups", { target: "s3", recipients: ["age1notarecipient"] });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain("recipients");
    // One recipient not wrapped in an array: the type is the whole story (zod also ran the
    // array's size checks on the string and said it was "too big").
    const bare = await s.call("POST", "/v1/clusters/prod-a/backups", { target: "s3", recipients: f.recipient });
    expect(bare.status).toBe(400);
    expect(bare.json.error.message).toBe("recipients: Invalid input: expected array, received string");
    f.sim.config.pods![0]!.exec = [{ argvIncludes: ["pipe"], hang: true }];
    const first = await s.call("POST", "/v1/clusters/prod-a/backups", { target: "s3" });
    expect(first.status).toBe(202);
    const second = await s.call("POST", "/v1/clusters/prod-a/backups", { target: "s3" });
    expect(second.status).toBe(409);
    const run = await waitForRun(s, first.json.id, settled);
    await expectCleanFailure(run, "timeout");
    expect(run.state).toBe("queued"); // a retry is scheduled
    expect(run.nextAttemptAt).not.toBeNull();
    await s.call("POST", `/v1/runs/${run.id}/cancel`);
    f.sim.config.pods![0]!.exec = [f.pipeRule()];
  });

  it("fails cleanly when the stream is cut, corrupted, or etcdctl exits 1", async () => {
    f.sim.config.pods![0]!.exec = [{ argvIncludes: ["pipe"], run: f.etcd.snapshotPipeCommand(), cutAfterBytes: 50_000 }];
    let run = await backupNow();
    await expectCleanFailure(run, "exec_failed", "etcd-master-0");
    await s.call("POST", `/v1/runs/${run.id}/cancel`);

    // A flipped byte in the database: the trailer no longer matches.
    const good = join(f.dir, "good.db");
    await f.etcd.snapshotTo(good);
    const bytes = readFileSync(good);
    bytes.writeUInt8(bytes.readUInt8(4196) ^ 0xff, 4196);
    const flipped = join(f.dir, "flipped.db");
    writeFileSync(flipped, bytes);
    const sum = createHash("sha256").update(readFileSync(good)).digest();
    writeFileSync(flipped, Buffer.concat([bytes, sum]));
    f.sim.config.pods![0]!.exec = [{ argvIncludes: ["pipe"], run: ["cat", flipped] }];
    run = await backupNow();
    await expectCleanFailure(run, "snapshot_corrupt", "trailer");
    await s.call("POST", `/v1/runs/${run.id}/cancel`);

    f.sim.config.pods![0]!.exec = [{ argvIncludes: ["pipe"], exit: { code: 1, stderr: "Error: context deadline exceeded" } }];
    run = await backupNow();
    await expectCleanFailure(run, "exec_failed", "context deadline exceeded");
    await s.call("POST", `/v1/runs/${run.id}/cancel`);
    f.sim.config.pods![0]!.exec = [f.pipeRule()];
  });

  it("tries the next Ready pod, never a not-Ready one, and lists every pod when all fail", async () => {
    const broken = { argvIncludes: ["pipe"], exit: { code: 1, stderr: "member unhealthy" } };
    setPods([
      etcdPod("master-0", { exec: [broken] }),
      etcdPod("master-1", { ready: false, exec: [f.pipeRule()] }),
      etcdPod("master-2", { exec: [f.pipeRule()] }),
    ]);
    const before = f.sim.execs.length;
    let run = await backupNow();
    expect(run.state).toBe("succeeded");
    expect(run.pod).toBe("etcd-master-2");
    const tried = f.sim.execs.slice(before).filter((e) => e.argv.includes("pipe")).map((e) => e.pod);
    expect(tried).toEqual(["etcd-master-0", "etcd-master-2"]);

    setPods([etcdPod("master-0", { exec: [broken] }), etcdPod("master-2", { exec: [{ argvIncludes: ["pipe"], exit: { code: 2, stderr: "no space" } }] })]);
    run = await backupNow();
    await expectCleanFailure(run, "exec_failed", "etcd-master-0");
    expect(run.error.message).toContain("etcd-master-2");
    expect(run.error.message).toContain("no space");
    await s.call("POST", `/v1/runs/${run.id}/cancel`);
    setPods([etcdPod("master-0", { exec: [f.pipeRule()] })]);
  });

  it("fails with storage_failed and aborts the multipart upload when S3 keeps failing", async () => {
    // Large enough for a multipart upload (8 MiB parts).
    const big = join(f.dir, "big.db");
    const db = Buffer.alloc(20 * 1024 * 1024 + 4096 * 3);
    for (let i = 0; i < db.length; i += 4) db.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(big, db);
    f.sim.config.pods![0]!.exec = [{ argvIncludes: ["pipe"], run: rawDbWithTrailerCommand(big) }];
    f.proxy.clearRecords();
    const fault = f.proxy.inject({ when: (r) => r.operation === "UploadPart", fault: { kind: "status", status: 500 } });
    const run = await backupNow();
    fault.remove();
    await expectCleanFailure(run, "storage_failed");
    expect(f.proxy.ops("AbortMultipartUpload").length).toBeGreaterThan(0);
    await s.call("POST", `/v1/runs/${run.id}/cancel`);
    f.sim.config.pods![0]!.exec = [f.pipeRule()];
  });

  it("discards the object at once when the sidecar cannot be written", async () => {
    const fault = f.proxy.inject({ when: (r) => r.operation === "PutObject" && r.path.endsWith(".json"), fault: { kind: "status", status: 503 } });
    const run = await backupNow();
    fault.remove();
    // Right when the attempt is reported failed, not at a later tick's clean-up.
    await expectCleanFailure(run, "storage_failed", ".json");
    const mine = (await s.call("GET", "/v1/backups?cluster=prod-a&limit=500")).json.items.filter((b: any) => b.runId === run.id);
    expect(mine.length).toBe(1);
    await s.call("POST", `/v1/runs/${run.id}/cancel`);
  });

  it("a capture cancelled while it runs ends cancelled, never succeeded without its backup", async () => {
    // Uploads paced so the capture is still running when the cancel comes, and finishes long
    // before the runner's next heartbeat (a third of the 2 m lease).
    const slow = f.proxy.inject({ when: (r) => r.operation === "PutObject" || r.operation === "UploadPart", fault: { kind: "throttle", bytesPerSecond: 256 * 1024 } });
    try {
      const r = await s.call("POST", "/v1/clusters/prod-a/backups", { target: "s3" });
      expect(r.status).toBe(202);
      await waitForRun(s, r.json.id, (run: any) => run.state === "running");
      const c = await s.call("POST", `/v1/runs/${r.json.id}/cancel`);
      expect(c.json).toMatchObject({ state: "running", cancelRequested: true });
      const run = await waitForRun(s, r.json.id, settled);
      expect(run.state).toBe("cancelled");
      expect(run.error.code).toBe("cancelled");
      await expectCleanFailure(run, "cancelled");
    } finally {
      slow.remove();
    }
  });
});
