// The test doubles themselves, checked with raw protocol clients (node:https, ws) rather than our
// adapter: the simulator must speak the Kubernetes protocol, and the etcd launcher must produce
// real snapshots.

import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startEtcd, type TestEtcd } from "./support/etcd.js";
import { etcdPod, masterNode, parseLabelSelector, randomBytesCommand, startKubeSim, type KubeSim } from "./support/kube-sim.js";

const ROOT = join(import.meta.dirname, "..");

function apiGet(sim: { url: string; caPem: string }, path: string, token: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    httpsGet(`${sim.url}${path}`, { ca: sim.caPem, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    }).on("error", reject);
  });
}

interface RawExec {
  protocol: string;
  frames: Buffer[];
  stdout: Buffer;
  stderr: string;
  status: any;
  closeCode: number;
}

function execUrl(sim: KubeSim, pod: string, argv: string[], container = "etcd"): string {
  const q = new URLSearchParams({ container, stdout: "true", stderr: "true", stdin: "false", tty: "false" });
  for (const a of argv) q.append("command", a);
  return `${sim.url.replace("https", "wss")}/api/v1/namespaces/kube-system/pods/${pod}/exec?${q}`;
}

function rawExec(sim: KubeSim, pod: string, argv: string[], token = sim.token): Promise<RawExec> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(execUrl(sim, pod, argv), ["v5.channel.k8s.io", "v4.channel.k8s.io"], { ca: sim.caPem, headers: { authorization: `Bearer ${token}` } });
    const frames: Buffer[] = [];
    ws.on("message", (d: Buffer) => frames.push(d));
    ws.on("error", reject);
    ws.on("close", (code) => {
      const on = (ch: number) => Buffer.concat(frames.filter((f) => f[0] === ch).map((f) => f.subarray(1)));
      const st = on(3);
      resolve({ protocol: ws.protocol, frames, stdout: on(1), stderr: on(2).toString(), status: st.length ? JSON.parse(st.toString()) : null, closeCode: code });
    });
  });
}

describe("kube simulator", () => {
  let sim: KubeSim;
  beforeAll(async () => {
    sim = await startKubeSim({
      nodes: [masterNode("m1", "10.0.0.1"), masterNode("m2", "10.0.0.2"), { name: "w1", internalIP: "10.0.1.1", labels: { "node-role.kubernetes.io/worker": "" } }],
      pods: [
        etcdPod("m1", { exec: [{ argvIncludes: ["hello"], run: ["bash", "-c", 'printf "%s" "$SIM_EXEC_ARGV"'] }, { argvIncludes: ["fail"], exit: { code: 3, stderr: "Error: boom" } }, { argvIncludes: ["cut"], run: randomBytesCommand(1 << 20), cutAfterBytes: 100_000 }, { argvIncludes: ["big"], run: randomBytesCommand(128 << 20) }] }),
        etcdPod("m2", { ready: false }),
        { name: "apiserver-m1", namespace: "kube-system", node: "m1", labels: { component: "kube-apiserver", tier: "control-plane" }, containers: [{ name: "kube-apiserver", image: "k8s/apiserver:v1.30.4" }] },
      ],
    });
  });
  afterAll(async () => {
    await sim?.close();
  });

  it("requires the bearer token everywhere", async () => {
    const bad = await apiGet(sim, "/version", "wrong");
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ kind: "Status", status: "Failure", reason: "Unauthorized", code: 401 });
    const ok = await apiGet(sim, "/version", sim.token);
    expect(ok.body.gitVersion).toBe("v1.30.4");
  });

  it("lists nodes and pods with equality, existence and set selectors", async () => {
    const masters = await apiGet(sim, `/api/v1/nodes?labelSelector=${encodeURIComponent("node-role.kubernetes.io/control-plane")}`, sim.token);
    expect(masters.body.items.map((n: any) => n.metadata.name)).toEqual(["m1", "m2"]);
    expect(masters.body.items[0].status.addresses).toContainEqual({ type: "InternalIP", address: "10.0.0.1" });
    const etcd = await apiGet(sim, `/api/v1/namespaces/kube-system/pods?labelSelector=${encodeURIComponent("component=etcd,tier=control-plane")}`, sim.token);
    expect(etcd.body.kind).toBe("PodList");
    expect(etcd.body.items.map((p: any) => [p.metadata.name, p.spec.nodeName, p.status.conditions.find((c: any) => c.type === "Ready").status])).toEqual([
      ["etcd-m1", "m1", "True"],
      ["etcd-m2", "m2", "False"],
    ]);
    const notEtcd = await apiGet(sim, `/api/v1/namespaces/kube-system/pods?labelSelector=${encodeURIComponent("component in (kube-apiserver,scheduler)")}`, sim.token);
    expect(notEtcd.body.items.map((p: any) => p.metadata.name)).toEqual(["apiserver-m1"]);
    expect((await apiGet(sim, "/api/v1/namespaces/other/pods", sim.token)).body.items).toEqual([]);
    expect((await apiGet(sim, "/api/v1/namespaces/kube-system/pods?labelSelector=a%3D%3Db%3Dc", sim.token)).status).toBe(400);
  });

  it("parses selectors like the API server", () => {
    const match = (sel: string, labels: Record<string, string>) => parseLabelSelector(sel)!.every((r) => r(labels));
    expect(match("a=1,b==2", { a: "1", b: "2" })).toBe(true);
    expect(match("a!=1", { a: "2" })).toBe(true);
    expect(match("a,!b", { a: "" })).toBe(true);
    expect(match("a,!b", { a: "", b: "" })).toBe(false);
    expect(match("a notin (1,2)", { a: "3" })).toBe(true);
    expect(parseLabelSelector("a=(")).toBeNull();
  });

  it("execs over v5.channel.k8s.io: empty stdout frame, output, Success status, normal close", async () => {
    const r = await rawExec(sim, "etcd-m1", ["/bin/echo", "hello", "world"]);
    expect(r.protocol).toBe("v5.channel.k8s.io");
    expect([...r.frames[0]!]).toEqual([1]);
    expect(JSON.parse(r.stdout.toString())).toEqual(["/bin/echo", "hello", "world"]);
    expect(r.status).toEqual({ metadata: {}, status: "Success" });
    expect(r.closeCode).toBe(1000);
    expect(sim.execs.at(-1)).toMatchObject({ pod: "etcd-m1", container: "etcd", argv: ["/bin/echo", "hello", "world"], stdin: false, stdout: true, stderr: true, tty: false, outcome: "success" });
  });

  it("negotiates v4 when that is all the server speaks", async () => {
    sim.config.protocols = ["v4.channel.k8s.io"];
    try {
      expect((await rawExec(sim, "etcd-m1", ["hello"])).protocol).toBe("v4.channel.k8s.io");
    } finally {
      delete sim.config.protocols;
    }
  });

  it("reports a non-zero exit as a NonZeroExitCode Status after stderr", async () => {
    const r = await rawExec(sim, "etcd-m1", ["fail"]);
    expect(r.stderr).toBe("Error: boom");
    expect(r.status).toMatchObject({ status: "Failure", reason: "NonZeroExitCode", details: { causes: [{ reason: "ExitCode", message: "3" }] } });
    expect(r.closeCode).toBe(1000);
  });

  it("cuts the TCP connection after N stdout bytes: no Status, close 1006", async () => {
    const r = await rawExec(sim, "etcd-m1", ["cut"]);
    expect(r.stdout.length).toBe(100_000);
    expect(r.status).toBeNull();
    expect(r.closeCode).toBe(1006);
    expect(sim.execs.at(-1)!.outcome).toBe("cut");
  });

  it("answers rejected upgrades with a Status: 401 bad token, 404 unknown pod, 400 bad container", async () => {
    const reject = (url: string, token: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, ["v5.channel.k8s.io"], { ca: sim.caPem, headers: { authorization: `Bearer ${token}` } });
        ws.on("unexpected-response", (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on("error", () => {});
      });
    expect(await reject(execUrl(sim, "etcd-m1", ["hello"]), "wrong")).toBe(401);
    expect(await reject(execUrl(sim, "etcd-nope", ["hello"]), sim.token)).toBe(404);
    expect(await reject(execUrl(sim, "etcd-m1", ["hello"], "nope"), sim.token)).toBe(400);
  });

  it("slows the child down when the client stops reading (WebSocket backpressure)", async () => {
    const ws = new WebSocket(execUrl(sim, "etcd-m1", ["big"]), ["v5.channel.k8s.io"], { ca: sim.caPem, headers: { authorization: `Bearer ${sim.token}` } });
    let received = 0;
    let status: any = null;
    const closed = new Promise<void>((r) => ws.on("close", () => r()));
    ws.on("message", (d: Buffer) => {
      if (d[0] === 1) received += d.length - 1;
      if (d[0] === 3) status = JSON.parse(d.subarray(1).toString());
      if (received > 1 << 20 && !ws.isPaused) ws.pause();
    });
    await new Promise((r) => setTimeout(r, 1500));
    const record = sim.execs.at(-1)!;
    // 128 MiB would be produced in well under a second; paused, only buffers' worth left the child.
    expect(record.stdoutBytes).toBeLessThan(24 << 20);
    ws.resume();
    ws.on("message", () => {
      if (ws.isPaused) ws.resume();
    });
    await closed;
    expect(received).toBe(128 << 20);
    expect(status).toEqual({ metadata: {}, status: "Success" });
  });

  it("runs as a separate process and prints where it listens", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kube-sim-main-"));
    const cfg = join(dir, "sim.json");
    writeFileSync(cfg, JSON.stringify({ token: "bench-token", nodes: [masterNode("m1", "10.0.0.1")] }));
    const proc = spawn(join(ROOT, "node_modules/.bin/tsx"), [join(ROOT, "test/support/kube-sim-main.ts"), "--config", cfg], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const line = await new Promise<string>((resolve) => createInterface({ input: proc.stdout! }).once("line", resolve));
      const info = JSON.parse(line) as { url: string; kubeconfigPath: string; token: string; dir: string };
      expect(info.token).toBe("bench-token");
      const kubeconfig = readFileSync(info.kubeconfigPath, "utf8");
      const caPem = Buffer.from(/certificate-authority-data: (\S+)/.exec(kubeconfig)![1]!, "base64").toString();
      expect((await apiGet({ url: info.url, caPem }, "/version", "bench-token")).status).toBe(200);
      expect((await apiGet({ url: info.url, caPem }, "/_sim/execs", "bench-token")).body).toEqual([]);
      const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
      proc.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(existsSync(info.dir)).toBe(false);
    } finally {
      if (proc.exitCode === null) proc.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("etcd launcher", () => {
  let etcd: TestEtcd;
  let dir: string;
  beforeAll(async () => {
    etcd = await startEtcd({ name: "member-a" });
    dir = mkdtempSync(join(tmpdir(), "etcd-launcher-test-"));
  });
  afterAll(async () => {
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes Kubernetes-shaped keys and reads them back", async () => {
    const keys = await etcd.putObjects({ count: 40, valueSize: 300, resource: "pods", namespaces: 4 });
    expect(keys[5]).toBe("/registry/pods/ns-1/obj-5");
    const all = await etcd.getAll();
    for (const k of keys) {
      expect(all.get(k)!.length).toBe(300);
      expect(all.get(k)!.subarray(0, 4).toString("latin1")).toBe("k8s\0");
    }
    expect(await etcd.keys()).toEqual([...all.keys()]);
    expect([...all.keys()]).toEqual([...all.keys()].sort());
  });

  it("saves snapshots that end with the SHA-256 trailer, and streams the same bytes for the simulator", async () => {
    const file = join(dir, "saved.db");
    const size = await etcd.snapshotTo(file);
    const bytes = readFileSync(file);
    expect(bytes.length).toBe(size);
    expect(size % 512).toBe(32);
    expect(createHash("sha256").update(bytes.subarray(0, size - 32)).digest()).toEqual(bytes.subarray(size - 32));
    const [cmd, ...args] = etcd.snapshotPipeCommand();
    const piped = spawnSync(cmd!, args, { maxBuffer: 1 << 30 });
    expect(piped.status).toBe(0);
    expect(Buffer.compare(piped.stdout, bytes)).toBe(0);
  });

  it("fills to a target size quickly and stops cleanly, leaving nothing behind", async () => {
    const target = 24 << 20;
    const s = await etcd.fillTo(target);
    expect(s.dbSize).toBeGreaterThanOrEqual(target);
    expect(s.dbSize).toBeLessThan(target * 1.6);
    const other = await startEtcd({ name: "member-b" });
    expect(other.clientUrl).not.toBe(etcd.clientUrl);
    await other.stop();
    expect(() => process.kill(other.pid, 0)).toThrow();
    expect(existsSync(other.dir)).toBe(false);
    expect(statSync(etcd.dir).isDirectory()).toBe(true);
  });
});
