// The floor of any exec-based capture on this machine: the snapshot exec'd through the kube API
// simulator (same stand-in, same etcd) and uploaded to s3rver as it arrives — by the service's
// own exec client (KubeClusterAccess) and S3 store (same part size, same parts in flight, same
// client settings) — with none of the service's work: no trailer check, no SHA-256, no age, no
// catalog, no HTTP API. bench:capture runs it beside the service capture and the peer so that the
// report can say how much of the wall time is the parts every pipeline shares on these two cores
// (etcd, the simulator and its stand-in, s3rver and its CompleteMultipartUpload), and therefore
// what speed-up is possible at all here. It is not a product path: nothing it writes is a backup.
//
//   node --import tsx bench/harness/capture-floor.ts --kubeconfig FILE --endpoint URL --bucket B --key K
//
// Prints one JSON line: {wallS, firstByteMs, streamDoneS, bytes, cpuS} (cpuS: this process, user + system).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DEFAULT_ETCD_SETTINGS } from "../../src/core/cluster-types.js";
import { KubeClusterAccess } from "../../src/kube/cluster-access.js";
import { S3BlobStore } from "../../src/vault/s3-store.js";
import { S3RVER_CREDENTIALS, S3RVER_REGION } from "../../test/support/s3-server.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const { values } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    endpoint: { type: "string" },
    bucket: { type: "string" },
    key: { type: "string" },
  },
});
if (!values.kubeconfig || !values.endpoint || !values.bucket || !values.key) {
  throw new Error("--kubeconfig, --endpoint, --bucket and --key are required");
}

const access = new KubeClusterAccess();
const conn = { name: "floor", kubeconfig: readFileSync(values.kubeconfig, "utf8"), etcd: { ...DEFAULT_ETCD_SETTINGS } };
const store = new S3BlobStore({
  bucket: values.bucket,
  region: S3RVER_REGION,
  endpoint: values.endpoint,
  forcePathStyle: true,
  credentials: { ...S3RVER_CREDENTIALS },
  checksums: false,
});

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const [pod] = await access.snapshotCandidates(conn);
if (!pod) throw new Error("no Ready etcd pod");
const exec = await access.execSnapshot(conn, pod.name, { idleTimeoutMs: 60_000 });
let firstByteAt: number | null = null;
let lastByteAt = 0;
let bytes = 0;
async function* counted(): AsyncIterable<Uint8Array> {
  for await (const chunk of exec.stdout) {
    if (firstByteAt === null) firstByteAt = performance.now();
    bytes += chunk.length;
    yield chunk;
  }
  lastByteAt = performance.now();
}
await store.put(values.key, counted());
await exec.done;
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  `${JSON.stringify({
    wallS: wallMs / 1000,
    firstByteMs: firstByteAt === null ? null : Math.round(firstByteAt - t0),
    streamDoneS: (lastByteAt - t0) / 1000,
    bytes,
    cpuS: (cpu.user + cpu.system) / 1e6,
  })}\n`,
);
