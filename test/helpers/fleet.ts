// A small fleet of real parts for end-to-end tests: a real etcd with Kubernetes-shaped keys, the
// Kubernetes API simulator exec'ing a real snapshot command, s3rver behind a recording proxy, an
// age identity from the age CLI, and the service itself.
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEtcd, type TestEtcd } from "../support/etcd.js";
import { etcdPod, masterNode, startKubeSim, type KubeSim, type SimExecRule } from "../support/kube-sim.js";
import { S3RVER_CREDENTIALS, S3RVER_REGION, startS3Server, type S3Server } from "../support/s3-server.js";
import { startRecordingProxy, type RecordingProxy } from "../support/recording-proxy.js";
import { ageKeygen } from "../support/restore-fixtures.js";
import type { TestService } from "./service.js";

export interface Fleet {
  dir: string;
  etcd: TestEtcd;
  sim: KubeSim;
  s3: S3Server;
  proxy: RecordingProxy;
  bucket: string;
  identityFile: string;
  recipient: string;
  s3client: S3Client;
  pipeRule(): SimExecRule;
  stop(): Promise<void>;
}

export async function startFleet(opts: { keys?: number; masters?: number } = {}): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), "etcd-vault-fleet-"));
  const etcd = await startEtcd({ name: "master-0" });
  await etcd.putObjects({ count: opts.keys ?? 200, resource: "configmaps" });
  const masters = Array.from({ length: opts.masters ?? 1 }, (_, i) => `master-${i}`);
  const pipeRule = (): SimExecRule => ({ argvIncludes: ["snapshot", "pipe"], run: etcd.snapshotPipeCommand() });
  const sim = await startKubeSim({
    nodes: masters.map((m, i) => masterNode(m, `127.0.0.${i + 1}`)),
    pods: masters.map((m) => etcdPod(m, { exec: [pipeRule()] })),
  });
  const s3 = await startS3Server();
  const bucket = await s3.createBucket();
  const proxy = await startRecordingProxy(s3.endpoint);
  const identityFile = join(dir, "key.txt");
  const recipient = ageKeygen(identityFile);
  const s3client = new S3Client({
    endpoint: s3.endpoint,
    region: S3RVER_REGION,
    forcePathStyle: true,
    credentials: S3RVER_CREDENTIALS,
    requestChecksumCalculation: "WHEN_REQUIRED",
  });
  return {
    dir,
    etcd,
    sim,
    s3,
    proxy,
    bucket,
    identityFile,
    recipient,
    s3client,
    pipeRule,
    async stop() {
      s3client.destroy();
      await sim.close();
      await proxy.close();
      await s3.stop();
      await etcd.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Registers the S3 target (through the proxy) and the simulator cluster. */
export async function registerFleet(s: TestService, f: Fleet, cluster = "prod-a", labels: Record<string, string> = { env: "prod" }) {
  const t = await s.call("POST", "/v1/targets", {
    name: "s3",
    url: `s3://${f.bucket}/backups?endpoint=${encodeURIComponent(f.proxy.endpoint)}&region=${S3RVER_REGION}&forcePathStyle=true&checksums=false`,
    credentials: S3RVER_CREDENTIALS,
  });
  if (t.status !== 201 && t.status !== 409) throw new Error(`target: ${t.status} ${t.text}`);
  const c = await s.call("POST", "/v1/clusters", { name: cluster, labels, kubeconfig: f.sim.kubeconfig, recipients: [f.recipient] });
  if (c.status !== 201) throw new Error(`cluster: ${c.status} ${c.text}`);
  return c.json;
}

export async function waitForRun(s: TestService, runId: string, until: (run: any) => boolean, timeoutMs = 45_000): Promise<any> {
  const t0 = Date.now();
  for (;;) {
    const r = await s.call("GET", `/v1/runs/${runId}`);
    if (until(r.json)) return r.json;
    if (Date.now() - t0 > timeoutMs) throw new Error(`run ${runId} did not settle: ${JSON.stringify(r.json)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

export const settled = (run: any) => run.state === "succeeded" || run.state === "failed" || run.state === "cancelled" || (run.state === "queued" && run.error);

export async function listKeys(f: Fleet): Promise<string[]> {
  const out = await f.s3client.send(new ListObjectsV2Command({ Bucket: f.bucket }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

export async function downloadObject(f: Fleet, key: string, file: string): Promise<void> {
  const out = await f.s3client.send(new GetObjectCommand({ Bucket: f.bucket, Key: key }));
  writeFileSync(file, await out.Body!.transformToByteArray());
}
