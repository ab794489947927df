// A streaming stand-in for Deckhouse's `etcdctl snapshot pipe`: writes a snapshot of an etcd to
// stdout while etcd sends it (no temp file), so snapshot creation overlaps the rest of a capture
// as it does on a real Deckhouse node. Debian's etcdctl 3.4 has no `snapshot pipe`; its `snapshot
// save` writes a file first (test/support/etcd.ts snapshotPipeCommand saves, then cats it).
//
//   node --import tsx bench/harness/etcd-snapshot-stream.ts http://127.0.0.1:2379
//
// etcd's gRPC gateway answers POST /v3/maintenance/snapshot with newline-delimited JSON messages
// whose `result.blob` is a base64 piece of the same stream the gRPC Snapshot call returns: the
// bbolt database followed by its SHA-256 (what `snapshot save` stores and `snapshot pipe` prints).

import { once } from "node:events";

const endpoint = process.argv[2];
if (!endpoint) throw new Error("usage: etcd-snapshot-stream.ts <etcd client URL>");

const res = await fetch(`${endpoint}/v3/maintenance/snapshot`, { method: "POST", body: "{}" });
if (!res.ok || !res.body) throw new Error(`snapshot request failed: HTTP ${res.status}`);

const decoder = new TextDecoder();
let pending = "";
let bytes = 0;

async function emit(line: string): Promise<void> {
  if (!line.trim()) return;
  const msg = JSON.parse(line) as { result?: { blob?: string }; error?: { message?: string } };
  if (msg.error) throw new Error(`etcd: ${msg.error.message ?? JSON.stringify(msg.error)}`);
  const blob = msg.result?.blob;
  if (!blob) return;
  const piece = Buffer.from(blob, "base64");
  bytes += piece.length;
  // Backpressure: a slow reader of our stdout slows our reading of etcd's answer.
  if (!process.stdout.write(piece)) await once(process.stdout, "drain");
}

for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
  pending += decoder.decode(chunk, { stream: true });
  let nl: number;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    await emit(line);
  }
}
await emit(pending + decoder.decode());
process.stderr.write(`streamed ${bytes} bytes\n`);
