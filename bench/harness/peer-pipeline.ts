// The pipeline bench:capture compares against, as an operator would run it by hand: `etcdctl
// snapshot save` to a file, `age -r` to a file, then a multipart upload of that file
// (peer-upload.ts). Steps run one after another, each its own process under GNU time.

import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { timedCommand, type TimedRun } from "./timed-command.js";

export interface PeerRun {
  /** Sum of the steps' wall times (the upload's without its runtime start-up). */
  wallS: number;
  plainBytes: number;
  steps: Array<{ name: string; run: TimedRun; wallS: number }>;
}

export async function peerPipeline(o: {
  etcdUrl: string;
  s3Endpoint: string;
  bucket: string;
  recipient: string;
  /** Where the plaintext and ciphertext files go (removed afterwards). */
  dir: string;
  key: string;
}): Promise<PeerRun> {
  const plain = join(o.dir, "peer-snapshot.db");
  const enc = `${plain}.age`;
  try {
    const save = await timedCommand(["etcdctl", "--endpoints", o.etcdUrl, "snapshot", "save", plain]);
    const encrypt = await timedCommand(["age", "-r", o.recipient, "-o", enc, plain]);
    const upload = await timedCommand([
      process.execPath, "--import", "tsx", "bench/harness/peer-upload.ts",
      "--file", enc, "--endpoint", o.s3Endpoint, "--bucket", o.bucket, "--key", o.key,
    ]);
    const uploadS = (JSON.parse(upload.stdout) as { ms: number }).ms / 1000;
    const steps = [
      { name: "etcdctl snapshot save → file", run: save, wallS: save.wallS },
      { name: "age -r → file", run: encrypt, wallS: encrypt.wallS },
      { name: "multipart upload of the file", run: upload, wallS: uploadS },
    ];
    return { wallS: steps.reduce((a, s) => a + s.wallS, 0), plainBytes: statSync(plain).size, steps };
  } finally {
    rmSync(plain, { force: true });
    rmSync(enc, { force: true });
  }
}
