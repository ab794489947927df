// The WebSocket under a pod exec: a client for RFC 6455 without extensions, just what the
// Kubernetes channel protocol needs, handed to client-node's `WebSocketHandler` through the socket
// factory it takes (client-node builds the exec URL, applies the kubeconfig's TLS settings and
// credentials, and dispatches the channels; this class carries the bytes).
//
// Why not `ws`, which client-node uses by default: a snapshot is hundreds of MiB in ~32 KiB frames,
// and receiving it through Node's TLS Readable and ws's Receiver (a Buffer per TLS record, a list
// of them per frame, their concatenation, an event per frame) cost 0.46–0.74 CPU s per 256 MiB on
// our 2-core machine, a third of the service's CPU for a capture. Here the TLS socket is read with
// `onread` into one reused buffer and frames are parsed in place, each payload copied once into a
// buffer of its exact size: 0.14–0.19 s for the same bytes (docs/performance.md, capture).
//
// What it does, as the RFC asks of a client: masks what it sends; refuses masked server frames,
// reserved bits, unknown opcodes, oversized or fragmented control frames, continuation frames out of
// order, text that is not UTF-8 (close code 1002 / 1007 / 1009); answers pings; reassembles
// fragmented messages (bounded by `maxMessage`); echoes the server's close frame; checks the 101
// answer (Upgrade, Connection, Sec-WebSocket-Accept, a subprotocol we offered, no extension). A
// refused upgrade keeps its status and up to 4 KiB of its body (the Kubernetes Status) for the
// error message: `rejected` is emitted, then `error`.
//
// Flow control: `pause()` stops reading the socket; frames already read (at most one read buffer,
// 64 KiB) are still delivered, so the consumer's queue ends at most that far above its mark.
//
// Not here: HTTP proxies (exec-stream.ts keeps `ws` for a kubeconfig with `proxy-url`), stdin
// beyond `send`, per-message deflate.

import { EventEmitter } from "node:events";
import { createHash, randomBytes, randomFillSync } from "node:crypto";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";

const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEAD = 16 * 1024;
const MAX_REJECTION_BODY = 4096;
const REJECTION_BODY_WAIT_MS = 2000;
const CLOSE_WAIT_MS = 2000;
const READ_BUFFER = 64 * 1024;
const EMPTY = Buffer.alloc(0);

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** TLS settings and credentials as client-node's `applyToHTTPSOptions` leaves them. */
export interface ExecSocketOptions {
  ca?: ConnectionOptions["ca"];
  cert?: ConnectionOptions["cert"];
  key?: ConnectionOptions["key"];
  pfx?: ConnectionOptions["pfx"];
  passphrase?: string;
  rejectUnauthorized?: boolean;
  servername?: string;
  ciphers?: string;
  headers?: Record<string, string | number | readonly string[] | undefined>;
  /** `user:password` for basic auth. */
  auth?: string;
  /** Connect + TLS + upgrade must finish within this (default 30 s). */
  handshakeTimeout?: number;
  /** Largest message accepted, fragments included (default 8 MiB); larger closes with 1009. */
  maxMessage?: number;
}

export interface HandshakeRejection {
  status: number;
  /** Up to 4 KiB of the answer's body, de-chunked. */
  body: string;
}

/**
 * Errors this socket raises itself carry a `WS_ERR_*` code (network errors keep Node's codes),
 * except the handshake timeout: a plain Error whose message, as ws words it, failures.ts knows.
 */
export class ExecSocketError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ExecSocketError";
  }
}

export interface ExecSocketEvents {
  open: [];
  error: [Error];
  close: [code: number, reason: string];
  rejected: [HandshakeRejection];
}

export class ExecSocket extends EventEmitter<ExecSocketEvents> {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;

  /** What client-node's handler sets; called like the WHATWG WebSocket's. */
  onopen: (() => void) | null = null;
  onerror: ((err: Error) => void) | null = null;
  onmessage: ((ev: { data: Buffer | string }) => void) | null = null;

  readyState = CONNECTING;
  /** The subprotocol the server chose. */
  protocol = "";

  private readonly socket: Socket;
  private readonly offered: readonly string[];
  private readonly expectedAccept: string;
  private readonly maxMessage: number;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private head: Buffer | null = null;
  private rejection: { status: number; parts: Buffer[]; have: number; limit: number; chunked: boolean; timer?: NodeJS.Timeout } | null = null;
  private failed = false;
  private closeSent = false;
  private closeReceived = false;
  private closeCode = 1006;
  private closeReason = "";

  // Frame parser state: the header collects in `hdr` (2–10 bytes: server frames carry no mask).
  private readonly hdr = Buffer.alloc(10);
  private hdrHave = 0;
  private hdrNeed = 2;
  private opcode = 0;
  private fin = false;
  private payload: Buffer | null = null;
  private payHave = 0;
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private fragmentOpcode = 0;

  constructor(uri: string, protocols: readonly string[], opts: ExecSocketOptions = {}) {
    super();
    this.offered = protocols;
    this.maxMessage = opts.maxMessage ?? 8 * 1024 * 1024;
    const url = new URL(uri);
    const secure = url.protocol === "wss:";
    if (!secure && url.protocol !== "ws:") throw new ExecSocketError("WS_ERR_INVALID_URL", `not a WebSocket URL: ${url.protocol}`);
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(url.port) || (secure ? 443 : 80);
    const key = randomBytes(16).toString("base64");
    this.expectedAccept = createHash("sha1").update(key + ACCEPT_GUID).digest("base64");
    const request = buildRequest(url, key, protocols, opts);

    const onread = { buffer: Buffer.allocUnsafe(READ_BUFFER), callback: (n: number, buf: Buffer) => this.onBytes(buf, n) };
    if (secure) {
      // tls.connect honours `onread` (Node's docs list it there too); its typings only have it for net.
      const tlsOpts = { host, port, onread, ca: opts.ca, cert: opts.cert, key: opts.key, pfx: opts.pfx, passphrase: opts.passphrase, ciphers: opts.ciphers } as ConnectionOptions;
      if (opts.rejectUnauthorized !== undefined) tlsOpts.rejectUnauthorized = opts.rejectUnauthorized;
      // SNI and the certificate check use the kubeconfig's tls-server-name, else the host name; an IP
      // address is never sent as SNI (RFC 6066) and is checked against the certificate's IP SANs.
      const servername = opts.servername || (isIP(host) ? undefined : host);
      if (servername) tlsOpts.servername = servername;
      this.socket = tlsConnect(tlsOpts);
      this.socket.once("secureConnect", () => this.sendRequest(request));
    } else {
      this.socket = netConnect({ host, port, onread });
      this.socket.once("connect", () => this.sendRequest(request));
    }
    this.socket.on("error", (err) => this.fail(err));
    this.socket.on("close", () => this.onSocketClose());
    this.handshakeTimer = setTimeout(() => this.fail(new Error("Opening handshake has timed out")), opts.handshakeTimeout ?? 30_000);
  }

  /** Sends one binary (Buffer) or text (string) message. Ignored unless open. */
  send(data: Buffer | string): void {
    if (this.readyState !== OPEN) return;
    this.writeFrame(typeof data === "string" ? 1 : 2, typeof data === "string" ? Buffer.from(data) : data);
  }

  /** Stops reading from the server until `resume()`. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Starts the closing handshake (or abandons a connection still being set up). */
  close(code = 1000): void {
    if (this.readyState === CLOSED) return;
    if (this.readyState === CONNECTING) return this.fail(new ExecSocketError("WS_ERR_CLOSED_EARLY", "WebSocket was closed before the connection was established"));
    this.readyState = CLOSING;
    this.sendClose(code);
    if (this.closeReceived) this.socket.end();
    this.closeTimer ??= setTimeout(() => this.socket.destroy(), CLOSE_WAIT_MS);
  }

  /** Drops the connection at once. */
  terminate(): void {
    if (this.readyState === CLOSED) return;
    if (this.readyState === CONNECTING) return this.fail(new ExecSocketError("WS_ERR_CLOSED_EARLY", "WebSocket was closed before the connection was established"));
    this.readyState = CLOSING;
    this.socket.destroy();
  }

  private sendRequest(request: string): void {
    this.socket.setNoDelay(true);
    this.socket.write(request);
  }

  private onBytes(buf: Buffer, n: number): boolean {
    try {
      this.onRead(buf.subarray(0, n));
    } catch (e) {
      // A listener ('open', 'rejected') that throws must not escape into the socket's read path.
      const why = e instanceof Error ? e.message : String(e);
      this.protocolError(1011, `a listener failed: ${why.slice(0, 200)}`);
    }
    return true;
  }

  private onRead(bytes: Buffer): void {
    let chunk = bytes;
    if (this.rejection) return this.collectRejection(chunk);
    if (this.readyState === CONNECTING) {
      const rest = this.onHead(chunk);
      if (!rest) return;
      chunk = rest;
    }
    if (this.readyState === OPEN || this.readyState === CLOSING) this.parse(chunk);
  }

  /** Collects the answer's head; returns the bytes after it once the upgrade is accepted. */
  private onHead(chunk: Buffer): Buffer | null {
    // `chunk` lives in the reused read buffer: keep a copy.
    this.head = this.head ? Buffer.concat([this.head, chunk]) : Buffer.from(chunk);
    const end = this.head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (this.head.length > MAX_HEAD) this.fail(new ExecSocketError("WS_ERR_HANDSHAKE", "the server's answer to the upgrade has no end of headers"));
      return null;
    }
    const text = this.head.subarray(0, end).toString("latin1");
    const rest = this.head.subarray(end + 4);
    this.head = null;
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? "");
    if (!m) {
      this.fail(new ExecSocketError("WS_ERR_HANDSHAKE", "the server did not answer with HTTP/1.1"));
      return null;
    }
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
    }
    const status = Number(m[1]);
    if (status !== 101) {
      // The answer is here; only its body is awaited now, under its own timer.
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = undefined;
      const length = Number(headers.get("content-length"));
      this.rejection = {
        status,
        parts: [],
        have: 0,
        limit: Number.isFinite(length) && length >= 0 ? length : Infinity,
        chunked: /chunked/i.test(headers.get("transfer-encoding") ?? ""),
      };
      this.rejection.timer = setTimeout(() => this.finishRejection(), REJECTION_BODY_WAIT_MS);
      this.collectRejection(rest);
      return null;
    }
    const problem = this.checkUpgrade(headers);
    if (problem) {
      this.fail(new ExecSocketError("WS_ERR_HANDSHAKE", problem));
      return null;
    }
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.protocol = headers.get("sec-websocket-protocol") ?? "";
    this.readyState = OPEN;
    this.emit("open");
    this.onopen?.();
    return rest;
  }

  private checkUpgrade(h: Map<string, string>): string | null {
    if ((h.get("upgrade") ?? "").toLowerCase() !== "websocket") return "the server's 101 answer does not upgrade to websocket";
    if (!(h.get("connection") ?? "").toLowerCase().split(/\s*,\s*/).includes("upgrade")) return "the server's 101 answer lacks Connection: Upgrade";
    if (h.get("sec-websocket-accept") !== this.expectedAccept) return "the server's Sec-WebSocket-Accept does not match our key";
    const chosen = h.get("sec-websocket-protocol");
    if (this.offered.length && chosen === undefined) return "the server chose no subprotocol";
    if (chosen !== undefined && !this.offered.includes(chosen)) return `the server chose a subprotocol we did not offer (${chosen.slice(0, 60)})`;
    if (h.has("sec-websocket-extensions")) return "the server enabled an extension we did not offer";
    return null;
  }

  private collectRejection(chunk: Buffer): void {
    const r = this.rejection!;
    if (r.have < MAX_REJECTION_BODY && chunk.length) {
      const take = chunk.subarray(0, MAX_REJECTION_BODY - r.have);
      r.parts.push(Buffer.from(take));
    }
    r.have += chunk.length;
    if (r.have >= r.limit || r.have >= MAX_REJECTION_BODY) this.finishRejection();
  }

  private finishRejection(): void {
    const r = this.rejection;
    if (!r || this.failed) return;
    clearTimeout(r.timer);
    const raw = Buffer.concat(r.parts);
    this.emit("rejected", { status: r.status, body: (r.chunked ? dechunk(raw) : raw).toString("utf8") });
    this.fail(new ExecSocketError("WS_ERR_UNEXPECTED_RESPONSE", `Unexpected server response: ${r.status}`));
  }

  private parse(b: Buffer): void {
    const n = b.length;
    let i = 0;
    while (i < n && !this.socket.destroyed) {
      if (this.payload === null) {
        const take = Math.min(this.hdrNeed - this.hdrHave, n - i);
        b.copy(this.hdr, this.hdrHave, i, i + take);
        this.hdrHave += take;
        i += take;
        if (this.hdrHave < this.hdrNeed) return;
        if (!this.onHeader()) return;
        continue;
      }
      const take = Math.min(this.payload.length - this.payHave, n - i);
      b.copy(this.payload, this.payHave, i, i + take);
      this.payHave += take;
      i += take;
      if (this.payHave === this.payload.length && !this.onFrame()) return;
    }
  }

  /** Header bytes complete so far: asks for more, or starts the payload. False stops parsing. */
  private onHeader(): boolean {
    const h = this.hdr;
    if (this.hdrNeed === 2) {
      if (h[1]! & 0x80) return this.protocolError(1002, "the server sent a masked frame");
      const len7 = h[1]! & 0x7f;
      if ((h[0]! & 0x0f) >= 8 && len7 > 125) return this.protocolError(1002, "a control frame must be whole and at most 125 bytes");
      if (len7 === 126 || len7 === 127) {
        this.hdrNeed = len7 === 126 ? 4 : 10;
        return true;
      }
    }
    const b0 = h[0]!;
    const len7 = h[1]! & 0x7f;
    let len: number;
    if (len7 < 126) len = len7;
    else if (len7 === 126) len = h.readUInt16BE(2);
    else {
      if (h.readUInt32BE(2) !== 0) return this.protocolError(1009, "the server sent a frame larger than 4 GiB");
      len = h.readUInt32BE(6);
    }
    this.hdrHave = 0;
    this.hdrNeed = 2;
    if (b0 & 0x70) return this.protocolError(1002, "the server set reserved bits (no extension was negotiated)");
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode >= 8) {
      if (opcode > 10) return this.protocolError(1002, `unknown control opcode ${opcode}`);
      if (!fin || len > 125) return this.protocolError(1002, "a control frame must be whole and at most 125 bytes");
    } else if (opcode === 0) {
      if (!this.fragmentOpcode) return this.protocolError(1002, "a continuation frame without a message to continue");
    } else if (opcode === 1 || opcode === 2) {
      if (this.fragmentOpcode) return this.protocolError(1002, "a new message inside a fragmented one");
    } else {
      return this.protocolError(1002, `unknown opcode ${opcode}`);
    }
    if (opcode < 8 && this.fragmentBytes + len > this.maxMessage) {
      return this.protocolError(1009, `a message larger than ${this.maxMessage} bytes`);
    }
    this.opcode = opcode;
    this.fin = fin;
    this.payload = len ? Buffer.allocUnsafe(len) : EMPTY;
    this.payHave = 0;
    return len ? true : this.onFrame();
  }

  /** A whole frame is in `payload`. False stops parsing (closed or failed). */
  private onFrame(): boolean {
    const data = this.payload!;
    const opcode = this.opcode;
    this.payload = null;
    if (opcode === 8) return this.onCloseFrame(data);
    if (opcode === 9) {
      if (this.readyState === OPEN) this.writeFrame(10, data);
      return true;
    }
    if (opcode === 10) return true;
    if (!this.fin) {
      if (!this.fragmentOpcode) this.fragmentOpcode = opcode;
      // Empty fragments add nothing; kept out, they cannot grow the list past maxMessage's bound.
      if (data.length) this.fragments.push(data);
      this.fragmentBytes += data.length;
      return true;
    }
    let message = data;
    let type = opcode;
    if (this.fragmentOpcode) {
      if (data.length) this.fragments.push(data);
      message = Buffer.concat(this.fragments, this.fragmentBytes + data.length);
      type = this.fragmentOpcode;
      this.fragments = [];
      this.fragmentBytes = 0;
      this.fragmentOpcode = 0;
    }
    // After our close frame, data still in flight from the server is dropped (RFC 6455 §1.4).
    if (this.readyState !== OPEN) return true;
    return this.deliver(type, message);
  }

  private deliver(type: number, message: Buffer): boolean {
    let data: Buffer | string = message;
    if (type === 1) {
      try {
        data = utf8.decode(message);
      } catch {
        return this.protocolError(1007, "the server sent text that is not UTF-8");
      }
    }
    try {
      this.onmessage?.({ data });
    } catch (e) {
      // A handler that throws (client-node parses the Status frame) must not take the process down.
      const why = e instanceof Error ? e.message : String(e);
      return this.protocolError(1011, `a message could not be handled: ${why.slice(0, 200)}`);
    }
    // terminate() or a failure inside the handler: the rest of the read is not ours to parse.
    return !this.socket.destroyed && (this.readyState === OPEN || this.readyState === CLOSING);
  }

  private onCloseFrame(data: Buffer): boolean {
    if (data.length === 1) return this.protocolError(1002, "a close frame with a 1-byte body");
    const code = data.length >= 2 ? data.readUInt16BE(0) : 1005;
    if (data.length >= 2 && !validCloseCode(code)) return this.protocolError(1002, `a close frame with the invalid code ${code}`);
    let reason = "";
    try {
      reason = data.length > 2 ? utf8.decode(data.subarray(2)) : "";
    } catch {
      return this.protocolError(1007, "a close frame whose reason is not UTF-8");
    }
    this.closeReceived = true;
    this.closeCode = code;
    this.closeReason = reason;
    this.readyState = CLOSING;
    // Echo the status code (an empty close for none), then end our side; the server closes too.
    this.sendClose(code === 1005 ? undefined : code);
    this.socket.end();
    this.closeTimer ??= setTimeout(() => this.socket.destroy(), CLOSE_WAIT_MS);
    return false;
  }

  private protocolError(code: number, message: string): false {
    const errCode = code === 1009 ? "WS_ERR_TOO_BIG" : code === 1007 ? "WS_ERR_INVALID_UTF8" : code === 1011 ? "WS_ERR_HANDLER" : "WS_ERR_PROTOCOL";
    if (this.readyState === OPEN) this.sendClose(code);
    this.closeCode = code;
    this.fail(new ExecSocketError(errCode, message));
    return false;
  }

  private sendClose(code?: number): void {
    if (this.closeSent) return;
    this.closeSent = true;
    let body = EMPTY;
    if (code !== undefined) {
      body = Buffer.alloc(2);
      body.writeUInt16BE(code, 0);
    }
    this.writeFrame(8, body);
  }

  /** Writes one whole, masked frame (every client frame is masked). */
  private writeFrame(opcode: number, payload: Buffer): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    const len = payload.length;
    const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
    const frame = Buffer.allocUnsafe(2 + extra + 4 + len);
    frame[0] = 0x80 | opcode;
    if (extra === 0) frame[1] = 0x80 | len;
    else if (extra === 2) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(len, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
      frame.writeUInt32BE(len >>> 0, 6);
    }
    const maskAt = 2 + extra;
    randomFillSync(frame, maskAt, 4);
    for (let j = 0; j < len; j++) frame[maskAt + 4 + j] = payload[j]! ^ frame[maskAt + (j & 3)]!;
    this.socket.write(frame);
  }

  private fail(err: Error): void {
    if (this.failed || this.readyState === CLOSED) return;
    this.failed = true;
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    if (this.rejection) clearTimeout(this.rejection.timer);
    if (this.readyState === OPEN) this.readyState = CLOSING;
    // On the next tick, as ws does: a failure raised while the caller is still wiring its handlers
    // (terminate() right after construction) must still reach them. It is queued before destroy()
    // queues 'close', so 'error' always comes first.
    process.nextTick(() => {
      this.onerror?.(err);
      if (this.listenerCount("error")) this.emit("error", err);
    });
    this.socket.destroy();
  }

  private onSocketClose(): void {
    if (this.rejection && !this.failed) this.finishRejection();
    else if (this.readyState === CONNECTING && !this.failed) {
      this.fail(new ExecSocketError("WS_ERR_HANDSHAKE", "the server closed the connection during the upgrade"));
    }
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.closeTimer);
    this.readyState = CLOSED;
    this.emit("close", this.closeCode, this.closeReason);
  }
}

// ignoreBOM: a leading U+FEFF is part of the message, as ws delivers it.
/** Codes a close frame may carry (RFC 6455 §7.4: 1004–1006 and 1015 are never sent). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function buildRequest(url: URL, key: string, protocols: readonly string[], opts: ExecSocketOptions): string {
  const lines = [
    `GET ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    `Sec-WebSocket-Key: ${key}`,
  ];
  if (protocols.length) lines.push(`Sec-WebSocket-Protocol: ${protocols.join(", ")}`);
  const extra: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) extra.push([name, String(v)]);
  }
  // As node's http.request does for ws: basic auth only when no Authorization header is set (a
  // kubeconfig user may carry a token and a username/password; the token wins, the password stays).
  if (opts.auth && !extra.some(([name]) => name.toLowerCase() === "authorization")) {
    extra.push(["Authorization", `Basic ${Buffer.from(opts.auth).toString("base64")}`]);
  }
  for (const [name, value] of extra) {
    // A kubeconfig value with a line break would smuggle headers into the request.
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) {
      throw new ExecSocketError("WS_ERR_INVALID_HEADER", `the request header ${/[\r\n\0]/.test(name) ? "(unprintable)" : name} is not valid`);
    }
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** The body of a chunked answer, as far as it is complete (a Status fits in the first chunk). */
function dechunk(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < raw.length) {
    const eol = raw.indexOf("\r\n", at);
    if (eol < 0) break;
    const size = parseInt(raw.subarray(at, eol).toString("latin1"), 16);
    if (!Number.isFinite(size) || size <= 0) break;
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return parts.length ? Buffer.concat(parts) : raw;
}
