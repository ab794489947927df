// The peer pipeline's last step, in its own process: upload a file to S3 the plain way —
// @aws-sdk/client-s3 multipart, 8 MiB parts read from the file, 2 parts in flight, with the client
// settings the service uses for the same target (path style, s3rver's credentials, no request
// checksums, connection/request timeouts, part bodies signed as UNSIGNED-PAYLOAD like
// src/vault/s3-store.ts does — no SigV4 SHA-256 of the bodies; `--signed-payload` for the SDK's
// default).
//
//   tsx bench/harness/peer-upload.ts --file F --endpoint URL --bucket B --key K [--part-size 8m] [--queue 2]
//
// Prints one JSON line: {bytes, ms, maxRssMiB}; ms runs from opening the file to the completed
// upload (the runtime's start-up is not counted, in the peer's favour).

import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, S3Client, UploadPartCommand, type CompletedPart } from "@aws-sdk/client-s3";
import { open } from "node:fs/promises";
import { parseArgs } from "node:util";
import { useUnsignedPayload } from "../../src/vault/s3-store.js";
import { S3RVER_CREDENTIALS, S3RVER_REGION } from "../../test/support/s3-server.js";
import { parseSize } from "./report.js";

const { values } = parseArgs({
  options: {
    file: { type: "string" },
    endpoint: { type: "string" },
    bucket: { type: "string" },
    key: { type: "string" },
    "part-size": { type: "string", default: "8m" },
    queue: { type: "string", default: "2" },
    "signed-payload": { type: "boolean", default: false },
  },
});
const { file, endpoint, bucket: Bucket, key: Key } = values;
if (!file || !endpoint || !Bucket || !Key) throw new Error("--file, --endpoint, --bucket and --key are required");
const partSize = parseSize(values["part-size"]!);
const queue = Number(values.queue);

const client = new S3Client({
  endpoint,
  region: S3RVER_REGION,
  forcePathStyle: true,
  credentials: { ...S3RVER_CREDENTIALS },
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
  requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
});
if (!values["signed-payload"]) useUnsignedPayload(client);

const t0 = performance.now();
const fh = await open(file, "r");
const size = (await fh.stat()).size;
const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: "application/octet-stream" }));
const parts: CompletedPart[] = [];
const inflight = new Set<Promise<void>>();
for (let offset = 0, PartNumber = 1; offset < size; offset += partSize, PartNumber++) {
  while (inflight.size >= queue) await Promise.race(inflight);
  const body = Buffer.allocUnsafe(Math.min(partSize, size - offset));
  await fh.read(body, 0, body.length, offset);
  const n = PartNumber;
  const p: Promise<void> = client
    .send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: n, Body: body, ContentLength: body.length }))
    .then((res) => void parts.push({ PartNumber: n, ETag: res.ETag }))
    .finally(() => inflight.delete(p));
  inflight.add(p);
}
await Promise.all(inflight);
parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
await fh.close();
const ms = performance.now() - t0;
client.destroy();
process.stdout.write(`${JSON.stringify({ bytes: size, ms, maxRssMiB: process.resourceUsage().maxRSS / 1024 })}\n`);
