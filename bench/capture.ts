// bench:capture — one manual backup through the real service, side by side with the manual
// pipeline it replaces, on the same etcd snapshot, in one run.
//
//   npm run bench:capture [-- --size 256m|1g] [--throttle 50] [--repeat 1] [--warmup 1]
//                         [--pipe grpc|save|stream|all, or a comma list; default grpc]
//                         [--stand-in-runtime node|tsx]   how the TypeScript stand-ins start (default node)
//                         [--profile DIR]   V8 CPU profiles of the service processes
//
// Real parts, each in its own process: an etcd filled to --size; the Kubernetes API simulator
// (test/support/kube-sim-main.ts) exec'ing a stand-in for Deckhouse's `etcdctl snapshot pipe` of
// that etcd (Debian's etcdctl 3.4 has no `pipe`); s3rver; and the service (bench/harness/
// processes.ts's startServiceProcess: `npm start`'s command, the bundle; scheduler on, its own data dir) with an S3
// target on s3rver (`checksums=false`) and the simulator registered as a cluster with an age
// recipient. A manual backup is timed from just before POST /v1/clusters/bench/backups to its run's
// `finishedAt`, the commit that made it `succeeded` and the backup `available`.
//
// Three stand-ins for `snapshot pipe` can run in the simulator (--pipe, default grpc), each a real
// process the simulator execs, all yielding the same bytes (db + SHA-256 trailer):
//   grpc    bench/harness/etcd-snapshot-grpc.ts: the gRPC Maintenance/Snapshot call, each blob
//           written to stdout as it arrives — what `snapshot pipe` does on a Deckhouse node. The
//           headline figure. Its cluster uses Deckhouse's command unchanged.
//   save    test/support's snapshotPipeCommand (etcdctl 3.4 `snapshot save` to a temp file, then
//           `cat`: the stream starts only once the whole snapshot is on disk).
//   stream  bench/harness/etcd-snapshot-stream.ts (etcd's JSON gateway, base64 decoded as it
//           comes: streams, but the gateway and the base64 cost more CPU than streaming saves).
// The TypeScript stand-ins are compiled once with esbuild into the run's temp dir and started
// with plain `node` (~0.08 s to start and exit), as the real `etcdctl` is a binary that starts in
// milliseconds; `--stand-in-runtime tsx` runs them through `node --import tsx` instead (~0.35 s
// and ~0.3 CPU s of start-up per capture on this machine).
//
// The peer, on the same etcd: `etcdctl snapshot save` to a file → `age -r` to a file → upload of
// that file with @aws-sdk/client-s3 multipart (8 MiB parts, 2 in flight, the same client settings,
// UNSIGNED-PAYLOAD included; bench/harness/peer-upload.ts, its runtime start-up not counted). Steps
// run one after another.
//
// Memory: the service's VmHWM (/proc/<pid>/status; a fresh service process per measured capture,
// so the figure is start-up plus one capture) and its VmRSS sampled every 50 ms; the peer's steps
// by GNU time's maximum resident set. A last capture goes through the recording proxy pacing every
// upload request (test/support/recording-proxy.ts, throttle fault) so that S3 is the bottleneck,
// and so does one more peer run: with S3 as the slow part (as a remote S3 is), their ratio is
// printed as context — the target is the unthrottled ratio, on one shared machine where s3rver
// and etcd take CPU from the same two cores as the pipeline.
//
// Targets (issue 4): capture ≥ 1.3× faster than the peer; service peak RSS ≤ 160 MiB for 1 GiB,
// flat from 256 MiB to 1 GiB and with a throttled S3.

import { spawn } from "node:child_process";
import { bundle, startNodeArgs } from "../bin/build.js";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startEtcd, type TestEtcd } from "../test/support/etcd.js";
import { DECKHOUSE_SNAPSHOT_COMMAND } from "../src/core/cluster-types.js";
import { etcdPod, masterNode } from "../test/support/kube-sim.js";
import { startRecordingProxy, type RecordingProxy } from "../test/support/recording-proxy.js";
import { ageKeygen } from "../test/support/restore-fixtures.js";
import { S3RVER_CREDENTIALS, S3RVER_REGION, startS3Server, type S3Server } from "../test/support/s3-server.js";
import { CpuMeter, RssSampler, procMemory } from "./harness/proc-stats.js";
import { startServiceProcess, startSimProcess, type ServiceProcess, type SimProcess } from "./harness/processes.js";
import { MiB, fixed, formatSize, machineFacts, parseSize, pass, printFacts, printTable, toolVersion } from "./harness/report.js";
import { peerPipeline, type PeerRun } from "./harness/peer-pipeline.js";

// This process talks to s3rver through the SDK too (bucket creation); its Node-version notice is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "256m" },
    throttle: { type: "string", default: "50" },
    repeat: { type: "string", default: "1" },
    // Unmeasured rounds (one capture and one peer run each) before the measured ones.
    warmup: { type: "string", default: "1" },
    pipe: { type: "string", default: "grpc" },
    "stand-in-runtime": { type: "string", default: "node" },
    // Write a V8 CPU profile of each service process into this directory (--cpu-prof).
    profile: { type: "string" },
    // Also run the floor (bench/harness/capture-floor.ts) once per measured round: 1 or 0.
    floor: { type: "string", default: "1" },
  },
});
type Pipe = "grpc" | "save" | "stream";
const ALL_PIPES: readonly Pipe[] = ["grpc", "save", "stream"];
const PIPES: Pipe[] =
  values.pipe === "all" || values.pipe === "both" ? [...ALL_PIPES] : (values.pipe!.split(",").map((p) => p.trim()) as Pipe[]);
if (!PIPES.length || PIPES.some((p) => !ALL_PIPES.includes(p))) throw new Error("--pipe is grpc, save, stream, all, or a comma list of them");
/** The stand-in whose ratio is the headline (and the one the throttled capture uses). */
const HEADLINE: Pipe = PIPES.includes("grpc") ? "grpc" : PIPES[0]!;
if (!["node", "tsx"].includes(values["stand-in-runtime"]!)) throw new Error("--stand-in-runtime is node or tsx");
const SIZE = parseSize(values.size!);
const THROTTLE_MBPS = Number(values.throttle);
const REPEAT = Math.max(1, Number(values.repeat));
const WARMUP = Math.max(0, Number(values.warmup));
const FLOOR = values.floor !== "0";
if (!Number.isInteger(WARMUP)) throw new Error("--warmup is a whole number of rounds");

/**
 * Appended to the cluster's snapshot command to pick a stand-in in the simulator; `grpc` (the one
 * that behaves like the real `snapshot pipe`) gets Deckhouse's command as it is.
 */
const STAND_IN_FLAG: Record<Pipe, string | null> = { grpc: null, save: "--save-stand-in", stream: "--stream-stand-in" };

interface ServiceRun {
  label: string;
  pipe?: Pipe;
  wallS: number;
  plainBytes: number;
  cipherBytes: number;
  idleRssMiB: number;
  sampledPeakMiB: number;
  hwmMiB: number;
  cpu: Record<string, number>;
  timings: Record<string, number | null>;
  /** 1-minute load average when the capture started (the machine is shared). */
  load: number;
}



const dir = mkdtempSync(join(tmpdir(), "etcd-vault-bench-capture-"));
let etcd: TestEtcd | null = null;
let s3: S3Server | null = null;
let proxy: RecordingProxy | null = null;
let sim: SimProcess | null = null;
let svc: ServiceProcess | null = null;

// Polled every 250 ms: the wall time comes from the run's own finishedAt (same machine clock), so
// polling often would only add the bench's requests (~1.25 ms of service CPU each) to the capture.
async function waitForRun(s: ServiceProcess, id: string): Promise<any> {
  for (;;) {
    const r = await s.call("GET", `/v1/runs/${id}`);
    const run = r.json;
    if (run.state === "succeeded" || run.state === "failed" || run.state === "cancelled" || (run.state === "queued" && run.error)) return run;
    await new Promise((res) => setTimeout(res, 250));
  }
}

async function serviceCapture(label: string, cluster: string, target: string, dataDir: string): Promise<ServiceRun> {
  // A fresh process per capture: its VmHWM is then start-up plus exactly this capture.
  svc = await startServiceProcess({ dataDir, nodeArgs: values.profile ? ["--cpu-prof", `--cpu-prof-dir=${values.profile}`] : [] });
  await new Promise((r) => setTimeout(r, 500));
  const idle = procMemory(svc.pid)!;
  const load = loadavg()[0]!;
  const sampler = new RssSampler(svc.pid, 50).start();
  const cpu = new CpuMeter({ service: svc.pid, "kube-sim + exec": sim!.pid, s3rver: s3!.pid, etcd: etcd!.pid }, ["kube-sim + exec"]);
  const t0 = Date.now();
  const post = await svc.call("POST", `/v1/clusters/${cluster}/backups`, { target });
  if (post.status !== 202) throw new Error(`manual backup: ${post.status} ${post.text}`);
  const run = await waitForRun(svc, post.json.id);
  // From just before the request to the commit that made the backup available.
  const wallS = (Date.parse(run.finishedAt) - t0) / 1000;
  const sampledPeakMiB = sampler.stop();
  const hwmMiB = procMemory(svc.pid)!.hwmMiB;
  const used = cpu.read();
  if (run.state !== "succeeded") throw new Error(`capture ${label} ended ${run.state}: ${JSON.stringify(run.error)}`);
  const backup = (await svc.call("GET", `/v1/backups/${run.backupId}`)).json;
  if (backup.state !== "available") throw new Error(`backup ${backup.id} is ${backup.state}`);
  await svc.stop();
  svc = null;
  return {
    label,
    wallS,
    plainBytes: backup.plaintext.size,
    cipherBytes: backup.ciphertext.size,
    idleRssMiB: idle.rssMiB,
    sampledPeakMiB,
    hwmMiB,
    cpu: used,
    timings: run.timings,
    load,
  };
}

/** argv that runs a TypeScript stand-in from bench/harness with `args`, per --stand-in-runtime. */
async function standInArgv(script: string, args: string[]): Promise<string[]> {
  if (values["stand-in-runtime"] === "tsx") return [process.execPath, "--import", "tsx", script, ...args];
  const { build } = await import("esbuild");
  const out = join(dir, "stand-ins", script.replace(/^.*\//, "").replace(/\.ts$/, ".mjs"));
  await build({ entryPoints: [script], outfile: out, bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "warning" });
  return [process.execPath, out, ...args];
}

interface FloorRun {
  wallS: number;
  firstByteMs: number | null;
  streamDoneS: number;
  bytes: number;
  /** CPU s of the floor process itself, and of the simulator (+ stand-in), s3rver and etcd meanwhile. */
  cpu: Record<string, number>;
  load: number;
}

/**
 * The floor: exec → S3 with the service's exec client and S3 store and nothing else (no checks, no
 * hashing, no age, no catalog), compiled like the service and started with its Node flag; its
 * start-up is not timed. What every exec-based pipeline pays on this machine.
 */
async function floorCapture(argv: string[], kubeconfigFile: string, key: string): Promise<FloorRun> {
  const load = loadavg()[0]!;
  const cpu = new CpuMeter({ "kube-sim + exec": sim!.pid, s3rver: s3!.pid, etcd: etcd!.pid }, ["kube-sim + exec"]);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(argv[0]!, [...argv.slice(1), "--kubeconfig", kubeconfigFile, "--endpoint", s3!.endpoint, "--bucket", floorBucket, "--key", key], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (text += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.once("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`capture-floor exited ${code}: ${err.trim()}`))));
  });
  const used = cpu.read();
  const r = JSON.parse(out) as Omit<FloorRun, "cpu" | "load"> & { cpuS: number };
  return { wallS: r.wallS, firstByteMs: r.firstByteMs, streamDoneS: r.streamDoneS, bytes: r.bytes, cpu: { floor: r.cpuS, ...used }, load };
}
let floorBucket = "";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  printFacts(
    machineFacts({
      etcd: toolVersion("etcd", ["--version"]).replace(/^etcd Version: /, ""),
      age: toolVersion("age", ["--version"]),
      "stand-ins": `${PIPES.join(", ")} (headline ${HEADLINE}; TypeScript ones run by ${values["stand-in-runtime"] === "tsx" ? "node --import tsx" : "plain node, esbuild-compiled"})`,
    }),
  );
  process.stdout.write(`filling etcd to ${formatSize(SIZE)}…\n`);
  etcd = await startEtcd({ name: "master-0", parentDir: dir });
  const tFill = performance.now();
  const filled = await etcd.fillTo(SIZE);
  process.stdout.write(`etcd db ${formatSize(filled.dbSize)} (${filled.keys} keys written in ${fixed((performance.now() - tFill) / 1000)} s)\n`);

  const recipient = ageKeygen(join(dir, "key.txt"));
  s3 = await startS3Server({ dir: join(dir, "s3rver") });
  const bucket = await s3.createBucket();
  proxy = await startRecordingProxy(s3.endpoint, { captureBodyBytes: 0 });
  // Two parts are in flight at once: pace each request at half the rate for ~THROTTLE_MBPS in all.
  if (THROTTLE_MBPS > 0) {
    proxy.inject({
      when: (r) => r.operation === "UploadPart" || r.operation === "PutObject",
      fault: { kind: "throttle", bytesPerSecond: (THROTTLE_MBPS * 1_000_000) / 2 },
    });
  }
  const simDir = join(dir, "sim");
  mkdirSync(simDir);
  sim = await startSimProcess(
    {
      nodes: [masterNode("master-0", "127.0.0.1")],
      pods: [
        etcdPod("master-0", {
          // The first rule whose argvIncludes all appear wins: flagged stand-ins first. Cluster
          // `bench-<pipe>` asks for `snapshot pipe [flag]` (its etcd.command).
          exec: [
            { argvIncludes: ["pipe", STAND_IN_FLAG.stream!], run: await standInArgv("bench/harness/etcd-snapshot-stream.ts", [etcd.clientUrl]) },
            { argvIncludes: ["pipe", STAND_IN_FLAG.save!], run: etcd.snapshotPipeCommand() },
            { argvIncludes: ["snapshot", "pipe"], run: await standInArgv("bench/harness/etcd-snapshot-grpc.ts", [etcd.clientUrl]) },
          ],
        }),
      ],
    },
    simDir,
  );

  const dataDir = join(dir, "service");
  mkdirSync(dataDir);
  svc = await startServiceProcess({ dataDir });
  const targetUrl = (endpoint: string) =>
    `s3://${bucket}/backups?endpoint=${encodeURIComponent(endpoint)}&region=${S3RVER_REGION}&forcePathStyle=true&checksums=false`;
  for (const [name, endpoint] of [["s3", s3.endpoint], ["s3-throttled", proxy.endpoint]] as const) {
    const t = await svc.call("POST", "/v1/targets", { name, url: targetUrl(endpoint), credentials: S3RVER_CREDENTIALS });
    if (t.status !== 201) throw new Error(`target ${name}: ${t.status} ${t.text}`);
  }
  for (const pipe of PIPES) {
    const flag = STAND_IN_FLAG[pipe];
    const command = flag ? [...DECKHOUSE_SNAPSHOT_COMMAND, flag] : [...DECKHOUSE_SNAPSHOT_COMMAND];
    const c = await svc.call("POST", "/v1/clusters", {
      name: `bench-${pipe}`,
      labels: { env: "bench" },
      kubeconfig: sim.kubeconfig,
      recipients: [recipient],
      etcd: { command },
    });
    if (c.status !== 201) throw new Error(`cluster bench-${pipe}: ${c.status} ${c.text}`);
  }
  await svc.stop();
  svc = null;

  const ours: ServiceRun[] = [];
  const peers: PeerRun[] = [];
  const peerLoads: number[] = [];
  const peerServerCpu: Array<Record<string, number>> = [];
  const floors: FloorRun[] = [];
  let floorArgv: string[] = [];
  const floorKubeconfig = join(dir, "floor-kubeconfig");
  if (FLOOR) {
    writeFileSync(floorKubeconfig, sim.kubeconfig, { mode: 0o600 });
    // Bundled and started as the service is (bin/build.js's bundle, npm start's Node flags).
    const out = join(dir, "stand-ins", "capture-floor.mjs");
    await bundle("bench/harness/capture-floor.ts", out, { quiet: true });
    floorArgv = [process.execPath, ...startNodeArgs().flags, out];
    floorBucket = await s3.createBucket();
  }
  // Warm-up: the first pipeline to touch the freshly started s3rver and the just-filled etcd pays
  // their start-up (s3rver's JIT, its first 256 MiB of page cache: 4.1–5.0 s of s3rver CPU against
  // 2.7–2.9 later), and in every round it was ours. These rounds run both and are not counted;
  // each measured capture still starts its own fresh service process, so our start-up is counted.
  for (let i = 0; i < WARMUP; i++) {
    process.stdout.write(`warm-up ${i + 1}/${WARMUP} (not counted): service capture (${HEADLINE}) and peer pipeline…\n`);
    const w = await serviceCapture(`warm-up #${i + 1}`, `bench-${HEADLINE}`, "s3", dataDir);
    const wp = await peerPipeline({ etcdUrl: etcd.clientUrl, s3Endpoint: s3.endpoint, bucket, recipient, dir, key: `peer/warmup-${i}/snapshot.db.age` });
    process.stdout.write(`  warm-up #${i + 1}: ours ${fixed(w.wallS, 2)} s, peer ${fixed(wp.wallS, 2)} s\n`);
  }
  const runPeer = async (i: number) => {
    process.stdout.write(`run ${i + 1}/${REPEAT}: peer pipeline…\n`);
    peerLoads.push(loadavg()[0]!);
    // The servers' side of the peer's work, for the CPU comparison printed below.
    const serverCpu = new CpuMeter({ s3rver: s3!.pid, etcd: etcd!.pid });
    peers.push(await peerPipeline({ etcdUrl: etcd!.clientUrl, s3Endpoint: s3!.endpoint, bucket, recipient, dir, key: `peer/${i}/snapshot.db.age` }));
    peerServerCpu.push(serverCpu.read());
  };
  for (let i = 0; i < REPEAT; i++) {
    // Alternating order (ours first in even rounds, the peer first in odd ones): neither side
    // always runs right after the other's writes and page-cache churn.
    if (i % 2 === 1) await runPeer(i);
    for (const pipe of PIPES) {
      process.stdout.write(`run ${i + 1}/${REPEAT}: service capture (${pipe})…\n`);
      ours.push({ ...(await serviceCapture(`etcd-vault, ${pipe} #${i + 1}`, `bench-${pipe}`, "s3", dataDir)), pipe });
    }
    if (i % 2 === 0) await runPeer(i);
    if (FLOOR) {
      process.stdout.write(`run ${i + 1}/${REPEAT}: floor (exec → S3, nothing else)…\n`);
      floors.push(await floorCapture(floorArgv, floorKubeconfig, `floor/${i}/snapshot.db`));
    }
  }
  let throttled: ServiceRun | null = null;
  let throttledPeer: PeerRun | null = null;
  let throttledPeerLoad = 0;
  if (THROTTLE_MBPS > 0) {
    const pipe = HEADLINE;
    process.stdout.write(`service capture (${pipe}) through the proxy (S3 paced to ~${THROTTLE_MBPS} MB/s)…\n`);
    throttled = { ...(await serviceCapture(`etcd-vault, ${pipe}, S3 at ~${THROTTLE_MBPS} MB/s`, `bench-${pipe}`, "s3-throttled", dataDir)), pipe };
    process.stdout.write(`peer pipeline through the proxy (S3 paced to ~${THROTTLE_MBPS} MB/s)…\n`);
    throttledPeerLoad = loadavg()[0]!;
    throttledPeer = await peerPipeline({ etcdUrl: etcd.clientUrl, s3Endpoint: proxy.endpoint, bucket, recipient, dir, key: "peer/throttled/snapshot.db.age" });
  }

  // ---- report -------------------------------------------------------------------------------------
  const snapshot = ours[0]!.plainBytes;
  const mibps = (bytes: number, s: number) => fixed(bytes / MiB / s, 1);
  const rows: Array<Array<string | number>> = [];
  for (const r of ours) rows.push([r.label, fixed(r.wallS, 2), mibps(r.plainBytes, r.wallS), fixed(r.hwmMiB, 1), fixed(r.sampledPeakMiB, 1), fixed(r.cpu.service!, 1), fixed(r.load, 2)]);
  peers.forEach((p, i) => {
    const peakStep = Math.max(...p.steps.map((s) => s.run.maxRssMiB));
    const cpuS = p.steps.reduce((a, s) => a + s.run.cpuS, 0);
    rows.push([`peer #${i + 1} (etcdctl → age → upload)`, fixed(p.wallS, 2), mibps(p.plainBytes, p.wallS), fixed(peakStep, 1), "max of steps", fixed(cpuS, 1), fixed(peerLoads[i]!, 2)]);
  });
  if (throttled) {
    const t = throttled;
    rows.push([t.label, fixed(t.wallS, 2), mibps(t.plainBytes, t.wallS), fixed(t.hwmMiB, 1), fixed(t.sampledPeakMiB, 1), fixed(t.cpu.service!, 1), fixed(t.load, 2)]);
  }
  if (throttledPeer) {
    const p = throttledPeer;
    const cpuS = p.steps.reduce((a, s) => a + s.run.cpuS, 0);
    const peakStep = Math.max(...p.steps.map((s) => s.run.maxRssMiB));
    rows.push([`peer, S3 at ~${THROTTLE_MBPS} MB/s`, fixed(p.wallS, 2), mibps(p.plainBytes, p.wallS), fixed(peakStep, 1), "max of steps", fixed(cpuS, 1), fixed(throttledPeerLoad, 2)]);
  }
  printTable(
    `Capture of a ${formatSize(snapshot)} snapshot (etcd db filled to ${formatSize(SIZE)}; MiB/s of plaintext)`,
    ["pipeline", "wall s", "MiB/s", "peak RSS MiB", "sampled RSS MiB", "CPU s", "load 1m at start"],
    rows,
  );

  printTable(
    "CPU s of every process, ours against the peer's (the peer's steps plus what s3rver and etcd spent during them)",
    ["run", "ours: service + sim/exec + s3rver + etcd", "total", "peer: steps + s3rver + etcd", "total"],
    peers.map((p, i) => {
      const o = ours.filter((r) => r.pipe === HEADLINE)[i];
      const oc = o ? o.cpu : null;
      const steps = p.steps.reduce((a, st) => a + st.run.cpuS, 0);
      const srv = peerServerCpu[i]!;
      const oursParts = oc ? [oc.service!, oc["kube-sim + exec"]!, oc.s3rver!, oc.etcd!] : [];
      return [
        `#${i + 1}`,
        oc ? oursParts.map((x) => fixed(x, 1)).join(" + ") : "—",
        oc ? fixed(oursParts.reduce((a, b) => a + b, 0), 1) : "—",
        `${fixed(steps, 1)} + ${fixed(srv.s3rver!, 1)} + ${fixed(srv.etcd!, 1)}`,
        fixed(steps + srv.s3rver! + srv.etcd!, 1),
      ];
    }),
  );

  const last = peers[peers.length - 1]!;
  printTable(
    "Peer steps (last run; one after another)",
    ["step", "wall s", "peak RSS MiB", "CPU s"],
    last.steps.map((s) => [s.name, fixed(s.wallS, 2), fixed(s.run.maxRssMiB, 1), fixed(s.run.cpuS, 1)]),
  );

  const cpuRows = [...ours, ...(throttled ? [throttled] : [])].map((r) => [
    r.label,
    ...Object.values(r.cpu).map((v) => fixed(v, 1)),
    fixed(r.timings.execFirstByteMs ?? NaN, 0),
    fixed(r.timings.streamMs ?? NaN, 0),
    fixed(r.timings.uploadMs ?? NaN, 0),
    fixed(r.timings.totalMs ?? NaN, 0),
    fixed(r.idleRssMiB, 1),
  ]);
  printTable(
    "Where the service capture's time went (CPU s per process during the capture; run timings in ms)",
    [
      "capture",
      ...Object.keys(ours[0]!.cpu).map((k) => `CPU ${k}`),
      "exec 1st byte",
      "stream",
      "upload",
      "total",
      "idle RSS MiB",
    ],
    cpuRows,
  );

  const peerWall = median(peers.map((p) => p.wallS));
  const ratios = [HEADLINE, ...PIPES.filter((p) => p !== HEADLINE)].map((pipe) => {
    const ratio = peerWall / median(ours.filter((r) => r.pipe === pipe).map((r) => r.wallS));
    const what = pipe === HEADLINE ? `${pipe} stand-in (headline)` : `${pipe} stand-in (comparison)`;
    return [`speed-up over the peer, ${what} (peer wall / our wall)`, `${fixed(ratio, 2)}×`, "≥ 1.3×", pass(ratio >= 1.3)];
  });
  const hwm = Math.max(...ours.map((r) => r.hwmMiB), throttled?.hwmMiB ?? 0);
  printTable("Targets (medians over runs)", ["figure", "value", "target", "result"], [
    ...ratios,
    ["service peak RSS (VmHWM), max over captures", `${fixed(hwm, 1)} MiB`, "≤ 160 MiB", pass(hwm <= 160)],
    ...(throttled && throttledPeer
      ? [[`context, not the target: speed-up with S3 paced to ~${THROTTLE_MBPS} MB/s (one run each)`, `${fixed(throttledPeer.wallS / throttled.wallS, 2)}×`, "—", "—"]]
      : []),
    ...(throttled
      ? [["peak RSS with S3 throttled vs not", `${fixed(throttled.hwmMiB, 1)} vs ${fixed(median(ours.map((r) => r.hwmMiB)), 1)} MiB`, "flat", pass(throttled.hwmMiB <= median(ours.map((r) => r.hwmMiB)) * 1.15)]]
      : []),
  ]);
  if (floors.length) {
    printTable(
      "The floor: exec → S3 with the service's exec client and S3 store, no checks, no hashing, no age, no catalog (what any exec-based pipeline pays here)",
      ["run", "wall s", "exec 1st byte ms", "last byte s", "CPU s floor + sim/exec + s3rver + etcd", "total", "peer wall / floor wall", "load 1m at start"],
      floors.map((f, i) => [
        `floor #${i + 1}`,
        fixed(f.wallS, 2),
        fixed(f.firstByteMs ?? NaN, 0),
        fixed(f.streamDoneS, 2),
        [f.cpu.floor!, f.cpu["kube-sim + exec"]!, f.cpu.s3rver!, f.cpu.etcd!].map((x) => fixed(x, 1)).join(" + "),
        fixed(f.cpu.floor! + f.cpu["kube-sim + exec"]! + f.cpu.s3rver! + f.cpu.etcd!, 1),
        `${fixed(peers[i]!.wallS / f.wallS, 2)}×`,
        fixed(f.load, 2),
      ]),
    );
    const floorRatio = peerWall / median(floors.map((f) => f.wallS));
    process.stdout.write(`floor: peer wall / floor wall (medians) ${fixed(floorRatio, 2)}× : what moving the bytes with the service's exec client and S3 store costs here; the issue's checks, hashes and age come on top\n`);
  }
  const paired = peers.map((p, i) => p.wallS / ours.filter((r) => r.pipe === HEADLINE)[i]!.wallS);
  process.stdout.write(`per-round ratios, ${HEADLINE} (peer wall / our wall, round by round): ${paired.map((r) => fixed(r, 2)).join(", ")}\n`);
  process.stdout.write(`load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
} finally {
  await svc?.stop();
  await sim?.stop();
  await proxy?.close();
  await s3?.stop();
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
}
