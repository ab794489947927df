// Pod exec as a stream with backpressure, on client-node 1.4's `Exec`: client-node builds the
// request, applies the kubeconfig and dispatches the channels; the WebSocket under it is ours
// (exec-socket.ts, through the socket factory client-node takes), because receiving a snapshot
// through `ws` cost a third of the service's CPU. With a kubeconfig `proxy-url` it is `ws` again,
// over client-node's proxy agent. What the library does not do for us (checked against 1.4.0):
// - Backpressure: frames are written into the Writable we pass as they arrive. Our sink pushes
//   them into a ChunkQueue (the `stdout` we hand out) and, when that is full, pauses the socket
//   (ExecSocket stops reading the TLS socket; `ws.pause()` also keeps ws's receiver-drain logic
//   from resuming it); the consumer draining the queue resumes it. A slow consumer therefore
//   slows the remote command instead of queueing the snapshot in memory.
// - Exit status: only through the status callback (channel 3); a Failure is not thrown. We turn
//   it into `exec_failed` with the exit code and the tail of stderr.
// - A connection that drops without a Status (1006) is reported by nothing: we listen for `close`
//   on the socket and treat "closed without status" as a failure.
// - A rejected handshake rejects without the Status body: the socket factory keeps the status
//   code and the Status message (ExecSocket's `rejected`, ws's `unexpected-response`).
// - Idle timeout: the timer runs only while we wait on the server (not while paused by our
//   consumer) and also bounds the handshake.
// `client.close()` after a Status and the 255 close-stream frames are left to the library.

import { Readable, Writable } from "node:stream";
import type { IncomingMessage } from "node:http";
import { Exec, type V1Status } from "@kubernetes/client-node";
// Not re-exported from the package index in 1.4; needed to pass our own socket factory and streams.
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";
import WebSocket from "ws";
import { VaultError } from "../core/errors.js";
import type { SnapshotExec } from "../core/ports.js";
import type { LoadedCluster } from "./connection.js";
import { ChunkQueue } from "./chunk-queue.js";
import { ExecSocket, ExecSocketError, type ExecSocketOptions } from "./exec-socket.js";
import { errorCode, scrub, statusMessage, upstreamFailure } from "./failures.js";

export interface ExecRequest {
  namespace: string;
  pod: string;
  container: string;
  argv: readonly string[];
  /** No stdout/stderr byte (while we are not paused) for this long fails with `timeout`. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
  /** stdout bytes buffered for the consumer before the socket is paused (default 1 MiB). */
  highWaterMark?: number;
}

const STDERR_TAIL = 2048;
const noop = () => {};

interface Rejection {
  status?: number;
  message?: string;
}

/**
 * Starts the exec. Rejects when the exec cannot start (handshake refused, unreachable, timeout
 * while connecting); otherwise resolves with the running exec, whose `done` and `stdout` report
 * how it ended.
 */
export async function openExec(cluster: LoadedCluster, req: ExecRequest): Promise<SnapshotExec> {
  const { kc, host, secrets } = cluster;
  const label = `pod ${req.pod}`;
  if (req.signal?.aborted) throw new VaultError("cancelled", `${label}: cancelled`);

  let ws: { pause(): void; resume(): void; terminate(): void } | null = null;
  let opened = false;
  let settled = false;
  let failure: VaultError | null = null;
  let paused = false;
  let stdoutBytes = 0;
  let stderrTail = Buffer.alloc(0);
  let socketError: string | undefined;
  let idle: NodeJS.Timeout | undefined;
  const rejection: Rejection = {};

  let resolveDone!: () => void;
  let rejectDone!: (e: VaultError) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(noop); // callers may only read stdout; the failure reaches them there

  const stderrText = () => scrub(new TextDecoder().decode(stderrTail).trim(), secrets);
  const withStderr = (head: string) => {
    const tail = stderrText();
    return scrub(`${label}: ${head}${tail ? `: ${tail}` : ""}`, secrets);
  };

  const out = new ChunkQueue(req.highWaterMark ?? 1024 * 1024, {
    onDrain() {
      if (!paused) return;
      paused = false;
      ws?.resume();
      touch(); // waiting on our consumer is not the server being idle
      arm();
    },
    onStop() {
      settle(new VaultError("cancelled", `${label}: stdout consumer stopped`));
    },
  });

  // One timer, re-armed lazily from the last activity: bytes arrive in thousands of frames a second.
  let lastActivity = Date.now();
  function touch(): void {
    lastActivity = Date.now();
  }
  function arm(): void {
    if (idle || settled || paused) return;
    idle = setTimeout(checkIdle, Math.max(1, lastActivity + req.idleTimeoutMs - Date.now()));
  }
  function disarm(): void {
    clearTimeout(idle);
    idle = undefined;
  }
  function checkIdle(): void {
    idle = undefined;
    if (settled || paused) return;
    if (Date.now() - lastActivity < req.idleTimeoutMs) return arm();
    const secs = Math.round(req.idleTimeoutMs / 1000);
    settle(new VaultError("timeout", opened ? withStderr(`no output for ${secs}s`) : `${label}: no answer from ${host} within ${secs}s`));
  }

  function settle(err: VaultError | null): void {
    if (settled) return;
    settled = true;
    disarm();
    req.signal?.removeEventListener("abort", onAbort);
    if (err) {
      failure = err;
      rejectDone(err);
      out.fail(err);
      ws?.terminate();
    } else {
      resolveDone();
      out.end();
    }
  }

  // A function, not `ws?.terminate()` inline: after the await TypeScript narrows `ws` to null, not
  // seeing the factory's assignment.
  function dropSocket(): void {
    ws?.terminate();
  }

  function onAbort(): void {
    settle(new VaultError("cancelled", `${label}: cancelled`));
  }

  const stdout = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!settled) {
        stdoutBytes += chunk.length;
        touch();
        if (!out.push(chunk)) {
          paused = true;
          ws?.pause();
          disarm();
        }
      }
      cb();
    },
  });
  const stderr = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const all = Buffer.concat([stderrTail, chunk]);
      stderrTail = all.length > STDERR_TAIL ? Buffer.from(all.subarray(all.length - STDERR_TAIL)) : all;
      touch();
      cb();
    },
  });
  // client-node ends these on Status and on close-stream frames; a stray write after that must not crash.
  stdout.on("error", noop);
  stderr.on("error", noop);

  const onStatus = (status: V1Status) => {
    if (status.status === "Success") return settle(null);
    const exit = status.details?.causes?.find((c) => c.reason === "ExitCode")?.message;
    const head = exit !== undefined ? `exit code ${exit}` : (status.message ?? status.reason ?? "exec failed");
    settle(new VaultError("exec_failed", withStderr(head)));
  };

  // Our own socket (exec-socket.ts) carries the stream; `ws` only when the kubeconfig names an
  // HTTP/SOCKS proxy, which client-node reaches through the agent it puts into `opts`.
  const viaProxy = !!kc.getCurrentCluster()?.proxyUrl;
  const onOpen = () => {
    opened = true;
    touch();
  };
  const onClose = (code: number) => {
    if (!opened || settled) return;
    const why = `connection closed without status after ${stdoutBytes} bytes (close code ${code}${socketError ? `, ${socketError}` : ""})`;
    settle(new VaultError("exec_failed", withStderr(why)));
  };
  const socketFactory = (uri: string, protocols: string[], opts: WebSocket.ClientOptions) => {
    // Cancelled or timed out while client-node was still applying the kubeconfig (an exec
    // credential plugin can take a second): no socket at all. client-node calls this inside its
    // connect promise, so the throw rejects that promise and the catch below rethrows `failure`.
    if (failure) throw failure;
    if (viaProxy) return wsSocket(uri, protocols, opts);
    const sock = new ExecSocket(uri, protocols, { ...(opts as ExecSocketOptions), handshakeTimeout: req.idleTimeoutMs });
    ws = sock;
    sock.on("open", onOpen);
    sock.on("error", (e) => {
      socketError = e instanceof ExecSocketError ? e.message : errorCode(e);
    });
    sock.on("close", onClose);
    sock.on("rejected", (r) => {
      rejection.status = r.status;
      rejection.message = statusMessage(r.body);
    });
    // client-node's handler only uses the WHATWG-style members, which ExecSocket has.
    return sock as unknown as WebSocket;
  };
  const wsSocket = (uri: string, protocols: string[], opts: WebSocket.ClientOptions) => {
    const sock = new WebSocket(uri, protocols, { ...opts, handshakeTimeout: req.idleTimeoutMs, perMessageDeflate: false });
    ws = sock;
    sock.on("open", onOpen);
    sock.on("error", (e) => {
      socketError = errorCode(e);
    });
    sock.on("close", onClose);
    // With a listener here ws leaves the failed handshake to us: keep status + Status message, then abort.
    sock.on("unexpected-response", (_req: unknown, res: IncomingMessage) => {
      rejection.status = res.statusCode;
      let body = "";
      const finish = () => {
        rejection.message = statusMessage(body);
        sock.terminate();
      };
      const timer = setTimeout(finish, 2000);
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        if (body.length < 4096) body += d;
      });
      res.on("end", () => {
        clearTimeout(timer);
        finish();
      });
      res.on("error", () => {
        clearTimeout(timer);
        finish();
      });
    });
    return sock;
  };

  const handler = new WebSocketHandler(kc, socketFactory, { stdin: Readable.from([]), stdout, stderr });
  req.signal?.addEventListener("abort", onAbort, { once: true });
  arm();
  try {
    await new Exec(kc, handler).exec(req.namespace, req.pod, req.container, [...req.argv], stdout, stderr, null, false, onStatus);
  } catch (e) {
    if (failure) throw failure;
    const err = handshakeFailure(host, label, e, rejection, secrets);
    settle(err);
    throw err;
  }
  // Settled while the upgrade completed (the socket opened after the abort): never hand it out.
  if (failure) {
    dropSocket();
    throw failure;
  }

  return {
    pod: req.pod,
    stdout: out,
    done,
    abort: (reason?: string) => settle(new VaultError("cancelled", `${label}: ${reason ?? "aborted"}`)),
  };
}

function handshakeFailure(host: string, label: string, err: unknown, r: Rejection, secrets: readonly string[]): VaultError {
  const detail = r.message ? `: ${r.message.slice(0, 300)}` : "";
  if (r.status === 404) return new VaultError("exec_failed", scrub(`${label}: not found (404)${detail}`, secrets));
  if (r.status === 400) return new VaultError("exec_failed", scrub(`${label}: exec rejected (400)${detail}`, secrets));
  if (r.status !== undefined) return upstreamFailure(host, { code: r.status, body: { message: r.message } }, secrets);
  return upstreamFailure(host, err, secrets);
}
