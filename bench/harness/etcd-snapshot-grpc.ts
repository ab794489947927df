// A stand-in for Deckhouse's `etcdctl snapshot pipe` that does what the real one does: one gRPC
// call `etcdserverpb.Maintenance/Snapshot`, each SnapshotResponse's blob written to stdout as it
// arrives (no temp file, no base64). Debian's etcdctl 3.4 has no `snapshot pipe`, and etcd's JSON
// gateway (etcd-snapshot-stream.ts) costs more CPU in base64 than streaming saves.
//
//   node --import tsx bench/harness/etcd-snapshot-grpc.ts http://127.0.0.1:2379
//   (bench:capture compiles it with esbuild and runs it with plain node: no tsx start-up)
//
// Checked against etcd/etcdctl 3.4.23: for an etcd at rest its stdout is byte-identical to the
// file `etcdctl snapshot save` writes (cmp, 67 MiB and 258 MiB), and `etcdctl snapshot status`
// accepts it.
//
// etcd 3.4 serves gRPC on its plain-http client URL (HTTP/2 with prior knowledge, multiplexed
// with the HTTP/1 gateway), so node:http2 is all it takes. The response stream is the bbolt
// database in 32 KiB pieces, then one more message whose blob is the SHA-256 of everything before
// it: what `snapshot save` stores in its file and `snapshot pipe` prints, byte for byte.
//
// Wire facts used (etcd's api/etcdserverpb/rpc.proto and the gRPC-over-HTTP/2 spec):
//   SnapshotRequest {}                  — empty: the request body is one 5-byte frame header
//   SnapshotResponse { ResponseHeader header = 1; uint64 remaining_bytes = 2; bytes blob = 3; }
//   (etcd 3.6 adds `string version = 4`; unknown fields are skipped by wire type.)
//   Each gRPC message: 1 byte compressed flag, 4 bytes big-endian length, the protobuf bytes.
//   Status: `grpc-status` / `grpc-message` (percent-encoded) in the trailers, or in the headers
//   of a trailers-only response.
//
// The protobuf is decoded as a stream: blob bytes are written as slices of the HTTP/2 DATA
// chunks they arrived in, never reassembled into whole messages, so a 32 KiB message split over
// two 16 KiB frames costs no copy; the slices of one socket read leave in one writev at the end
// of that event-loop turn. Backpressure: when stdout's write() says its buffer is full, the
// HTTP/2 stream is paused until 'drain'; node:http2 then stops returning flow-control credit and
// etcd's send blocks (the window we grant is 1 MiB).
//
// Exit codes: 0 the whole snapshot was written; 1 etcd answered with a gRPC error (the message
// names grpc-status and grpc-message), or the response was not a well-formed snapshot stream;
// 2 no connection / the transport failed / etcd reset the stream; 3 stdout failed (the reader
// went away); 64 bad usage.

import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";

const EXIT_GRPC = 1;
const EXIT_TRANSPORT = 2;
const EXIT_STDOUT = 3;

const GRPC_CODES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
  "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];

/** Flow-control window we grant etcd, per stream and for the connection (nghttp2's default is 64 KiB). */
const WINDOW = 1024 * 1024;

class Fail extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

function die(code: number, message: string): never {
  process.stderr.write(`etcd-snapshot-grpc: ${message}\n`);
  process.exit(code);
}

const endpoint = process.argv[2];
if (!endpoint || process.argv.length > 3) die(64, "usage: etcd-snapshot-grpc.ts <etcd client URL, http://host:port>");
let url: URL;
try {
  url = new URL(endpoint);
} catch {
  die(64, `not a URL: ${endpoint}`);
}
if (url.protocol !== "http:") die(64, `only plain http:// endpoints are supported (got ${url.protocol})`);

// ---- streaming decoder: gRPC length-prefixed messages → SnapshotResponse fields → blob bytes ----

const enum S {
  FrameHeader, // collecting the 5-byte gRPC message prefix
  Tag, // varint: field number << 3 | wire type
  Varint, // a varint field's value
  Length, // varint: length of a length-delimited field
  Blob, // inside field 3: bytes go to stdout
  Skip, // inside a field we do not use (header, version, unknown)
}

class SnapshotDecoder {
  private state = S.FrameHeader;
  private frameHead = Buffer.alloc(5);
  private frameHeadHave = 0;
  /** Protobuf bytes left in the current gRPC message. */
  private msgLeft = 0;
  /** Bytes left in the current Blob/Skip field. */
  private fieldLeft = 0;
  private field = 0;
  private wire = 0;
  private varint = 0n;
  private varintShift = 0n;
  private varintBytes = 0;

  messages = 0;
  blobBytes = 0;
  /**
   * remaining_bytes of the last message (etcd: db bytes still to come). proto3 leaves a zero out
   * of the wire, so every message starts at 0 and the field, when present, overrides it.
   */
  lastRemaining: bigint | null = null;

  /** Decodes one chunk; appends the blob slices it holds to `out` (views into `chunk`, in order). */
  push(chunk: Buffer, out: Buffer[]): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case S.FrameHeader: {
          const take = Math.min(5 - this.frameHeadHave, n - i);
          chunk.copy(this.frameHead, this.frameHeadHave, i, i + take);
          this.frameHeadHave += take;
          i += take;
          if (this.frameHeadHave < 5) break;
          this.frameHeadHave = 0;
          if (this.frameHead[0] !== 0) throw new Fail(EXIT_GRPC, "etcd sent a compressed gRPC message; none was negotiated");
          this.msgLeft = this.frameHead.readUInt32BE(1);
          this.messages++;
          this.lastRemaining = 0n;
          this.state = this.msgLeft === 0 ? S.FrameHeader : S.Tag;
          this.startVarint();
          break;
        }
        case S.Tag:
        case S.Varint:
        case S.Length: {
          const b = chunk[i++]!;
          this.msgLeft--;
          if (++this.varintBytes > 10) throw new Fail(EXIT_GRPC, "malformed SnapshotResponse: varint longer than 10 bytes");
          this.varint |= BigInt(b & 0x7f) << this.varintShift;
          this.varintShift += 7n;
          if (b & 0x80) {
            if (this.msgLeft === 0) throw new Fail(EXIT_GRPC, "malformed SnapshotResponse: varint runs past the message");
            break;
          }
          this.varintDone();
          break;
        }
        case S.Blob:
        case S.Skip: {
          const take = Math.min(this.fieldLeft, n - i);
          if (this.state === S.Blob && take > 0) {
            out.push(chunk.subarray(i, i + take));
            this.blobBytes += take;
          }
          i += take;
          this.fieldLeft -= take;
          this.msgLeft -= take;
          if (this.fieldLeft === 0) this.fieldDone();
          break;
        }
      }
    }
  }

  /** True when the input ended on a message boundary. */
  get atBoundary(): boolean {
    return this.state === S.FrameHeader && this.frameHeadHave === 0;
  }

  private startVarint(): void {
    this.varint = 0n;
    this.varintShift = 0n;
    this.varintBytes = 0;
  }

  private varintDone(): void {
    const v = this.varint;
    this.startVarint();
    if (this.state === S.Tag) {
      this.field = Number(v >> 3n);
      this.wire = Number(v & 7n);
      if (this.field === 0) throw new Fail(EXIT_GRPC, "malformed SnapshotResponse: field number 0");
      switch (this.wire) {
        case 0: // varint
          if (this.msgLeft === 0) throw new Fail(EXIT_GRPC, "malformed SnapshotResponse: field without a value");
          this.state = S.Varint;
          return;
        case 1: // fixed64
        case 5: // fixed32
          this.fieldLeft = this.wire === 1 ? 8 : 4;
          if (this.fieldLeft > this.msgLeft) throw new Fail(EXIT_GRPC, "malformed SnapshotResponse: field runs past the message");
          this.state = S.Skip;
          return;
        case 2: // length-delimited
          if (this.msgLeft === 0) throw new Fail(EXIT_GRPC, "malformed SnapshotResponse: field without a length");
          this.state = S.Length;
          return;
        default:
          throw new Fail(EXIT_GRPC, `malformed SnapshotResponse: wire type ${this.wire} (field ${this.field})`);
      }
    }
    if (this.state === S.Varint) {
      if (this.field === 2) this.lastRemaining = v; // remaining_bytes
      this.fieldDone();
      return;
    }
    // S.Length
    if (v > BigInt(this.msgLeft)) throw new Fail(EXIT_GRPC, "malformed SnapshotResponse: field length runs past the message");
    this.fieldLeft = Number(v);
    this.state = this.field === 3 && this.wire === 2 ? S.Blob : S.Skip; // blob; header (1), version (4), unknown: skipped
    if (this.fieldLeft === 0) this.fieldDone();
  }

  private fieldDone(): void {
    this.state = this.msgLeft === 0 ? S.FrameHeader : S.Tag;
  }
}

// ---- the call ---------------------------------------------------------------------------------

function grpcStatus(h: IncomingHttpHeaders): { code: number; message: string } | null {
  const raw = h["grpc-status"];
  if (raw === undefined) return null;
  const code = Number(Array.isArray(raw) ? raw[0] : raw);
  let message = String(h["grpc-message"] ?? "");
  try {
    message = decodeURIComponent(message);
  } catch {
    /* leave it as sent */
  }
  return { code, message };
}

function describeStatus(s: { code: number; message: string }): string {
  return `etcd answered grpc-status ${s.code} (${GRPC_CODES[s.code] ?? "?"})${s.message ? `: ${s.message}` : ""}`;
}

function snapshot(): Promise<{ bytes: number; messages: number }> {
  const session: ClientHttp2Session = connect(url.origin, {
    settings: { initialWindowSize: WINDOW, enablePush: false },
  });
  session.on("connect", () => session.setLocalWindowSize(WINDOW));

  const req = session.request({
    [constants.HTTP2_HEADER_METHOD]: "POST",
    [constants.HTTP2_HEADER_PATH]: "/etcdserverpb.Maintenance/Snapshot",
    [constants.HTTP2_HEADER_SCHEME]: "http",
    [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
    te: "trailers",
    "user-agent": "etcd-vault-bench-snapshot-grpc",
  });
  // One empty SnapshotRequest: not compressed, length 0.
  req.end(Buffer.alloc(5));

  const decoder = new SnapshotDecoder();
  const stdout = process.stdout;
  let headers: IncomingHttpHeaders | null = null;
  let trailers: IncomingHttpHeaders | null = null;
  let transportError: Error | null = null;
  let settled = false;

  return new Promise((resolve, reject) => {
    const fail = (e: Fail) => {
      if (settled) return;
      settled = true;
      req.destroy();
      session.destroy();
      reject(e);
    };

    // Blob slices decoded from the DATA chunks of one socket read (node:http2 emits them one after
    // another in the same turn) go out together: one writev, at the end of that turn.
    let pending: Buffer[] = [];
    let flushQueued = false;
    let waitingForDrain = false;
    const flush = () => {
      flushQueued = false;
      if (settled || pending.length === 0) return;
      stdout.cork();
      let ok = true;
      for (const piece of pending) ok = stdout.write(piece);
      stdout.uncork();
      pending = [];
      if (!ok && !waitingForDrain) {
        // Backpressure: stop reading etcd's answer until stdout's reader catches up.
        waitingForDrain = true;
        req.pause();
        stdout.once("drain", () => {
          waitingForDrain = false;
          req.resume();
        });
      }
    };
    stdout.on("error", (e) => fail(new Fail(EXIT_STDOUT, `writing to stdout failed: ${e.message}`)));

    session.on("error", (e) => (transportError ??= e));
    req.on("error", (e) => (transportError ??= e));
    req.on("response", (h) => {
      headers = h;
      if (Number(h[":status"]) !== 200) fail(new Fail(EXIT_GRPC, `etcd answered HTTP ${h[":status"]} (content-type ${h["content-type"] ?? "none"})`));
    });
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (chunk: Buffer) => {
      try {
        decoder.push(chunk, pending);
      } catch (e) {
        return fail(e instanceof Fail ? e : new Fail(EXIT_GRPC, String(e)));
      }
      if (!flushQueued && pending.length) {
        flushQueued = true;
        setImmediate(flush);
      }
    });
    req.on("close", () => {
      flush();
      session.close();
      if (settled) return;
      // Trailers-only responses (an error before any message) carry the status in the headers.
      const status = grpcStatus((trailers ?? headers ?? {}) as IncomingHttpHeaders);
      if (status && status.code !== 0) return fail(new Fail(EXIT_GRPC, describeStatus(status)));
      if (transportError) return fail(new Fail(EXIT_TRANSPORT, `the HTTP/2 call to ${url.origin} failed: ${transportError.message}`));
      if (!headers) return fail(new Fail(EXIT_TRANSPORT, "the stream ended without response headers"));
      if (req.rstCode !== undefined && req.rstCode !== constants.NGHTTP2_NO_ERROR && !trailers) {
        return fail(new Fail(EXIT_TRANSPORT, `etcd reset the stream (HTTP/2 error code ${req.rstCode}) after ${decoder.blobBytes} snapshot bytes`));
      }
      if (!status) return fail(new Fail(EXIT_GRPC, `the response ended without grpc-status (cut short after ${decoder.blobBytes} snapshot bytes?)`));
      if (!decoder.atBoundary) return fail(new Fail(EXIT_GRPC, "the response ended inside a gRPC message"));
      if (decoder.messages === 0 || decoder.lastRemaining !== 0n) {
        return fail(new Fail(EXIT_GRPC, `the snapshot stream ended early (no message, or the last one said ${decoder.lastRemaining ?? 0} bytes remain)`));
      }
      settled = true;
      resolve({ bytes: decoder.blobBytes, messages: decoder.messages });
    });
  });
}

try {
  const r = await snapshot();
  // Let stdout flush everything before exiting 0.
  if (process.stdout.writableLength > 0) await new Promise((res) => process.stdout.once("drain", res));
  process.stderr.write(`etcd-snapshot-grpc: streamed ${r.bytes} bytes in ${r.messages} messages\n`);
} catch (e) {
  if (e instanceof Fail) die(e.exitCode, e.message);
  die(EXIT_TRANSPORT, e instanceof Error ? e.message : String(e));
}
