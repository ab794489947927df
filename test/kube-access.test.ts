// KubeClusterAccess (client-node 1.4) against the kube simulator and a real etcd: discovery,
// each kubeconfig form of TLS and credentials (REST and exec), connection failures with clear
// messages, the snapshot exec with every fault, and memory staying flat under a slow consumer.

import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { connect as connectTcp, createServer, type Server } from "node:net";
import type { Duplex } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DECKHOUSE_SNAPSHOT_COMMAND, DEFAULT_ETCD_SETTINGS, type EtcdSettings } from "../src/core/cluster-types.js";
import { VaultError } from "../src/core/errors.js";
import type { ClusterConnection, Logger, SnapshotExec } from "../src/core/ports.js";
import { KubeClusterAccess } from "../src/kube/cluster-access.js";
import { loadCluster } from "../src/kube/connection.js";
import { scrub } from "../src/kube/failures.js";
import { versionFromEtcdctl, versionFromImage } from "../src/kube/versions.js";
import { freePort, startEtcd, type TestEtcd } from "./support/etcd.js";
import { startSocks5Server } from "./support/socks5-server.js";
import { etcdPod, generateCa, makeKubeconfig, masterNode, randomBytesCommand, startKubeSim, type KubeSim, type SimPod } from "./support/kube-sim.js";

const ROOT = join(import.meta.dirname, "..");
const DIGEST_IMAGE = `registry.deckhouse.io/deckhouse/ce@sha256:${"ab".repeat(32)}`;
const NOW = new Date("2026-11-20T10:00:00Z");
const mib = (n: number) => (n / 2 ** 20).toFixed(1);

function conn(kubeconfig: string, etcd: Partial<EtcdSettings> = {}): ClusterConnection {
  return { name: "c1", kubeconfig, etcd: { ...DEFAULT_ETCD_SETTINGS, ...etcd } };
}

async function failureOf(p: Promise<unknown>): Promise<VaultError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(VaultError);
    return e as VaultError;
  }
  throw new Error("expected a rejection");
}

async function drain(exec: SnapshotExec): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of exec.stdout) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** Reads until the stream throws; returns the bytes read and the error. */
async function drainFailing(exec: SnapshotExec): Promise<{ bytes: number; error: VaultError }> {
  let bytes = 0;
  try {
    for await (const c of exec.stdout) bytes += c.length;
  } catch (e) {
    expect(e).toBeInstanceOf(VaultError);
    return { bytes, error: e as VaultError };
  }
  throw new Error("expected the stdout stream to fail");
}

const access = new KubeClusterAccess({ clock: { now: () => NOW }, requestTimeoutMs: 5000 });

describe("backpressure reaches the socket", () => {
  const STREAM = 64 << 20;
  let proc: ChildProcess;
  let kubeconfig: string;
  let dir: string;
  beforeAll(async () => {
    // The simulator runs in its own process so that only the client's memory is measured here.
    dir = mkdtempSync(join(tmpdir(), "kube-access-bp-"));
    writeFileSync(join(dir, "sim.json"), JSON.stringify({ nodes: [masterNode("m1", "10.0.0.1")], pods: [etcdPod("m1", { exec: [{ run: randomBytesCommand(STREAM) }] }), etcdPod("m2", { exec: [{ run: randomBytesCommand(1 << 20) }] })] }));
    proc = spawn(join(ROOT, "node_modules/.bin/tsx"), [join(ROOT, "test/support/kube-sim-main.ts"), "--config", join(dir, "sim.json")], { stdio: ["ignore", "pipe", "inherit"] });
    const line = await new Promise<string>((resolve) => createInterface({ input: proc.stdout! }).once("line", resolve));
    kubeconfig = readFileSync((JSON.parse(line) as { kubeconfigPath: string }).kubeconfigPath, "utf8");
    // Warm up TLS, client-node and ws (with a small stream) so the baseline includes them.
    const warm = await access.execSnapshot(conn(kubeconfig), "etcd-m2", { idleTimeoutMs: 10_000 });
    await drain(warm);
  });
  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  // RSS includes Buffers that are dead but not yet collected (V8 collects external memory lazily),
  // so alongside it we sample what is actually retained: arrayBuffers right after a forced GC.
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;

  /**
   * Consumes at 1 MiB per 100 ms (~10 MiB/s); returns the peak RSS growth over the baseline and the
   * peak of Buffer memory still alive after a GC.
   */
  async function slowConsume(a: KubeClusterAccess): Promise<{ growth: number; retained: number; bytes: number; ms: number }> {
    gc();
    const baseline = process.memoryUsage().rss;
    const baseBuffers = process.memoryUsage().arrayBuffers;
    let retained = 0;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const t0 = Date.now();
    const exec = await a.execSnapshot(conn(kubeconfig), "etcd-m1", { idleTimeoutMs: 10_000 });
    let bytes = 0;
    let budget = 0;
    // A Readable's iterator hands over everything buffered at once, so pace by bytes, not chunks.
    for await (const chunk of exec.stdout) {
      bytes += chunk.length;
      budget += chunk.length;
      while (budget >= 1 << 20) {
        budget -= 1 << 20;
        await new Promise((r) => setTimeout(r, 100));
        gc();
        retained = Math.max(retained, process.memoryUsage().arrayBuffers - baseBuffers);
      }
    }
    await exec.done;
    clearInterval(sampler);
    return { growth: peak - baseline, retained, bytes, ms: Date.now() - t0 };
  }

  it("a slow consumer keeps RSS growth bounded (socket paused, not frames queued)", async () => {
    const r = await slowConsume(access);
    console.log(`paused: ${r.bytes / 2 ** 20} MiB in ${r.ms} ms, peak RSS growth ${mib(r.growth)} MiB, retained ≤ ${mib(r.retained)} MiB`);
    expect(r.bytes).toBe(STREAM);
    expect(r.ms).toBeGreaterThan(5000); // the consumer really was slow
    expect(r.growth).toBeLessThan(64 << 20);
    expect(r.retained).toBeLessThan(8 << 20); // the 1 MiB queue plus frames in flight, not the stream
  });

  it("for contrast: with a buffer as large as the stream (never pausing), the stream queues up in memory", async () => {
    const r = await slowConsume(new KubeClusterAccess({ execHighWaterMark: 1 << 30 }));
    console.log(`not paused: peak RSS growth ${mib(r.growth)} MiB, retained ≤ ${mib(r.retained)} MiB`);
    expect(r.bytes).toBe(STREAM);
    expect(r.ms).toBeGreaterThan(5000);
    expect(r.retained).toBeGreaterThan(40 << 20);
  });
});

describe("kubeconfig secrets kept out of messages", () => {
  it("counts a proxy-url password as a secret, as written and decoded", () => {
    const caDir = mkdtempSync(join(tmpdir(), "ev-proxy-secret-"));
    const ca = generateCa(caDir);
    rmSync(caDir, { recursive: true, force: true });
    const kubeconfig = makeKubeconfig({ server: "https://127.0.0.1:6443", caPem: ca.certPem, token: "token-abc-123456", proxyUrl: "socks5://vault:p%40ss-word-9@127.0.0.1:1080" });
    const { secrets } = loadCluster({ kubeconfig } as ClusterConnection);
    expect(secrets).toEqual(expect.arrayContaining(["token-abc-123456", "p%40ss-word-9", "p@ss-word-9"]));
    expect(scrub("proxy socks5://vault:p@ss-word-9@host refused", secrets)).toBe("proxy socks5://vault:[redacted]@host refused");
  });
});

describe("a kubeconfig means the same to us and to client-node", () => {
  const caDir = mkdtempSync(join(tmpdir(), "ev-kc-same-"));
  const ca = generateCa(caDir);
  rmSync(caDir, { recursive: true, force: true });
  const b64ca = Buffer.from(ca.certPem).toString("base64");
  const doc = (users: string, currentUser = "u") => `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: ${b64ca}
users:
${users}
contexts:
- name: x
  context: {cluster: c, user: ${JSON.stringify(currentUser)}}
current-context: x
`;
  const refused = (text: string, says: string) => {
    let err: unknown = null;
    try {
      loadCluster({ kubeconfig: text } as ClusterConnection);
    } catch (e) {
      err = e;
    }
    expect(err, says).toBeInstanceOf(VaultError);
    expect((err as VaultError).code).toBe("invalid_input");
    expect((err as VaultError).message).toContain(says);
  };
  const marker = join(tmpdir(), `ev-kc-ran-${process.pid}`);
  const run = `{apiVersion: client.authentication.k8s.io/v1, command: /bin/touch, args: [${JSON.stringify(marker)}]}`;

  it("refuses every way client-node would run a command, whatever else the user has", () => {
    refused(doc(`- name: u\n  user:\n    token: tok-123456\n    exec: ${run}`), "exec credential plugin");
    refused(doc(`- name: u\n  user:\n    auth-provider: {name: exec, config: {}}`), "exec auth-provider");
    refused(doc(`- name: u\n  user:\n    token: tok-123456\n    auth-provider: {name: foo, config: {exec: ${run}}}`), "exec auth-provider");
    refused(doc(`- name: u\n  user:\n    auth-provider: {name: gcp, config: {cmd-path: /bin/touch}}`), "cmd-path");
    expect(existsSync(marker)).toBe(false);
  });

  it("refuses every way client-node would read a file on this host", () => {
    refused(doc(`- name: u\n  user:\n    token-file: /etc/hostname`), "token-file");
    refused(doc(`- name: u\n  user:\n    client-certificate-data: ${b64ca}\n    client-key-data: ${b64ca}\n    token-file: /etc/hostname`), "token-file");
    refused(doc(`- name: u\n  user:\n    auth-provider: {name: file, config: {tokenFile: /etc/hostname}}`), "tokenFile");
  });

  it("holds entries no context uses to the same rules, and hands client-node only the used ones", () => {
    const used = `- name: u\n  user:\n    token: tok-123456\n`;
    // client-node reads every user's token-file while loading, used or not.
    refused(doc(`${used}- name: v\n  user:\n    token-file: /etc/passwd`), "token-file");
    refused(doc(`${used}- name: v\n  user:\n    exec: ${run}`), "exec credential plugin");
    refused(doc(used).replace("clusters:\n", "clusters:\n- name: spare\n  cluster:\n    server: https://127.0.0.2:6443\n    certificate-authority: /etc/ssl/x.pem\n"), "certificate-authority");
    // A self-referencing alias is a clear 400-class error, not a crash.
    refused(doc(`- name: u\n  user:\n    token: tok-123456\n    extra: &loop [*loop]`), "alias that refers to itself");
    const twoUsers = loadCluster({ kubeconfig: doc(`${used}- name: w\n  user:\n    token: other-token-99\n`) } as ClusterConnection);
    expect(twoUsers.kc.getUsers().map((u) => u.name)).toEqual(["u"]);
    expect(twoUsers.kc.getClusters()).toHaveLength(1);
    expect(existsSync(marker)).toBe(false);
  });

  it("loads the document as validated: no YAML merge keys, no dates as names", () => {
    // js-yaml would merge `<<` into a real exec; for the validator it is a key like any other.
    const merged = loadCluster({ kubeconfig: doc(`- name: u\n  user:\n    token: tok-123456\n    <<: {exec: ${run}}`) } as ClusterConnection);
    expect(merged.kc.getCurrentUser()?.exec).toBeUndefined();
    expect(merged.kc.getCurrentUser()?.token).toBe("tok-123456");
    // js-yaml reads an unquoted 2001-01-01 as a Date and would skip to the quoted twin.
    const twins = loadCluster({
      kubeconfig: doc(`- name: 2001-01-01\n  user:\n    token: tok-123456\n- name: "2001-01-01"\n  user:\n    token: the-twin-9999`, "2001-01-01"),
    } as ClusterConnection);
    expect(twins.kc.getCurrentUser()?.token).toBe("tok-123456");
    // With an exec in the twin it is refused outright (every user is held to the rules).
    refused(doc(`- name: 2001-01-01\n  user:\n    token: tok-123456\n- name: "2001-01-01"\n  user:\n    exec: ${run}`, "2001-01-01"), "exec credential plugin");
    expect(existsSync(marker)).toBe(false);
  });
});

describe("version parsing", () => {
  it("takes the etcd version from an image tag, not from digests or hash tags", () => {
    expect(versionFromImage("registry.k8s.io/etcd:3.5.16-0")).toBe("3.5.16");
    expect(versionFromImage("registry.example.com:5000/etcd:v3.5.16")).toBe("3.5.16");
    expect(versionFromImage("quay.io/coreos/etcd:v3.4.23@sha256:" + "0".repeat(64))).toBe("3.4.23");
    expect(versionFromImage(DIGEST_IMAGE)).toBeNull();
    expect(versionFromImage("registry.example.com:5000/etcd")).toBeNull();
    expect(versionFromImage("registry.deckhouse.io/deckhouse/ce:9f8e7d6c5b4a")).toBeNull();
    expect(versionFromImage("etcd:latest")).toBeNull();
  });

  it("reads etcdctl version output", () => {
    expect(versionFromEtcdctl("etcdctl version: 3.5.16\nAPI version: 3.5\n")).toBe("3.5.16");
    expect(versionFromEtcdctl("nothing here")).toBeNull();
  });
});

describe("discovery", () => {
  let sim: KubeSim;
  beforeAll(async () => {
    sim = await startKubeSim({ gitVersion: "v1.29.8" });
  });
  afterAll(async () => {
    await sim?.close();
  });

  it("single master, etcd version from the image tag", async () => {
    sim.config.nodes = [masterNode("m1", "10.0.0.1"), { name: "w1", internalIP: "10.0.1.1", labels: {} }];
    sim.config.pods = [etcdPod("m1", { image: "registry.k8s.io/etcd:3.5.16-0" })];
    sim.config.deployments = [];
    const before = sim.execs.length;
    const facts = await access.discover(conn(sim.kubeconfig));
    expect(facts).toEqual({
      masters: [{ name: "m1", internalIP: "10.0.0.1" }],
      etcdPods: [{ name: "etcd-m1", node: "m1", ready: true }],
      etcdVersion: "3.5.16",
      kubernetesVersion: "v1.29.8",
      deckhouseVersion: null,
      multiMaster: false,
      discoveredAt: NOW.toISOString(),
    });
    expect(sim.execs.length).toBe(before); // no exec needed
  });

  it("three masters with digest-pinned images: falls back to `etcdctl version` in a Ready pod", async () => {
    const version = { argvIncludes: ["version"], run: ["etcdctl", "version"] }; // Debian's real etcdctl 3.4
    sim.config.nodes = [masterNode("m1", "10.0.0.1"), masterNode("m2", "10.0.0.2"), masterNode("m3", "10.0.0.3")];
    sim.config.pods = ["m1", "m2", "m3"].map((n) => etcdPod(n, { image: DIGEST_IMAGE, ready: n !== "m1", exec: [version] }));
    sim.config.deployments = [{ namespace: "d8-system", name: "deckhouse", annotations: { "core.deckhouse.io/version": "v1.68.13", "core.deckhouse.io/edition": "EE" }, containers: [{ name: "deckhouse", image: DIGEST_IMAGE }] }];
    const before = sim.execs.length;
    const facts = await access.discover(conn(sim.kubeconfig));
    expect(facts.masters.map((m) => m.internalIP)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    expect(facts.multiMaster).toBe(true);
    expect(facts.etcdPods).toEqual([
      { name: "etcd-m1", node: "m1", ready: false },
      { name: "etcd-m2", node: "m2", ready: true },
      { name: "etcd-m3", node: "m3", ready: true },
    ]);
    expect(facts.etcdVersion).toBe("3.4.23");
    expect(facts.deckhouseVersion).toBe("v1.68.13");
    expect(sim.execs.slice(before).map((e) => [e.pod, e.container, e.argv])).toEqual([["etcd-m2", "etcd", ["/usr/bin/etcdctl", "version"]]]);
  });

  it("leaves versions unknown when Deckhouse is not visible (403) and the version exec fails", async () => {
    const warnings: string[] = [];
    const log: Logger = { info() {}, error() {}, warn: (m) => warnings.push(m) };
    sim.config.nodes = [masterNode("m1", "10.0.0.1")];
    sim.config.pods = [etcdPod("m1", { image: DIGEST_IMAGE, exec: [{ argvIncludes: ["version"], exit: { code: 127, stderr: "exec: not found" } }] })];
    sim.config.forbid = ["/apis/apps/"];
    try {
      const facts = await new KubeClusterAccess({ log }).discover(conn(sim.kubeconfig));
      expect(facts.etcdVersion).toBeNull();
      expect(facts.deckhouseVersion).toBeNull();
      expect(warnings).toHaveLength(1);
    } finally {
      delete sim.config.forbid;
    }
  });

  it("falls back to the legacy master label on old clusters", async () => {
    sim.config.nodes = [{ name: "old-master", internalIP: "10.9.0.1", labels: { "node-role.kubernetes.io/master": "" } }];
    sim.config.pods = [etcdPod("old-master")];
    expect((await access.discover(conn(sim.kubeconfig))).masters).toEqual([{ name: "old-master", internalIP: "10.9.0.1" }]);
  });
});

describe("kubeconfig TLS and credentials, unreachable clusters", () => {
  let sim: KubeSim;
  let silent: Server;
  let silentPort: number;
  let dir: string;
  beforeAll(async () => {
    sim = await startKubeSim({ nodes: [masterNode("m1", "10.0.0.1")], pods: [etcdPod("m1"), etcdPod("m2", { exec: [{ exit: { code: 0, stdout: "snapshot-bytes" } }] })] });
    dir = mkdtempSync(join(tmpdir(), "kube-access-ca-"));
    // Accepts TCP connections and never answers: the timeout case.
    silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    silentPort = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    await sim?.close();
    silent?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const expectClean = (err: VaultError, host: string, why: RegExp) => {
    expect(err.code).toBe("upstream_failed");
    expect(err.message).toContain(host);
    expect(err.message).toMatch(why);
    expect(err.message).not.toContain(sim.token);
    expect(err.message).not.toContain("wrong-token");
  };

  it("refused port", async () => {
    const port = await freePort();
    const err = await failureOf(access.discover(conn(sim.kubeconfigWith({ server: `https://127.0.0.1:${port}` }))));
    expectClean(err, `127.0.0.1:${port}`, /connection refused/);
  });

  it("wrong CA → TLS", async () => {
    const other = generateCa(dir, "other");
    const kc = sim.kubeconfigWith({ caPem: other.certPem });
    expectClean(await failureOf(access.discover(conn(kc))), `127.0.0.1:${sim.port}`, /TLS: server certificate not trusted/);
    expectClean(await failureOf(access.execSnapshot(conn(kc), "etcd-m1", { idleTimeoutMs: 5000 })), `127.0.0.1:${sim.port}`, /TLS/);
  });

  it("bad token → auth 401, for REST and for the exec handshake", async () => {
    const kc = sim.kubeconfigWith({ token: "wrong-token-0123456789" });
    expectClean(await failureOf(access.discover(conn(kc))), `127.0.0.1:${sim.port}`, /auth: 401 Unauthorized/);
    expectClean(await failureOf(access.snapshotCandidates(conn(kc))), `127.0.0.1:${sim.port}`, /auth: 401/);
    expectClean(await failureOf(access.execSnapshot(conn(kc), "etcd-m1", { idleTimeoutMs: 5000 })), `127.0.0.1:${sim.port}`, /auth: 401/);
  });

  // The exec's TLS and credentials are applied by ExecSocket (src/kube/exec-socket.ts) from what
  // client-node's applyToHTTPSOptions hands over: each kubeconfig form, for REST and for exec.
  const execOutput = async (kc: string, via = access) => {
    const exec = await via.execSnapshot(conn(kc), "etcd-m2", { idleTimeoutMs: 5000 });
    const out = (await drain(exec)).toString();
    await exec.done;
    return out;
  };

  it("x509 client certificate instead of a token: REST and exec authenticate; one from another CA gets 401", async () => {
    const kc = sim.kubeconfigWith({ clientCert: sim.clientCertificate("sim-user") });
    expect(kc).not.toContain("token");
    expect((await access.snapshotCandidates(conn(kc))).map((p) => p.name)).toContain("etcd-m2");
    expect(await execOutput(kc)).toBe("snapshot-bytes");
    const forged = sim.kubeconfigWith({ clientCert: sim.clientCertificate("sim-user", generateCa(dir, "rogue")) });
    expectClean(await failureOf(access.snapshotCandidates(conn(forged))), `127.0.0.1:${sim.port}`, /auth: 401/);
    expectClean(await failureOf(access.execSnapshot(conn(forged), "etcd-m2", { idleTimeoutMs: 5000 })), `127.0.0.1:${sim.port}`, /auth: 401/);
  });

  it("tls-server-name is what the server certificate is checked against (REST and exec)", async () => {
    // The simulator's certificate names IP 127.0.0.1 and DNS localhost.
    expect(await execOutput(sim.kubeconfigWith({ tlsServerName: "localhost" }))).toBe("snapshot-bytes");
    const wrong = sim.kubeconfigWith({ tlsServerName: "kubernetes.default.svc" });
    expectClean(await failureOf(access.discover(conn(wrong))), `127.0.0.1:${sim.port}`, /TLS: server certificate does not match the host/);
    expectClean(await failureOf(access.execSnapshot(conn(wrong), "etcd-m2", { idleTimeoutMs: 5000 })), `127.0.0.1:${sim.port}`, /TLS: server certificate does not match the host/);
  });

  it("insecure-skip-tls-verify: no CA needed for REST or exec", async () => {
    const kc = sim.kubeconfigWith({ insecure: true });
    expect(kc).not.toContain("certificate-authority");
    expect((await access.snapshotCandidates(conn(kc))).map((p) => p.name)).toContain("etcd-m2");
    expect(await execOutput(kc)).toBe("snapshot-bytes");
  });

  it("an exec credential plugin is refused unless allowed, and its command never runs", async () => {
    const marker = join(dir, "plugin-ran");
    const kc = sim.kubeconfigWith({}).replace(
      /user:\n\s+token: .*\n/,
      `user:\n      exec:\n        apiVersion: client.authentication.k8s.io/v1beta1\n        command: sh\n        args: ["-c", "touch ${marker}; printf '%s' '{\\"apiVersion\\":\\"client.authentication.k8s.io/v1beta1\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"${sim.token}\\"}}'"]\n`,
    );
    expect(kc).toContain("command: sh");
    for (const attempt of [access.discover(conn(kc)), access.snapshotCandidates(conn(kc)), access.execSnapshot(conn(kc), "etcd-m2", { idleTimeoutMs: 5000 })]) {
      const err = await failureOf(attempt);
      expect(err.code).toBe("invalid_input");
      expect(err.message).toContain("exec credential plugin");
    }
    expect(existsSync(marker)).toBe(false);
    // Allowed, the plugin runs and its token works.
    expect(await execOutput(kc, new KubeClusterAccess({ allowCredentialCommands: true }))).toBe("snapshot-bytes");
    expect(existsSync(marker)).toBe(true);
  });

  it("cancelled or timed out while an exec credential plugin runs: no connection is made at all", async () => {
    // client-node runs the plugin before the socket exists; the exec must end there, not open later.
    const withPlugins = new KubeClusterAccess({ clock: { now: () => NOW }, requestTimeoutMs: 5000, allowCredentialCommands: true });
    const plugin = (delay: number) => {
      const kc = sim.kubeconfigWith({}).replace(
        /user:\n\s+token: .*\n/,
        `user:\n      exec:\n        apiVersion: client.authentication.k8s.io/v1beta1\n        command: sh\n        args: ["-c", "sleep ${delay}; printf '%s' '{\\"apiVersion\\":\\"client.authentication.k8s.io/v1beta1\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"${sim.token}\\"}}'"]\n`,
      );
      expect(kc).toContain("command: sh");
      return kc;
    };
    // The plugin's token works when nobody cancels.
    expect(await execOutput(plugin(0), withPlugins)).toBe("snapshot-bytes");
    const before = sim.execs.length;
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 100);
    const cancelled = await failureOf(withPlugins.execSnapshot(conn(plugin(0.6)), "etcd-m2", { idleTimeoutMs: 5000, signal: ctl.signal }));
    expect(cancelled.code).toBe("cancelled");
    const timedOut = await failureOf(withPlugins.execSnapshot(conn(plugin(0.6)), "etcd-m2", { idleTimeoutMs: 150 }));
    expect(timedOut.code).toBe("timeout");
    await new Promise((r) => setTimeout(r, 900)); // past the plugins' exit
    expect(sim.execs.length).toBe(before);
  });

  it("RBAC denial → auth 403 with the server's reason", async () => {
    sim.config.forbid = ["/api/v1/namespaces/kube-system/pods"];
    try {
      const err = await failureOf(access.snapshotCandidates(conn(sim.kubeconfig)));
      expectClean(err, `127.0.0.1:${sim.port}`, /auth: 403 Forbidden: forbidden: User "sim-user"/);
    } finally {
      delete sim.config.forbid;
    }
  });

  it("DNS failure", async () => {
    const err = await failureOf(access.discover(conn(sim.kubeconfigWith({ server: "https://api.nonexistent.invalid:6443" }))));
    expectClean(err, "api.nonexistent.invalid:6443", /DNS/);
  });

  it("no answer → timeout (REST deadline, and the exec handshake bounded by the idle timeout)", async () => {
    const kc = sim.kubeconfigWith({ server: `https://127.0.0.1:${silentPort}` });
    const t0 = Date.now();
    const err = await failureOf(new KubeClusterAccess({ requestTimeoutMs: 400 }).discover(conn(kc)));
    expectClean(err, `127.0.0.1:${silentPort}`, /timeout/);
    const execErr = await failureOf(access.execSnapshot(conn(kc), "etcd-m1", { idleTimeoutMs: 400 }));
    expect(execErr.code).toBe("timeout");
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it("an invalid kubeconfig is invalid input, not an upstream failure", async () => {
    const err = await failureOf(access.discover(conn("apiVersion: v1\nkind: Config\n")));
    expect(err.code).toBe("invalid_input");
  });
});

describe("snapshot exec", () => {
  let etcd: TestEtcd;
  let sim: KubeSim;
  let dir: string;
  beforeAll(async () => {
    etcd = await startEtcd({ name: "etcd-exec-test" });
    await etcd.putObjects({ count: 300, valueSize: 4096, resource: "configmaps", namespaces: 5 });
    dir = mkdtempSync(join(tmpdir(), "kube-access-snap-"));
    const snapshot = etcd.snapshotPipeCommand();
    const pod = (name: string, rules: SimPod["exec"], o: Partial<SimPod> = {}): SimPod => ({ ...etcdPod("m1", { name, exec: rules }), ...o });
    sim = await startKubeSim({
      nodes: [masterNode("m1", "10.0.0.1")],
      pods: [
        pod("etcd-ok", [{ run: snapshot }]),
        pod("etcd-not-ready", [{ run: snapshot }], { ready: false }),
        pod("etcd-other-container", [], { containers: [{ name: "etcd-main", image: "etcd:3.5.16" }] }),
        pod("etcd-cut", [{ run: snapshot, cutAfterBytes: 300_000 }]),
        pod("etcd-exit", [{ exit: { code: 1, stderr: "Error: context deadline exceeded\n" } }]),
        pod("etcd-noisy", [{ exit: { code: 2, stderr: `${"x".repeat(10_000)} THE-END` } }]),
        pod("etcd-hang", [{ hang: true }]),
        pod("etcd-endless", [{ run: randomBytesCommand(512 << 20) }]),
        pod("etcd-fragmenting", [{ run: snapshot, fragments: 3, pingEveryMs: 2 }]),
      ],
    });
  });
  afterAll(async () => {
    await sim?.close();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const c = () => conn(sim.kubeconfig);

  it("candidates: Ready pods with the etcd container, in API order", async () => {
    expect((await access.snapshotCandidates(c())).map((p) => p.name)).toEqual(["etcd-ok", "etcd-cut", "etcd-exit", "etcd-noisy", "etcd-hang", "etcd-endless", "etcd-fragmenting"]);
    expect((await access.snapshotCandidates(conn(sim.kubeconfig, { container: "etcd-main" }))).map((p) => p.name)).toEqual(["etcd-other-container"]);
  });

  it("streams a real snapshot, byte-identical to `etcdctl snapshot save` (db + SHA-256 trailer)", async () => {
    const exec = await access.execSnapshot(c(), "etcd-ok", { idleTimeoutMs: 10_000 });
    expect(exec.pod).toBe("etcd-ok");
    const streamed = await drain(exec);
    await exec.done;
    const saved = join(dir, "independent.db");
    await etcd.snapshotTo(saved);
    const reference = readFileSync(saved);
    expect(streamed.length).toBeGreaterThan(1 << 20);
    expect(streamed.length % 512).toBe(32);
    expect(createHash("sha256").update(streamed.subarray(0, streamed.length - 32)).digest()).toEqual(streamed.subarray(streamed.length - 32));
    expect(Buffer.compare(streamed, reference)).toBe(0);
    expect(sim.execs.at(-1)).toMatchObject({
      namespace: "kube-system", pod: "etcd-ok", container: "etcd", argv: [...DECKHOUSE_SNAPSHOT_COMMAND],
      stdin: false, stdout: true, stderr: true, tty: false, protocol: "v5.channel.k8s.io", outcome: "success",
    });
  });

  it("reassembles fragmented messages and answers the server's pings while streaming", async () => {
    const exec = await access.execSnapshot(c(), "etcd-fragmenting", { idleTimeoutMs: 10_000 });
    const streamed = await drain(exec);
    await exec.done;
    await etcd.snapshotTo(join(dir, "fragmented-reference.db"));
    expect(Buffer.compare(streamed, readFileSync(join(dir, "fragmented-reference.db")))).toBe(0);
    const record = sim.execs.filter((e) => e.pod === "etcd-fragmenting").at(-1)!;
    expect(record.outcome).toBe("success");
    expect(record.pongs).toBeGreaterThan(0);
  });

  it("goes through the kubeconfig's proxy-url (HTTP CONNECT) for REST and exec", async () => {
    const tunnels: string[] = [];
    const proxy = createHttpServer();
    const open = new Set<Duplex>();
    proxy.on("connect", (req: IncomingMessage, client: Duplex, head: Buffer) => {
      tunnels.push(req.url ?? "");
      open.add(client);
      const [host, port] = (req.url ?? "").split(":");
      const upstream = connectTcp(Number(port), host!, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
      const viaProxy = conn(sim.kubeconfigWith({ proxyUrl }));
      expect((await access.snapshotCandidates(viaProxy)).map((p) => p.name)).toContain("etcd-ok");
      const restTunnels = tunnels.length;
      expect(restTunnels).toBeGreaterThanOrEqual(1);
      const exec = await access.execSnapshot(viaProxy, "etcd-ok", { idleTimeoutMs: 10_000 });
      const streamed = await drain(exec);
      await exec.done;
      expect(streamed.length % 512).toBe(32);
      expect(createHash("sha256").update(streamed.subarray(0, streamed.length - 32)).digest()).toEqual(streamed.subarray(streamed.length - 32));
      // The exec's WebSocket took the proxy too, so it was ws over client-node's proxy agent:
      // ExecSocket connects straight to the server and cannot have made this tunnel.
      expect(tunnels.length).toBe(restTunnels + 1);
      expect(new Set(tunnels)).toEqual(new Set([`127.0.0.1:${sim.port}`]));
    } finally {
      // Tunnels left the HTTP server's books at CONNECT: closing the server does not end them.
      for (const sock of open) sock.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it("goes through a SOCKS5 proxy-url for REST and exec, with and without credentials", async () => {
    const plain = await startSocks5Server();
    const secret = "socks-pass-7f3a9c";
    const authed = await startSocks5Server({ credentials: { user: "vault", password: secret } });
    try {
      // No authentication.
      const viaSocks = conn(sim.kubeconfigWith({ proxyUrl: plain.url }));
      expect((await access.snapshotCandidates(viaSocks)).map((p) => p.name)).toContain("etcd-ok");
      const restTunnels = plain.tunnels.length;
      expect(restTunnels).toBeGreaterThanOrEqual(1);
      const exec = await access.execSnapshot(viaSocks, "etcd-ok", { idleTimeoutMs: 10_000 });
      const streamed = await drain(exec);
      await exec.done;
      expect(streamed.length % 512).toBe(32);
      expect(createHash("sha256").update(streamed.subarray(0, streamed.length - 32)).digest()).toEqual(streamed.subarray(streamed.length - 32));
      // The exec took a tunnel of its own: it went through the proxy, not straight to the server.
      expect(plain.tunnels.length).toBe(restTunnels + 1);
      expect(new Set(plain.tunnels.map((t) => t.destination))).toEqual(new Set([`127.0.0.1:${sim.port}`]));

      // Username and password (RFC 1929), from the URL's userinfo.
      const withUser = authed.url.replace("socks5://", `socks5://vault:${secret}@`);
      const viaAuthed = conn(sim.kubeconfigWith({ proxyUrl: withUser }));
      expect((await access.snapshotCandidates(viaAuthed)).map((p) => p.name)).toContain("etcd-ok");
      const authedExec = await access.execSnapshot(viaAuthed, "etcd-ok", { idleTimeoutMs: 10_000 });
      expect((await drain(authedExec)).length).toBe(streamed.length);
      await authedExec.done;
      expect(authed.tunnels.length).toBeGreaterThanOrEqual(2); // REST, then the exec
      expect(authed.tunnels.every((t) => t.user === "vault" && t.destination === `127.0.0.1:${sim.port}`)).toBe(true);

      // A wrong password is refused by the proxy: a clear error that does not carry the password.
      const wrong = "wrong-pass-51d0e2";
      const refusedBefore = authed.refused;
      const viaWrong = conn(sim.kubeconfigWith({ proxyUrl: authed.url.replace("socks5://", `socks5://vault:${wrong}@`) }));
      const error = await access.snapshotCandidates(viaWrong).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(VaultError);
      expect(authed.refused).toBeGreaterThan(refusedBefore);
      expect((error as VaultError).code).toBe("upstream_failed");
      expect((error as VaultError).message).toMatch(/Socks5 Authentication failed/);
      const text = JSON.stringify({ message: (error as VaultError).message, field: (error as VaultError).field ?? null });
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(secret);
    } finally {
      await plain.close();
      await authed.close();
    }
  });

  it("a cut connection fails the stream: exec_failed, closed without status after N bytes", async () => {
    const exec = await access.execSnapshot(c(), "etcd-cut", { idleTimeoutMs: 10_000 });
    const { bytes, error } = await drainFailing(exec);
    expect(bytes).toBe(300_000);
    expect(error.code).toBe("exec_failed");
    expect(error.message).toMatch(/^pod etcd-cut: connection closed without status after 300000 bytes \(close code 1006/);
    await expect(exec.done).rejects.toBe(error);
  });

  it("a non-zero exit fails with the exit code and stderr", async () => {
    const exec = await access.execSnapshot(c(), "etcd-exit", { idleTimeoutMs: 10_000 });
    const { error } = await drainFailing(exec);
    expect(error.code).toBe("exec_failed");
    expect(error.message).toBe("pod etcd-exit: exit code 1: Error: context deadline exceeded");
    await expect(exec.done).rejects.toThrow("exit code 1");
  });

  it("keeps only the last 2 KiB of stderr", async () => {
    const exec = await access.execSnapshot(c(), "etcd-noisy", { idleTimeoutMs: 10_000 });
    const error = await failureOf(exec.done);
    expect(error.message).toMatch(/^pod etcd-noisy: exit code 2: x+ THE-END$/);
    expect(error.message.length).toBeLessThanOrEqual(2048 + "pod etcd-noisy: exit code 2: ".length);
  });

  it("a hang times out after the idle timeout and closes the socket", async () => {
    const t0 = Date.now();
    const exec = await access.execSnapshot(c(), "etcd-hang", { idleTimeoutMs: 600 });
    const { error } = await drainFailing(exec);
    expect(error.code).toBe("timeout");
    expect(error.message).toBe("pod etcd-hang: no output for 1s");
    expect(Date.now() - t0).toBeLessThan(3000);
    await expect.poll(() => sim.execs.filter((e) => e.pod === "etcd-hang").at(-1)!.outcome).toBe("client-closed");
  });

  it("an unknown pod is exec_failed (404) before any stream", async () => {
    const err = await failureOf(access.execSnapshot(c(), "etcd-gone", { idleTimeoutMs: 5000 }));
    expect(err.code).toBe("exec_failed");
    expect(err.message).toBe('pod etcd-gone: not found (404): pods "etcd-gone" not found');
  });

  it("abort(), an aborted signal and a consumer that stops all close the exec", async () => {
    const a = await access.execSnapshot(c(), "etcd-endless", { idleTimeoutMs: 5000 });
    const iter = a.stdout[Symbol.asyncIterator]();
    await iter.next();
    a.abort("operator stopped it");
    await expect(a.done).rejects.toMatchObject({ code: "cancelled", message: "pod etcd-endless: operator stopped it" });
    await expect(iter.next()).rejects.toMatchObject({ code: "cancelled" });

    const ctl = new AbortController();
    const b = await access.execSnapshot(c(), "etcd-endless", { idleTimeoutMs: 5000, signal: ctl.signal });
    setTimeout(() => ctl.abort(), 50);
    expect((await drainFailing(b)).error.code).toBe("cancelled");

    const d = await access.execSnapshot(c(), "etcd-endless", { idleTimeoutMs: 5000 });
    for await (const _ of d.stdout) break;
    await expect(d.done).rejects.toMatchObject({ code: "cancelled" });
    await expect.poll(() => sim.execs.filter((e) => e.pod === "etcd-endless").every((e) => e.outcome === "client-closed")).toBe(true);
    await sim.idle(); // every child was killed
  });
});
