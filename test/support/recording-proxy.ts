// An HTTP proxy in front of an S3 server (s3rver) that records every request and injects faults,
// so tests can prove what went over the wire: retries, aborts, object-lock headers, part counts.
//
//   const proxy = await startRecordingProxy(s3.endpoint);
//   proxy.inject({ when: (r) => r.operation === "UploadPart" && r.query.partNumber === "2",
//                  fault: { kind: "status", status: 500 }, times: 2 });
//   … point the S3 client at proxy.endpoint …
//   proxy.ops("UploadPart").length
//
// It also answers AbortMultipartUpload itself (204, after recording it): s3rver answers 405.
// Requests are forwarded byte for byte (Host header included), so SigV4 signatures still verify.

import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Transform } from "node:stream";

export type S3Operation =
  | "ListBuckets"
  | "CreateBucket"
  | "DeleteBucket"
  | "HeadBucket"
  | "ListObjects"
  | "ListObjectsV2"
  | "DeleteObjects"
  | "PutObject"
  | "CopyObject"
  | "GetObject"
  | "HeadObject"
  | "DeleteObject"
  | "CreateMultipartUpload"
  | "UploadPart"
  | "CompleteMultipartUpload"
  | "AbortMultipartUpload"
  | "Other";

export interface RecordedRequest {
  seq: number;
  method: string;
  /** Path without the query, e.g. `/bucket/a/b.db.age`. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  operation: S3Operation;
  /** Request body bytes the proxy received. */
  bytesReceived: number;
  /** First `captureBodyBytes` bytes of the body (when capturing). */
  body: Buffer | null;
  /** Status sent back; null while in progress or when the connection was dropped. */
  status: number | null;
  /** Which injected fault hit this request, if any. */
  fault: Fault["kind"] | null;
  startedAt: number;
  endedAt: number | null;
}

export type Fault =
  /** Answer without forwarding (after reading the whole body): a 500 by default, S3 XML error. */
  | { kind: "status"; status: number; code?: string; message?: string; headers?: Record<string, string>; body?: string }
  /** Destroy the client's connection after `afterBytes` bytes of the request body. */
  | { kind: "drop"; afterBytes: number }
  /** Forward, pacing request and response bodies to `bytesPerSecond`. */
  | { kind: "throttle"; bytesPerSecond: number };

export interface FaultRule {
  when: (r: RecordedRequest) => boolean;
  fault: Fault;
  /** How many requests it hits (default: all). */
  times?: number;
}

export interface InjectedFault {
  readonly hits: number;
  remove(): void;
}

export interface RecordingProxy {
  /** `http://127.0.0.1:PORT`: use as the S3 endpoint. */
  endpoint: string;
  port: number;
  requests: RecordedRequest[];
  inject(rule: FaultRule): InjectedFault;
  clearFaults(): void;
  clearRecords(): void;
  /** Recorded requests of one S3 operation, in arrival order. */
  ops(operation: S3Operation): RecordedRequest[];
  /** Most requests matching `pred` that were in progress at the same moment. */
  maxConcurrent(pred?: (r: RecordedRequest) => boolean): number;
  close(): Promise<void>;
}

const DEFAULT_CODES: Record<number, string> = {
  400: "BadRequest",
  403: "AccessDenied",
  404: "NoSuchKey",
  429: "TooManyRequests",
  500: "InternalError",
  503: "SlowDown",
};

/** Classifies a path-style S3 request. */
export function s3Operation(method: string, path: string, query: Record<string, string>, headers: IncomingHttpHeaders): S3Operation {
  const segs = path.split("/").filter(Boolean);
  const hasKey = segs.length > 1;
  const q = (name: string) => name in query;
  switch (method) {
    case "GET":
      if (segs.length === 0) return "ListBuckets";
      if (!hasKey) return query["list-type"] === "2" ? "ListObjectsV2" : "ListObjects";
      return "GetObject";
    case "HEAD":
      return hasKey ? "HeadObject" : "HeadBucket";
    case "PUT":
      if (!hasKey) return "CreateBucket";
      if (q("partNumber") && q("uploadId")) return "UploadPart";
      return headers["x-amz-copy-source"] ? "CopyObject" : "PutObject";
    case "POST":
      if (q("uploads")) return "CreateMultipartUpload";
      if (q("uploadId")) return "CompleteMultipartUpload";
      if (q("delete")) return "DeleteObjects";
      return "Other";
    case "DELETE":
      if (q("uploadId")) return "AbortMultipartUpload";
      return hasKey ? "DeleteObject" : "DeleteBucket";
    default:
      return "Other";
  }
}

export async function startRecordingProxy(
  upstream: string,
  options: { answerAborts?: boolean; captureBodyBytes?: number } = {},
): Promise<RecordingProxy> {
  const up = new URL(upstream);
  const answerAborts = options.answerAborts ?? true;
  const captureBodyBytes = options.captureBodyBytes ?? 64 * 1024;
  const agent = new http.Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];
  const rules: Array<FaultRule & { hits: number; removed: boolean }> = [];
  const sockets = new Set<Socket>();
  let seq = 0;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const query = Object.fromEntries(url.searchParams);
    const rec: RecordedRequest = {
      seq: ++seq,
      method: req.method ?? "GET",
      path: safeDecode(url.pathname),
      query,
      headers: req.headers,
      operation: s3Operation(req.method ?? "GET", url.pathname, query, req.headers),
      bytesReceived: 0,
      body: null,
      status: null,
      fault: null,
      startedAt: performance.now(),
      endedAt: null,
    };
    requests.push(rec);
    const chunks: Buffer[] = [];
    let captured = 0;
    req.on("data", (d: Buffer) => {
      rec.bytesReceived += d.length;
      if (captured < captureBodyBytes) {
        const keep = d.subarray(0, captureBodyBytes - captured);
        chunks.push(Buffer.from(keep));
        captured += keep.length;
        rec.body = Buffer.concat(chunks);
      }
    });
    res.on("close", () => {
      rec.endedAt = performance.now();
    });

    const rule = rules.find((r) => !r.removed && (r.times === undefined || r.hits < r.times) && r.when(rec));
    if (rule) {
      rule.hits++;
      rec.fault = rule.fault.kind;
    }

    if (rule?.fault.kind === "status") {
      const f = rule.fault;
      drainThen(req, () => reply(res, rec, f));
      return;
    }
    if (rule?.fault.kind === "drop") {
      const after = rule.fault.afterBytes;
      const cut = () => {
        // Read this far, then vanish: the client sees ECONNRESET/EPIPE mid-body.
        req.socket.destroy();
      };
      if (after <= 0) return cut();
      req.on("data", () => {
        if (rec.bytesReceived >= after) cut();
      });
      req.on("end", cut);
      req.resume();
      return;
    }
    if (answerAborts && rec.operation === "AbortMultipartUpload") {
      drainThen(req, () => {
        rec.status = 204;
        res.writeHead(204).end();
      });
      return;
    }
    const rate = rule?.fault.kind === "throttle" ? rule.fault.bytesPerSecond : null;
    forward(req, res, rec, rate);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, rate: number | null) => {
    const upReq = http.request(
      {
        host: up.hostname,
        port: up.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (upRes) => {
        rec.status = upRes.statusCode ?? 502;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        (rate ? upRes.pipe(throttle(rate)) : upRes).pipe(res);
      },
    );
    upReq.on("error", (e) => {
      if (!res.headersSent) {
        rec.status = 502;
        res.writeHead(502, { "content-type": "text/plain" }).end(`proxy: upstream failed: ${e.message}`);
      } else {
        res.destroy();
      }
    });
    // The client went away mid-request: do not leave a half-sent request upstream.
    req.on("aborted", () => upReq.destroy());
    res.on("close", () => {
      if (!res.writableFinished) upReq.destroy();
    });
    (rate ? req.pipe(throttle(rate)) : req).pipe(upReq);
  };

  const server = http.createServer(handle);
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    inject(rule) {
      const entry = { ...rule, hits: 0, removed: false };
      rules.push(entry);
      return {
        get hits() {
          return entry.hits;
        },
        remove() {
          entry.removed = true;
        },
      };
    },
    clearFaults() {
      for (const r of rules) r.removed = true;
      rules.length = 0;
    },
    clearRecords() {
      requests.length = 0;
    },
    ops(operation) {
      return requests.filter((r) => r.operation === operation);
    },
    maxConcurrent(pred = () => true) {
      const events: Array<[number, number]> = [];
      for (const r of requests.filter(pred)) {
        events.push([r.startedAt, 1], [r.endedAt ?? Number.POSITIVE_INFINITY, -1]);
      }
      // Ends before starts at the same instant: back-to-back is not overlap.
      events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      let cur = 0;
      let max = 0;
      for (const [, d] of events) {
        cur += d;
        max = Math.max(max, cur);
      }
      return max;
    },
    async close() {
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function drainThen(req: IncomingMessage, then: () => void): void {
  if (req.readableEnded) return then();
  req.on("end", then);
  req.resume();
}

function reply(res: ServerResponse, rec: RecordedRequest, f: Extract<Fault, { kind: "status" }>): void {
  rec.status = f.status;
  const code = f.code ?? DEFAULT_CODES[f.status] ?? "InjectedFault";
  const body =
    f.body ??
    (rec.method === "HEAD"
      ? ""
      : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${f.message ?? "injected by the recording proxy"}</Message><RequestId>proxy-${rec.seq}</RequestId></Error>`);
  const headers: Record<string, string> = {
    "content-type": "application/xml",
    "x-amz-request-id": `proxy-${rec.seq}`,
    ...(rec.method === "HEAD" ? {} : { "content-length": String(Buffer.byteLength(body)) }),
    ...f.headers,
  };
  res.writeHead(f.status, headers);
  res.end(rec.method === "HEAD" ? undefined : body);
}

/** Paces a byte stream to `bytesPerSecond` (slices of 1/20 s). */
function throttle(bytesPerSecond: number): Transform {
  const slice = Math.max(1, Math.floor(bytesPerSecond / 20));
  let start = 0;
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      if (!start) start = performance.now();
      const push = async () => {
        for (let off = 0; off < chunk.length; off += slice) {
          const piece = chunk.subarray(off, off + slice);
          sent += piece.length;
          const wait = start + (sent / bytesPerSecond) * 1000 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          this.push(piece);
        }
      };
      push().then(() => callback(), callback);
    },
  });
}
