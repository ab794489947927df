// The backup resource (DESIGN "Resource shapes"). Also the content of the JSON sidecar stored next
// to every object and of `backup.json` in a restore bundle — no secrets in here, ever.

import type { ClusterFacts } from "./cluster-types.js";

export type BackupState = "uploading" | "available" | "failed" | "deleting" | "deleted" | "missing" | "corrupt";

export interface Backup {
  id: string; // ULID
  cluster: string;
  policy: string | null;
  runId: string;
  state: BackupState;
  createdAt: string; // RFC 3339 UTC
  target: string;
  objectKey: string;
  plaintext: { size: number; sha256: string }; // hex
  ciphertext: { size: number; sha256: string }; // hex
  etcd: { revision: number | null; keys: number | null; version: string | null };
  /** age recipients the object was encrypted to (public keys, not secrets). */
  recipients: string[];
  facts: ClusterFacts | null;
  hold: boolean;
  holdReason: string | null;
  lockedUntil: string | null;
}
