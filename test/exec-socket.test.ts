// ExecSocket (src/kube/exec-socket.ts) byte by byte against a scripted server on loopback: the
// server side here is written from RFC 6455 (it reads the upgrade request, computes the accept
// key, writes frames by hand and unmasks what the client sends), so each rule the client must
// keep can be broken on purpose. The streaming path over TLS with client-node on top is covered
// by test/kube-access.test.ts against the kube simulator.

import { createHash } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ExecSocket, ExecSocketError, type HandshakeRejection } from "../src/kube/exec-socket.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

interface Peer {
  socket: Socket;
  request: string;
  headers: Map<string, string>;
  accept: string;
  /** Frames the client sent, unmasked; each checked to be masked. */
  frames: Array<{ opcode: number; fin: boolean; payload: Buffer }>;
  nextFrame(): Promise<{ opcode: number; fin: boolean; payload: Buffer }>;
}

/** Server frame (unmasked unless `mask`), with a chosen length encoding. */
function frame(opcode: number, payload: Buffer | string, o: { fin?: boolean; mask?: boolean; rsv?: number } = {}): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const len = body.length;
  const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | (o.rsv ?? 0) | opcode];
  const maskBit = o.mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, len >> 8, len & 255);
  else head.push(maskBit | 127, 0, 0, 0, 0, (len >>> 24) & 255, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);
  if (!o.mask) return Buffer.concat([Buffer.from(head), body]);
  const key = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from(head), key, Buffer.from(body.map((b, i) => b ^ key[i & 3]!))]);
}

const accepted = (peer: Peer, extra = "") =>
  `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${peer.accept}\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n${extra}\r\n`;

let server: Server | null = null;
const clients: ExecSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  if (server) {
    const s = server;
    server = null;
    await new Promise((r) => s.close(r));
  }
});

/** A server that hands each parsed upgrade request to `script`. */
async function serve(script: (peer: Peer) => void | Promise<void>): Promise<string> {
  server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    let peer: Peer | null = null;
    const waiting: Array<(f: Peer["frames"][number]) => void> = [];
    socket.on("error", () => {});
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!peer) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const request = buf.subarray(0, end).toString("latin1");
        buf = buf.subarray(end + 4);
        const headers = new Map<string, string>();
        for (const line of request.split("\r\n").slice(1)) {
          const i = line.indexOf(":");
          headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
        }
        const accept = createHash("sha1").update(`${headers.get("sec-websocket-key")}${GUID}`).digest("base64");
        const p: Peer = {
          socket, request, headers, accept, frames: [],
          nextFrame: () => new Promise((r) => (p.frames.length ? r(p.frames.shift()!) : waiting.push(r))),
        };
        peer = p;
        void script(p);
      }
      // Client frames: always masked (checked), lengths up to 64 KiB are enough here.
      while (buf.length >= 2) {
        const masked = (buf[1]! & 0x80) !== 0;
        let len = buf[1]! & 0x7f;
        let at = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          at = 4;
        }
        if (!masked) throw new Error("client frame not masked");
        if (buf.length < at + 4 + len) return;
        const key = buf.subarray(at, at + 4);
        const payload = Buffer.from(buf.subarray(at + 4, at + 4 + len).map((b, i) => b ^ key[i & 3]!));
        const f = { opcode: buf[0]! & 0x0f, fin: (buf[0]! & 0x80) !== 0, payload };
        buf = buf.subarray(at + 4 + len);
        const w = waiting.shift();
        if (w) w(f);
        else peer!.frames.push(f);
      }
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return `ws://127.0.0.1:${(server!.address() as { port: number }).port}`;
}

interface Observed {
  sock: ExecSocket;
  messages: Array<Buffer | string>;
  errors: Error[];
  rejected: HandshakeRejection[];
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
}

function open(url: string, o: ConstructorParameters<typeof ExecSocket>[2] = {}): Observed {
  const sock = new ExecSocket(`${url}/api/v1/namespaces/kube-system/pods/etcd-m1/exec?command=etcdctl&stdout=true`, PROTOCOLS, o);
  clients.push(sock);
  const seen: Observed = {
    sock, messages: [], errors: [], rejected: [],
    opened: new Promise((r) => (sock.onopen = r)),
    closed: new Promise((r) => sock.on("close", (code, reason) => r({ code, reason }))),
  };
  sock.onmessage = ({ data }) => void seen.messages.push(data);
  sock.on("error", (e) => seen.errors.push(e));
  sock.on("rejected", (r) => seen.rejected.push(r));
  return seen;
}

describe("ExecSocket: the opening handshake", () => {
  it("sends a proper upgrade request with the kubeconfig's headers, and opens on a valid 101", async () => {
    let seenPeer: Peer | null = null;
    const url = await serve((p) => {
      seenPeer = p;
      p.socket.write(accepted(p));
    });
    const c = open(url, { headers: { Authorization: "Bearer sekret", "Impersonate-User": "ops" } });
    await c.opened;
    const p = seenPeer!;
    expect(p.request.split("\r\n")[0]).toBe("GET /api/v1/namespaces/kube-system/pods/etcd-m1/exec?command=etcdctl&stdout=true HTTP/1.1");
    expect(p.headers.get("host")).toBe(url.slice("ws://".length));
    expect(p.headers.get("upgrade")).toBe("websocket");
    expect(p.headers.get("connection")).toBe("Upgrade");
    expect(p.headers.get("sec-websocket-version")).toBe("13");
    expect(Buffer.from(p.headers.get("sec-websocket-key")!, "base64")).toHaveLength(16);
    expect(p.headers.get("sec-websocket-protocol")).toBe("v5.channel.k8s.io, v4.channel.k8s.io");
    expect(p.headers.get("authorization")).toBe("Bearer sekret");
    expect(p.headers.get("impersonate-user")).toBe("ops");
    expect(c.sock.protocol).toBe("v5.channel.k8s.io");
    expect(c.sock.readyState).toBe(ExecSocket.OPEN);
    expect(c.errors).toEqual([]);
  });

  it("sends basic auth from `auth`, and refuses a header value that would split the request", async () => {
    let auth = "";
    const url = await serve((p) => {
      auth = p.headers.get("authorization") ?? "";
      p.socket.write(accepted(p));
    });
    await open(url, { auth: "admin:pa:ss" }).opened;
    expect(auth).toBe(`Basic ${Buffer.from("admin:pa:ss").toString("base64")}`);
    expect(() => new ExecSocket(`${url}/x`, PROTOCOLS, { headers: { Authorization: "Bearer a\r\nX-Evil: 1" } })).toThrow(
      expect.objectContaining({ code: "WS_ERR_INVALID_HEADER", message: "the request header Authorization is not valid" }),
    );
  });

  const refusals: Array<[string, (p: Peer) => string, RegExp]> = [
    ["a wrong Sec-WebSocket-Accept", (p) => accepted({ ...p, accept: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" }), /Sec-WebSocket-Accept does not match/],
    ["no Upgrade header", (p) => accepted(p).replace("Upgrade: websocket\r\n", ""), /does not upgrade to websocket/],
    ["no subprotocol", (p) => accepted(p).replace("Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n", ""), /chose no subprotocol/],
    ["a subprotocol not offered", (p) => accepted(p).replace("v5.channel.k8s.io", "base64.channel.k8s.io"), /did not offer \(base64\.channel\.k8s\.io\)/],
    ["an extension", (p) => accepted(p, "Sec-WebSocket-Extensions: permessage-deflate\r\n"), /extension we did not offer/],
  ];
  for (const [what, answer, message] of refusals) {
    it(`refuses a 101 with ${what}`, async () => {
      const url = await serve((p) => void p.socket.write(answer(p)));
      const c = open(url);
      let opened = false;
      void c.opened.then(() => (opened = true));
      const closed = await c.closed;
      expect(opened).toBe(false);
      expect(c.errors).toHaveLength(1);
      expect(c.errors[0]).toMatchObject({ code: "WS_ERR_HANDSHAKE", message: expect.stringMatching(message) });
      expect(closed.code).toBe(1006);
    });
  }

  it("keeps a refused upgrade's status and Status body (Content-Length or chunked), then fails", async () => {
    const status = JSON.stringify({ kind: "Status", status: "Failure", message: 'pods "etcd-x" is forbidden', code: 403 });
    const url = await serve((p) => {
      if (p.request.includes("chunked")) {
        const half = status.length >> 1;
        p.socket.write(`HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n${half.toString(16)}\r\n${status.slice(0, half)}\r\n`);
        setTimeout(() => p.socket.end(`${(status.length - half).toString(16)}\r\n${status.slice(half)}\r\n0\r\n\r\n`), 20);
      } else {
        p.socket.write(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${status.length}\r\n\r\n${status}`);
      }
    });
    for (const path of ["/plain", "/chunked"]) {
      const sock = new ExecSocket(`${url}${path}`, PROTOCOLS);
      clients.push(sock);
      const rejected: HandshakeRejection[] = [];
      const errors: Error[] = [];
      sock.on("rejected", (r) => rejected.push(r));
      const failed = new Promise<Error>((r) => (sock.onerror = r));
      sock.on("error", (e) => errors.push(e));
      const err = await failed;
      expect(err).toBeInstanceOf(ExecSocketError);
      expect(err.message).toBe("Unexpected server response: 403");
      expect(rejected).toEqual([{ status: 403, body: status }]);
      expect(errors).toEqual([err]);
    }
  });

  it("times out a server that accepts the connection and never answers", async () => {
    const url = await serve(() => {});
    const t0 = Date.now();
    const c = open(url, { handshakeTimeout: 300 });
    await c.closed;
    expect(c.errors.map((e) => e.message)).toEqual(["Opening handshake has timed out"]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("reports a refused connection with Node's code, and terminate() while connecting as an error", async () => {
    const url = await serve(() => {});
    const port = Number(new URL(url).port);
    await new Promise((r) => server!.close(r));
    server = null;
    const c = open(`ws://127.0.0.1:${port}`);
    await c.closed;
    expect(c.errors).toHaveLength(1);
    expect((c.errors[0] as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");

    const url2 = await serve(() => {});
    const d = open(url2);
    d.sock.terminate();
    await d.closed;
    expect(d.errors.map((e) => (e as ExecSocketError).code)).toEqual(["WS_ERR_CLOSED_EARLY"]);
  });
});

describe("ExecSocket: the opening handshake, edge cases", () => {
  it("terminate() right after construction reaches an onerror set afterwards (a connect never hangs)", async () => {
    const url = await serve(() => {});
    const sock = new ExecSocket(`${url}/x`, PROTOCOLS);
    clients.push(sock);
    sock.terminate();
    const err = await new Promise<Error>((r) => (sock.onerror = r));
    expect(err).toMatchObject({ code: "WS_ERR_CLOSED_EARLY" });
  });

  it("adds basic auth only when no Authorization header is set (the token wins, the password stays home)", async () => {
    const seen: string[] = [];
    const url = await serve((p) => {
      seen.push(p.request);
      p.socket.write(accepted(p));
    });
    await open(url, { headers: { authorization: "Bearer t0ken" }, auth: "admin:secret" }).opened;
    expect(seen[0]).toMatch(/\r\nauthorization: Bearer t0ken(\r\n|$)/);
    expect(seen[0]).not.toMatch(/Basic/);
  });

  it("reads a status line strictly: `HTTP/1.1 1010` is not a 101", async () => {
    const url = await serve((p) => void p.socket.write(accepted(p).replace("HTTP/1.1 101 Switching Protocols", "HTTP/1.1 1010")));
    const c = open(url);
    await c.closed;
    expect(c.errors[0]).toMatchObject({ code: "WS_ERR_HANDSHAKE", message: "the server did not answer with HTTP/1.1" });
  });

  it("waits for a refused upgrade's body in a later read, past a short handshake timeout", async () => {
    const status = JSON.stringify({ kind: "Status", status: "Failure", message: "Unauthorized", code: 401 });
    const url = await serve((p) => {
      p.socket.write(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${status.length}\r\n\r\n`);
      setTimeout(() => p.socket.write(status), 400);
    });
    const c = open(url, { handshakeTimeout: 200 });
    await c.closed;
    expect(c.rejected).toEqual([{ status: 401, body: status }]);
    expect(c.errors.map((e) => e.message)).toEqual(["Unexpected server response: 401"]);
  });
});

describe("ExecSocket: frames", () => {
  it("parses headers that arrive a byte at a time (7-bit, 16-bit and 64-bit lengths)", async () => {
    const sizes = [0, 5, 125, 126, 65535, 65536];
    const url = await serve(async (p) => {
      p.socket.setNoDelay(true);
      p.socket.write(accepted(p));
      for (const [i, n] of sizes.entries()) {
        const f = frame(2, Buffer.alloc(n, i + 1));
        const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
        for (let b = 0; b < head; b++) {
          p.socket.write(f.subarray(b, b + 1));
          await new Promise((r) => setTimeout(r, 2));
        }
        p.socket.write(f.subarray(head));
      }
    });
    const c = open(url);
    await expect.poll(() => c.messages.length).toBe(sizes.length);
    c.messages.forEach((m, i) => expect(Buffer.compare(m as Buffer, Buffer.alloc(sizes[i]!, i + 1))).toBe(0));
  });

  it("keeps a text message's byte-order mark", async () => {
    const url = await serve((p) => void p.socket.write(Buffer.concat([Buffer.from(accepted(p)), frame(1, "\ufeffhello")])));
    const c = open(url);
    await expect.poll(() => c.messages.length).toBe(1);
    expect(c.messages[0]).toBe("\ufeffhello");
  });

  it("close() inside onmessage drops the frames behind it; terminate() there stops parsing at once", async () => {
    // After terminate() even a close frame in the same read is not parsed: the code stays 1006.
    const burst = (p: Peer) =>
      Buffer.concat([Buffer.from(accepted(p)), frame(2, "\x01one"), frame(2, "\x01two"), frame(2, "\x01three"), ...(p.request.includes("/terminate") ? [frame(8, Buffer.from([0x0f, 0xa0]))] : [])]);
    const url = await serve(async (p) => {
      p.socket.write(burst(p));
      if (!p.request.includes("/terminate")) {
        const f = await p.nextFrame();
        expect(f.opcode).toBe(8);
        p.socket.end(frame(8, Buffer.from([0x03, 0xe8])));
      }
    });
    for (const how of ["close", "terminate"] as const) {
      const sock = new ExecSocket(`${url}/${how}`, PROTOCOLS);
      clients.push(sock);
      const got: Array<Buffer | string> = [];
      const closed = new Promise<number>((r) => sock.on("close", (code) => r(code)));
      sock.onmessage = ({ data }) => {
        got.push(data);
        sock[how]();
      };
      expect(await closed).toBe(how === "close" ? 1000 : 1006);
      expect(got).toEqual([Buffer.from("\x01one")]);
    }
  });

  it("delivers binary messages of every length encoding intact, however the bytes are split", async () => {
    const sizes = [0, 1, 125, 126, 200, 65535, 65536, 200_000];
    const payloads = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    const url = await serve(async (p) => {
      const all = Buffer.concat([Buffer.from(accepted(p)), ...payloads.map((b) => frame(2, b))]);
      // Odd write sizes, so headers and payloads straddle reads.
      p.socket.setNoDelay(true);
      for (let at = 0, step = 1; at < all.length; at += step, step = (step * 7 + 3) % 9000 || 1) {
        p.socket.write(all.subarray(at, at + step));
        if (at < 4096) await new Promise((r) => setImmediate(r));
      }
    });
    const c = open(url);
    await expect.poll(() => c.messages.length).toBe(sizes.length);
    expect(c.messages.map((m) => (m as Buffer).length)).toEqual(sizes);
    c.messages.forEach((m, i) => expect(Buffer.compare(m as Buffer, payloads[i]!)).toBe(0));
  });

  it("reassembles a fragmented message, answers a ping between its fragments with the same payload", async () => {
    let pong: Promise<Peer["frames"][number]> | null = null;
    const url = await serve((p) => {
      p.socket.write(
        Buffer.concat([Buffer.from(accepted(p)), frame(2, "\x01abc", { fin: false }), frame(9, "are you there"), frame(0, "def", { fin: false }), frame(0, "ghi"), frame(1, "tëxt")]),
      );
      pong = p.nextFrame();
    });
    const c = open(url);
    await expect.poll(() => c.messages.length).toBe(2);
    expect(c.messages[0]).toEqual(Buffer.from("\x01abcdefghi"));
    expect(c.messages[1]).toBe("tëxt");
    expect(await pong!).toEqual({ opcode: 10, fin: true, payload: Buffer.from("are you there") });
  });

  it("echoes the server's close frame and reports its code", async () => {
    let echo: Promise<Peer["frames"][number]> | null = null;
    const url = await serve((p) => {
      const body = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from("done")]);
      p.socket.write(Buffer.concat([Buffer.from(accepted(p)), frame(2, "\x01last"), frame(8, body), frame(2, "\x01after close")]));
      echo = p.nextFrame().then((f) => {
        p.socket.end();
        return f;
      });
    });
    const c = open(url);
    expect(await c.closed).toEqual({ code: 1000, reason: "done" });
    expect(c.messages).toEqual([Buffer.from("\x01last")]);
    expect(await echo!).toEqual({ opcode: 8, fin: true, payload: Buffer.from([0x03, 0xe8]) });
    expect(c.errors).toEqual([]);
  });

  it("close() sends a close frame and ends when the server answers; a dropped connection is 1006", async () => {
    const url = await serve(async (p) => {
      p.socket.write(accepted(p));
      const f = await p.nextFrame();
      expect(f).toEqual({ opcode: 8, fin: true, payload: Buffer.from([0x03, 0xe8]) });
      p.socket.end(frame(8, Buffer.from([0x03, 0xe8])));
    });
    const c = open(url);
    await c.opened;
    c.sock.close();
    expect((await c.closed).code).toBe(1000);

    const url2 = await serve((p) => {
      p.socket.write(Buffer.concat([Buffer.from(accepted(p)), frame(2, "\x01partial")]));
      setTimeout(() => p.socket.destroy(), 20);
    });
    const d = open(url2);
    expect((await d.closed).code).toBe(1006);
    expect(d.messages).toEqual([Buffer.from("\x01partial")]);
  });

  const violations: Array<[string, Buffer, number, string, RegExp]> = [
    ["a masked server frame", frame(2, "\x01x", { mask: true }), 1002, "WS_ERR_PROTOCOL", /masked frame/],
    ["reserved bits", frame(2, "\x01x", { rsv: 0x40 }), 1002, "WS_ERR_PROTOCOL", /reserved bits/],
    ["an unknown opcode", frame(3, "x"), 1002, "WS_ERR_PROTOCOL", /unknown opcode 3/],
    ["a fragmented ping", frame(9, "x", { fin: false }), 1002, "WS_ERR_PROTOCOL", /control frame must be whole/],
    ["a continuation without a message", frame(0, "x"), 1002, "WS_ERR_PROTOCOL", /continuation frame without/],
    ["a new message inside a fragmented one", Buffer.concat([frame(2, "a", { fin: false }), frame(2, "b")]), 1002, "WS_ERR_PROTOCOL", /new message inside/],
    ["text that is not UTF-8", frame(1, Buffer.from([0xc3, 0x28])), 1007, "WS_ERR_INVALID_UTF8", /not UTF-8/],
    ["a message over maxMessage", Buffer.concat([frame(2, Buffer.alloc(700), { fin: false }), frame(0, Buffer.alloc(400))]), 1009, "WS_ERR_TOO_BIG", /larger than 1024 bytes/],
    ["a 64-bit length over 4 GiB", Buffer.from([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]), 1009, "WS_ERR_TOO_BIG", /larger than 4 GiB/],
    ["a ping with a 16-bit length", Buffer.from([0x89, 126, 0, 126, ...Buffer.alloc(126)]), 1002, "WS_ERR_PROTOCOL", /control frame must be whole/],
    ["a close frame with a 1-byte body", frame(8, Buffer.from([3])), 1002, "WS_ERR_PROTOCOL", /1-byte body/],
    ["a close frame with code 1005 on the wire", frame(8, Buffer.from([0x03, 0xed])), 1002, "WS_ERR_PROTOCOL", /invalid code 1005/],
    ["a close reason that is not UTF-8", frame(8, Buffer.from([0x03, 0xe8, 0xc3, 0x28])), 1007, "WS_ERR_INVALID_UTF8", /reason is not UTF-8/],
  ];
  for (const [what, bytes, code, errCode, message] of violations) {
    it(`fails on ${what}: close frame ${code} sent, error, close`, async () => {
      let sent: Promise<Peer["frames"][number]> | null = null;
      const url = await serve((p) => {
        p.socket.write(Buffer.concat([Buffer.from(accepted(p)), frame(2, "\x01before"), bytes, frame(2, "\x01never")]));
        sent = p.nextFrame();
      });
      const c = open(url, { maxMessage: 1024 });
      const closed = await c.closed;
      expect(c.messages).toEqual([Buffer.from("\x01before")]);
      expect(c.errors).toHaveLength(1);
      expect(c.errors[0]).toMatchObject({ code: errCode, message: expect.stringMatching(message) });
      expect(closed.code).toBe(code);
      const f = await sent!;
      expect(f.opcode).toBe(8);
      expect(f.payload.readUInt16BE(0)).toBe(code);
    });
  }

  it("a handler that throws fails the socket (1011) instead of the process", async () => {
    const url = await serve((p) => void p.socket.write(Buffer.concat([Buffer.from(accepted(p)), frame(2, "\x03{not json")])));
    const c = open(url);
    c.sock.onmessage = () => {
      throw new SyntaxError("Unexpected token n in JSON");
    };
    const closed = await c.closed;
    expect(closed.code).toBe(1011);
    expect(c.errors[0]).toMatchObject({ code: "WS_ERR_HANDLER", message: "a message could not be handled: Unexpected token n in JSON" });
  });

  it("pause() stops reading the socket until resume(): the server's writes back up", async () => {
    const chunk = frame(2, Buffer.alloc(60_000, 7));
    let peerSocket: Socket | null = null;
    const url = await serve((p) => {
      peerSocket = p.socket;
      p.socket.write(accepted(p));
    });
    const c = open(url);
    await c.opened;
    c.sock.pause();
    // 12 MB: more than the kernel's socket buffers on both sides hold.
    const written = 200;
    for (let i = 0; i < written; i++) peerSocket!.write(chunk);
    await new Promise((r) => setTimeout(r, 300));
    const whilePaused = c.messages.length;
    expect(whilePaused).toBeLessThan(written / 2);
    expect(peerSocket!.writableLength).toBeGreaterThan(written * chunk.length * 0.5);
    c.sock.resume();
    await expect.poll(() => c.messages.length, { timeout: 5000 }).toBe(written);
    await expect.poll(() => peerSocket!.writableLength).toBe(0);
  });
});
