// A Kubernetes API simulator for the calls etcd-vault makes, speaking the real protocol: HTTPS with
// a generated CA, bearer-token or x509 client-certificate auth, JSON lists with label selectors,
// and pod exec upgraded to a WebSocket with the `v5.channel.k8s.io` / `v4.channel.k8s.io` channel
// protocol (binary frames, first byte = channel: 1 stdout, 2 stderr, 3 Status JSON; then a normal
// close). The requested argv is recorded and a configured LOCAL command runs in its place as a
// real child process, so the bytes on the wire are real (e.g. a real etcd snapshot). Faults: cut
// the TCP connection after N stdout bytes (no Status, the client sees 1006), non-zero exit, hang,
// pod not Ready, 401, 403, 404; and two things a real apiserver does that a client must handle:
// fragmented messages and pings.
//
// Backpressure is the WebSocket's own: bytes handed to ws but not yet written to the socket are
// counted, and the child's stdout is paused while they exceed `highWaterMark`, so a slow client
// slows the child down instead of growing this process.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";
import { WebSocketServer, type WebSocket } from "ws";
import { stringify as toYaml } from "yaml";

export interface SimNode {
  name: string;
  internalIP?: string | null;
  labels?: Record<string, string>;
}

export interface SimContainer {
  name: string;
  image: string;
}

/** What happens when a pod is asked to exec; the first rule whose `argvIncludes` all appear wins. */
export interface SimExecRule {
  argvIncludes?: string[];
  /** Local argv run in place of the requested one (gets SIM_EXEC_ARGV = JSON of the requested argv). */
  run?: string[];
  env?: Record<string, string>;
  /** Convenience for a real child that writes `stderr` and exits with `code`. */
  exit?: { code: number; stderr?: string; stdout?: string };
  /** Destroy the TCP connection (no Status, no close frame) once this many stdout bytes were sent. */
  cutAfterBytes?: number;
  /** Upgrade, then send nothing at all until the client goes away. */
  hang?: boolean;
  /** Send each stdout frame as this many WebSocket fragments (a continuation-frame message). */
  fragments?: number;
  /** Ping the client this often while the exec runs (the apiserver's heartbeat); pongs are counted. */
  pingEveryMs?: number;
}

export interface SimPod {
  name: string;
  namespace?: string;
  node?: string | null;
  labels?: Record<string, string>;
  /** Ready condition (default true). */
  ready?: boolean;
  containers?: SimContainer[];
  exec?: SimExecRule[];
}

export interface SimDeployment {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  containers?: SimContainer[];
}

export interface KubeSimConfig {
  /** Bearer token the API accepts (default: random). */
  token?: string;
  /** `/version` gitVersion (default v1.30.4). */
  gitVersion?: string;
  nodes?: SimNode[];
  pods?: SimPod[];
  deployments?: SimDeployment[];
  /** Path prefixes answered 403 Forbidden (RBAC denial), e.g. `/apis/apps/`. */
  forbid?: string[];
  /** Subprotocols the server accepts (default v5 and v4 channel protocols). */
  protocols?: string[];
  /** Bytes queued on one WebSocket before the child's stdout is paused (default 1 MiB). */
  highWaterMark?: number;
  /** Working dir for certs and the kubeconfig (default: a new temp dir, removed by close()). */
  dir?: string;
}

export interface ExecRecord {
  namespace: string;
  pod: string;
  container: string;
  argv: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  protocol: string;
  /** How it ended: `success`, `exit <n>`, `cut`, `client-closed`, `no-rule`, `spawn-error`; `hang` while hanging. */
  outcome: string | null;
  stdoutBytes: number;
  /** Pongs received for the pings of `pingEveryMs` (each checked to echo its ping's payload). */
  pongs: number;
}

export interface KubeSim {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  readonly caPem: string;
  /** kubeconfig text (CA data + token) for this simulator, and where it was written. */
  readonly kubeconfig: string;
  readonly kubeconfigPath: string;
  readonly dir: string;
  /** Live config: tests may change pods/rules between calls. */
  readonly config: KubeSimConfig;
  readonly execs: ExecRecord[];
  /** A kubeconfig for this server with parts replaced (bad token, another CA, another server URL). */
  kubeconfigWith(o: KubeconfigParts): string;
  /** A client certificate for x509 auth as `cn`, signed by this server's CA (or by `ca`). */
  clientCertificate(cn: string, ca?: GeneratedCa): { certPem: string; keyPem: string };
  /** Resolves when no exec child is running any more. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export const CHANNEL_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
const CONTROL_PLANE = "node-role.kubernetes.io/control-plane";

// ---------- convenience builders ----------

export function masterNode(name: string, internalIP: string): SimNode {
  return { name, internalIP, labels: { [CONTROL_PLANE]: "", "node-role.kubernetes.io/master": "", "kubernetes.io/hostname": name } };
}

export function etcdPod(node: string, o: { image?: string; ready?: boolean; exec?: SimExecRule[]; name?: string } = {}): SimPod {
  return {
    name: o.name ?? `etcd-${node}`,
    namespace: "kube-system",
    node,
    labels: { component: "etcd", tier: "control-plane" },
    ready: o.ready ?? true,
    containers: [{ name: "etcd", image: o.image ?? "registry.k8s.io/etcd:3.5.16-0" }],
    exec: o.exec ?? [],
  };
}

/** Local argv: `cat file` followed by the SHA-256 of the file — a raw bbolt db made into a snapshot stream. */
export function rawDbWithTrailerCommand(file: string): string[] {
  return ["bash", "-c", 'cat "$1" && openssl dgst -sha256 -binary < "$1"', "with-trailer", file];
}

/** Local argv: `n` random (incompressible) bytes on stdout. */
export function randomBytesCommand(n: number): string[] {
  return ["head", "-c", String(n), "/dev/urandom"];
}

// ---------- TLS ----------

export interface GeneratedCa {
  certPem: string;
  certPath: string;
  keyPath: string;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/** A throwaway CA (EC P-256) in `dir`, named `<name>.crt` / `<name>.key`. */
export function generateCa(dir: string, name = "ca"): GeneratedCa {
  openssl(
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-keyout", `${name}.key`, "-out", `${name}.crt`, "-subj", `/CN=kube-sim-${name}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    dir,
  );
  return { certPem: readFileSync(join(dir, `${name}.crt`), "utf8"), certPath: join(dir, `${name}.crt`), keyPath: join(dir, `${name}.key`) };
}

function serverCert(dir: string, ca: GeneratedCa): { cert: string; key: string } {
  writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n");
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver"], dir);
  openssl(["x509", "-req", "-in", "server.csr", "-CA", ca.certPath, "-CAkey", ca.keyPath, "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "server.ext"], dir);
  return { cert: readFileSync(join(dir, "server.crt"), "utf8"), key: readFileSync(join(dir, "server.key"), "utf8") };
}

export interface KubeconfigParts {
  server?: string;
  caPem?: string;
  token?: string;
  contextName?: string;
  proxyUrl?: string;
  tlsServerName?: string;
  /** `insecure-skip-tls-verify: true` and no CA. */
  insecure?: boolean;
  /** x509 client auth instead of the token. */
  clientCert?: { certPem: string; keyPem: string };
}

/** The CN of a verified client certificate on the request's TLS connection, if any. */
function certUser(req: IncomingMessage): string | null {
  const sock = req.socket as TLSSocket;
  if (!sock.authorized) return null;
  const cn = sock.getPeerCertificate()?.subject?.CN;
  return typeof cn === "string" ? cn : null;
}

function clientCertificate(dir: string, ca: GeneratedCa, cn: string): { certPem: string; keyPem: string } {
  const name = `client-${randomBytes(4).toString("hex")}`;
  writeFileSync(join(dir, `${name}.ext`), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n");
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}/O=system:masters`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", ca.certPath, "-CAkey", ca.keyPath, "-CAcreateserial", "-days", "2", "-out", `${name}.crt`, "-extfile", `${name}.ext`], dir);
  return { certPem: readFileSync(join(dir, `${name}.crt`), "utf8"), keyPem: readFileSync(join(dir, `${name}.key`), "utf8") };
}

export function makeKubeconfig(o: KubeconfigParts & { server: string; caPem: string; token: string }): string {
  const ctx = o.contextName ?? "sim";
  const b64 = (text: string) => Buffer.from(text).toString("base64");
  const cluster: Record<string, string | boolean> = o.insecure
    ? { server: o.server, "insecure-skip-tls-verify": true }
    : { server: o.server, "certificate-authority-data": b64(o.caPem) };
  if (o.proxyUrl) cluster["proxy-url"] = o.proxyUrl;
  if (o.tlsServerName) cluster["tls-server-name"] = o.tlsServerName;
  const user = o.clientCert ? { "client-certificate-data": b64(o.clientCert.certPem), "client-key-data": b64(o.clientCert.keyPem) } : { token: o.token };
  return toYaml({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "sim-cluster", cluster }],
    users: [{ name: "sim-user", user }],
    contexts: [{ name: ctx, context: { cluster: "sim-cluster", user: "sim-user" } }],
    "current-context": ctx,
  });
}

// ---------- label selectors (server side) ----------

type Requirement = (labels: Record<string, string>) => boolean;

function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter(Boolean);
}

/** Equality (`=`, `==`, `!=`), existence (`key`, `!key`) and set (`in`, `notin`) requirements. */
export function parseLabelSelector(selector: string): Requirement[] | null {
  const reqs: Requirement[] = [];
  for (const part of splitTopLevel(selector)) {
    let m: RegExpExecArray | null;
    if ((m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(part))) {
      const [, k, op, v] = m as unknown as [string, string, string, string];
      reqs.push(op === "!=" ? (l) => l[k] !== v : (l) => l[k] === v);
    } else if ((m = /^([^\s=!(),]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part))) {
      const [, k, op, list] = m as unknown as [string, string, string, string];
      const vals = new Set(list.split(",").map((x) => x.trim()));
      reqs.push(op === "in" ? (l) => k in l && vals.has(l[k]!) : (l) => !(k in l) || !vals.has(l[k]!));
    } else if ((m = /^!([^\s=!(),]+)$/.exec(part))) {
      const k = m[1]!;
      reqs.push((l) => !(k in l));
    } else if ((m = /^([^\s=!(),]+)$/.exec(part))) {
      const k = m[1]!;
      reqs.push((l) => k in l);
    } else return null;
  }
  return reqs;
}

// ---------- API objects ----------

const T0 = "2026-01-01T00:00:00Z";

function podObject(p: SimPod) {
  const ready = p.ready ?? true;
  const cond = (type: string, ok: boolean) => ({ type, status: ok ? "True" : "False", lastProbeTime: null, lastTransitionTime: T0 });
  const containers = p.containers ?? [];
  return {
    metadata: { name: p.name, namespace: p.namespace ?? "kube-system", uid: `uid-${p.name}`, resourceVersion: "1", creationTimestamp: T0, labels: p.labels ?? {} },
    spec: { nodeName: p.node ?? undefined, containers: containers.map((c) => ({ name: c.name, image: c.image })) },
    status: {
      phase: "Running",
      conditions: [cond("Initialized", true), cond("Ready", ready), cond("ContainersReady", ready), cond("PodScheduled", true)],
      containerStatuses: containers.map((c) => ({
        name: c.name, image: c.image, imageID: `${c.image.split(/[:@]/)[0]}@sha256:${"0".repeat(64)}`,
        ready, started: true, restartCount: 0, state: { running: { startedAt: T0 } },
      })),
      startTime: T0,
    },
  };
}

function nodeObject(n: SimNode) {
  const addresses = [{ type: "Hostname", address: n.name }];
  if (n.internalIP) addresses.unshift({ type: "InternalIP", address: n.internalIP });
  return { metadata: { name: n.name, uid: `uid-${n.name}`, resourceVersion: "1", creationTimestamp: T0, labels: n.labels ?? {} }, status: { addresses } };
}

function deploymentObject(d: SimDeployment) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: d.name, namespace: d.namespace, uid: `uid-${d.name}`, resourceVersion: "1", creationTimestamp: T0, labels: d.labels ?? {}, annotations: d.annotations ?? {} },
    spec: { replicas: 1, selector: { matchLabels: { app: d.name } }, template: { metadata: { labels: { app: d.name } }, spec: { containers: d.containers ?? [] } } },
  };
}

function status(code: number, reason: string, message: string) {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

// ---------- the server ----------

export async function startKubeSim(config: KubeSimConfig = {}): Promise<KubeSim> {
  const ownDir = !config.dir;
  const dir = config.dir ?? mkdtempSync(join(tmpdir(), "etcd-vault-kubesim-"));
  const token = config.token ?? randomBytes(24).toString("base64url");
  config.token = token;
  const ca = generateCa(dir);
  const tls = serverCert(dir, ca);
  const execs: ExecRecord[] = [];
  const children = new Set<ChildProcess>();
  const sockets = new Set<WebSocket>();
  let idleWaiters: Array<() => void> = [];

  const pods = () => config.pods ?? [];
  const findPod = (ns: string, name: string) => pods().find((p) => (p.namespace ?? "kube-system") === ns && p.name === name);
  // Like an apiserver: a bearer token, or a client certificate our CA signed (the user is its CN).
  const authorized = (req: IncomingMessage) => req.headers.authorization === `Bearer ${token}` || certUser(req) === "sim-user";
  const forbidden = (path: string) => (config.forbid ?? []).some((p) => path.startsWith(p));

  const send = (res: ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };

  const list = (kind: string, items: unknown[]) => ({ kind, apiVersion: "v1", metadata: { resourceVersion: "1" }, items });

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "https://sim");
    const path = url.pathname;
    if (!authorized(req)) return send(res, 401, status(401, "Unauthorized", "Unauthorized"));
    if (forbidden(path)) return send(res, 403, status(403, "Forbidden", `forbidden: User "sim-user" cannot get path "${path}"`));
    if (req.method !== "GET") return send(res, 405, status(405, "MethodNotAllowed", "the simulator only serves GET"));
    const selector = url.searchParams.get("labelSelector") ?? "";
    const reqs = parseLabelSelector(selector);
    if (!reqs) return send(res, 400, status(400, "BadRequest", `unable to parse requirement: ${selector}`));
    const matches = (labels: Record<string, string> | undefined) => reqs.every((r) => r(labels ?? {}));

    let m: RegExpExecArray | null;
    if (path === "/version") {
      const v = config.gitVersion ?? "v1.30.4";
      const [major, minor] = v.replace(/^v/, "").split(".");
      return send(res, 200, { major, minor, gitVersion: v, gitCommit: "0".repeat(40), gitTreeState: "clean", buildDate: T0, goVersion: "go1.22.5", compiler: "gc", platform: "linux/amd64" });
    }
    if (path === "/api/v1/nodes") {
      return send(res, 200, list("NodeList", (config.nodes ?? []).filter((n) => matches(n.labels)).map(nodeObject)));
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(path))) {
      const ns = decodeURIComponent(m[1]!);
      return send(res, 200, list("PodList", pods().filter((p) => (p.namespace ?? "kube-system") === ns && matches(p.labels)).map(podObject)));
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path))) {
      const pod = findPod(decodeURIComponent(m[1]!), decodeURIComponent(m[2]!));
      return pod ? send(res, 200, { kind: "Pod", apiVersion: "v1", ...podObject(pod) }) : send(res, 404, status(404, "NotFound", `pods "${m[2]}" not found`));
    }
    if ((m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(path))) {
      return send(res, 400, status(400, "BadRequest", "Upgrade request required"));
    }
    if ((m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)$/.exec(path))) {
      const d = (config.deployments ?? []).find((x) => x.namespace === m![1] && x.name === m![2]);
      return d ? send(res, 200, deploymentObject(d)) : send(res, 404, status(404, "NotFound", `deployments.apps "${m[2]}" not found`));
    }
    if (path === "/_sim/execs") return send(res, 200, execs);
    return send(res, 404, status(404, "NotFound", "the server could not find the requested resource"));
  };

  const rejectUpgrade = (socket: Duplex, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    const reason = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found" }[code] ?? "Error";
    socket.end(`HTTP/1.1 ${code} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  };

  const supported = () => config.protocols ?? CHANNEL_PROTOCOLS;
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    // The apiserver takes the first protocol in the client's list that it supports.
    handleProtocols: (offered) => [...offered].find((p) => supported().includes(p)) ?? false,
  });

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? "/", "https://sim");
    if (!authorized(req)) return rejectUpgrade(socket, 401, status(401, "Unauthorized", "Unauthorized"));
    if (forbidden(url.pathname)) return rejectUpgrade(socket, 403, status(403, "Forbidden", `pods/exec is forbidden for User "sim-user"`));
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(url.pathname);
    if (!m) return rejectUpgrade(socket, 404, status(404, "NotFound", "the server could not find the requested resource"));
    const [ns, podName] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
    const pod = findPod(ns, podName);
    if (!pod) return rejectUpgrade(socket, 404, status(404, "NotFound", `pods "${podName}" not found`));
    const q = url.searchParams;
    const argv = q.getAll("command");
    const containers = pod.containers ?? [];
    const container = q.get("container") ?? (containers.length === 1 ? containers[0]!.name : "");
    if (!containers.some((c) => c.name === container)) {
      return rejectUpgrade(socket, 400, status(400, "BadRequest", `container ${container || "(none)"} is not valid for pod ${podName}`));
    }
    if (!argv.length) return rejectUpgrade(socket, 400, status(400, "BadRequest", "you must specify at least one command for the container"));
    const offered = String(req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
    if (!offered.some((p) => supported().includes(p))) {
      return rejectUpgrade(socket, 400, status(400, "BadRequest", "no supported WebSocket subprotocol offered"));
    }
    const flag = (k: string) => q.get(k) === "true" || q.get(k) === "1";
    wss.handleUpgrade(req, socket, head, (ws) => {
      const record: ExecRecord = {
        namespace: ns, pod: podName, container, argv,
        stdin: flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr"), tty: flag("tty"),
        protocol: ws.protocol, outcome: null, stdoutBytes: 0, pongs: 0,
      };
      execs.push(record);
      const rule = (pod.exec ?? []).find((r) => (r.argvIncludes ?? []).every((a) => argv.includes(a)));
      runExec(ws, record, rule);
    });
  };

  const settleIdle = () => {
    if (children.size === 0) {
      const w = idleWaiters;
      idleWaiters = [];
      for (const f of w) f();
    }
  };

  const runExec = (ws: WebSocket, record: ExecRecord, rule: SimExecRule | undefined) => {
    sockets.add(ws);
    const hwm = config.highWaterMark ?? 1024 * 1024;
    let queued = 0;
    let finished = false;
    let child: ChildProcess | null = null;
    const paused = new Set<NodeJS.ReadableStream>();

    const frame = (channel: number, data: Buffer | string) => {
      const body = typeof data === "string" ? Buffer.from(data) : data;
      const f = Buffer.allocUnsafe(body.length + 1);
      f[0] = channel;
      body.copy(f, 1);
      return f;
    };
    const resumeAll = () => {
      for (const s of paused) s.resume();
      paused.clear();
    };
    const write = (channel: number, data: Buffer | string, onSent?: () => void) => {
      if (ws.readyState !== ws.OPEN) return;
      const f = frame(channel, data);
      queued += f.length;
      const sent = () => {
        queued -= f.length;
        if (queued < hwm / 2) resumeAll();
        onSent?.();
      };
      const parts = channel === 1 ? Math.min(rule?.fragments ?? 1, f.length) : 1;
      if (parts <= 1) return ws.send(f, { binary: true }, sent);
      // One message in `parts` frames: the first binary with FIN clear, then continuations.
      const step = Math.ceil(f.length / parts);
      for (let at = 0; at < f.length; at += step) {
        const last = at + step >= f.length;
        ws.send(f.subarray(at, at + step), { binary: true, fin: last }, last ? sent : undefined);
      }
    };
    let pinger: NodeJS.Timeout | undefined;
    if (rule?.pingEveryMs) {
      let n = 0;
      const expected = new Set<string>();
      ws.on("pong", (data: Buffer) => {
        if (expected.delete(data.toString())) record.pongs++;
      });
      pinger = setInterval(() => {
        if (ws.readyState !== ws.OPEN) return;
        const payload = `ping-${++n}`;
        expected.add(payload);
        ws.ping(payload);
      }, rule.pingEveryMs);
    }
    const finish = (outcome: string, statusBody?: object) => {
      if (finished) return;
      finished = true;
      record.outcome = outcome;
      if (statusBody && ws.readyState === ws.OPEN) {
        write(3, JSON.stringify(statusBody));
        ws.close(1000);
      }
    };
    const killChild = () => {
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }
    };

    ws.on("close", () => {
      clearInterval(pinger);
      sockets.delete(ws);
      if (!finished) finish("client-closed");
      killChild();
    });
    ws.on("error", () => {
      /* a client that vanishes; 'close' follows */
    });

    // kubelet writes an empty frame on the lowest requested output channel once the stream is up.
    write(record.stdout ? 1 : record.stderr ? 2 : 3, Buffer.alloc(0));

    if (!rule) {
      return finish("no-rule", { metadata: {}, status: "Failure", reason: "InternalError", message: `kube-sim: no exec rule for [${record.argv.join(" ")}]` });
    }
    if (rule.hang) {
      record.outcome = "hang";
      return;
    }
    const argv = rule.exit
      ? ["bash", "-c", 'printf "%s" "$1"; printf "%s" "$2" >&2; exit "$3"', "sim-exit", rule.exit.stdout ?? "", rule.exit.stderr ?? "", String(rule.exit.code)]
      : rule.run;
    if (!argv?.length) return finish("no-rule", { metadata: {}, status: "Failure", reason: "InternalError", message: "kube-sim: rule has nothing to run" });

    const proc = spawn(argv[0]!, argv.slice(1), {
      detached: true, // own process group: killChild() takes the whole pipeline with it
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...rule.env, SIM_EXEC_ARGV: JSON.stringify(record.argv), SIM_POD: record.pod },
    });
    child = proc;
    children.add(proc);
    const cut = rule.cutAfterBytes;

    const pump = (stream: NodeJS.ReadableStream, channel: number) => {
      stream.on("data", (chunk: Buffer) => {
        if (finished) return;
        if (channel === 1 && cut !== undefined) {
          const room = cut - record.stdoutBytes;
          if (chunk.length >= room) {
            const last = chunk.subarray(0, Math.max(room, 0));
            record.stdoutBytes += last.length;
            finish("cut");
            killChild();
            // Wait until the last bytes reached the socket, then drop the connection: no Status, no close frame.
            const drop = () => ws.terminate();
            if (last.length) write(1, last, drop);
            else drop();
            return;
          }
        }
        if (channel === 1) record.stdoutBytes += chunk.length;
        write(channel, chunk);
        if (queued >= hwm) {
          stream.pause();
          paused.add(stream);
        }
      });
    };
    pump(proc.stdout!, 1);
    pump(proc.stderr!, 2);
    proc.on("error", (e) => {
      finish("spawn-error", { metadata: {}, status: "Failure", reason: "InternalError", message: `exec: ${e.message}` });
    });
    proc.on("close", (code, signal) => {
      children.delete(proc);
      settleIdle();
      const exit = code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0);
      if (exit === 0) finish("success", { metadata: {}, status: "Success" });
      else {
        finish(`exit ${exit}`, {
          metadata: {},
          status: "Failure",
          message: `command terminated with non-zero exit code: error executing command [${record.argv.join(" ")}], exit code ${exit}`,
          reason: "NonZeroExitCode",
          details: { causes: [{ reason: "ExitCode", message: String(exit) }] },
        });
      }
    });
  };

  // Clients may present a certificate (x509 client auth); one that does not verify is not refused
  // at the TLS layer but authenticates nobody, so the request gets a 401.
  const server: Server = createServer({ key: tls.key, cert: tls.cert, requestCert: true, rejectUnauthorized: false, ca: [ca.certPem] }, onRequest);
  server.on("upgrade", onUpgrade);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const url = `https://127.0.0.1:${port}`;
  const kubeconfig = makeKubeconfig({ server: url, caPem: ca.certPem, token });
  const kubeconfigPath = join(dir, "kubeconfig");
  writeFileSync(kubeconfigPath, kubeconfig, { mode: 0o600 });

  return {
    url,
    port,
    token,
    caPem: ca.certPem,
    kubeconfig,
    kubeconfigPath,
    dir,
    config,
    execs,
    kubeconfigWith: (o) => makeKubeconfig({ server: url, caPem: ca.certPem, token, ...o }),
    clientCertificate: (cn, signer) => clientCertificate(dir, signer ?? ca, cn),
    idle: () => (children.size === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r))),
    async close() {
      for (const c of children) {
        try {
          if (c.pid !== undefined) process.kill(-c.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
      for (const ws of sockets) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      wss.close();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
