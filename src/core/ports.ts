// Ports: the interfaces through which runtime-neutral code reaches the outside world. Each
// runtime (Node, Workers, tests) supplies implementations; nothing here imports node:* or an SDK.

import type { ClusterFacts, EtcdSettings, EtcdPodFact } from "./cluster-types.js";

/** A stored object's metadata. */
export interface BlobInfo {
  key: string;
  size: number;
}

export interface PutOptions {
  contentType?: string;
  /** Object-lock retention: the store sets it on upload when the target supports it. */
  lockUntil?: Date | null;
  lockMode?: "GOVERNANCE" | "COMPLIANCE" | null;
  signal?: AbortSignal;
}

export interface GetResult {
  body: ReadableStream<Uint8Array>;
  /** Bytes in `body` (the range length when a range was asked for). */
  size: number;
  /** Size of the whole object. */
  totalSize: number;
}

/**
 * Where encrypted snapshots and their JSON sidecars live. `put` consumes the source with
 * backpressure (never buffers a whole object), aborts cleanly on error (no partial object under
 * `key`), and resolves with the size stored after checking it.
 */
export interface BlobStore {
  readonly kind: "file" | "s3" | "r2";
  /**
   * Part-by-part uploads driven from outside one process (remote runners upload through the
   * control plane, whose requests may each land on a different Worker isolate).
   */
  readonly multipart?: MultipartOps;
  /**
   * Removes what an interrupted put() of `key` may have left (a crash mid-upload): temp files,
   * unfinished multipart uploads. Best effort; never touches a completed object.
   */
  discardPartial?(key: string): Promise<void>;
  put(key: string, body: AsyncIterable<Uint8Array>, options?: PutOptions): Promise<BlobInfo>;
  /** Range is inclusive of `start`, `end` (like HTTP); omitted `end` means to the end. */
  get(key: string, range?: { start: number; end?: number }): Promise<GetResult>;
  head(key: string): Promise<BlobInfo | null>;
  delete(key: string): Promise<void>;
  list(prefix: string): AsyncIterable<BlobInfo>;
}

export interface MultipartOps {
  create(key: string, options?: PutOptions): Promise<string>;
  /** Parts are numbered from 1; all but the last are ≥ 5 MiB (the S3 rule). */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<{ etag: string }>;
  complete(key: string, uploadId: string, parts: Array<{ partNumber: number; etag: string }>): Promise<BlobInfo>;
  abort(key: string, uploadId: string): Promise<void>;
}

/** A cluster as the kube adapter needs it: decrypted kubeconfig plus etcd settings. */
export interface ClusterConnection {
  name: string;
  kubeconfig: string;
  etcd: EtcdSettings;
  /** kubeconfig context to use; null/undefined = current-context. */
  context?: string | null;
}

export interface SnapshotExec {
  pod: string;
  /** stdout of the exec'd command, with backpressure reaching the socket. */
  stdout: AsyncIterable<Uint8Array>;
  /**
   * Resolves when the remote command exits 0 (Status Success); rejects with a VaultError
   * (`exec_failed` with the tail of stderr, or `timeout`) otherwise. The stdout iterable also
   * throws that error if it ends abnormally.
   */
  done: Promise<void>;
  /** Stop the exec (closes the socket). */
  abort(reason?: string): void;
}

/** How routes and the capture pipeline reach clusters (Node: in-process kube adapter; Workers: runners). */
export interface ClusterAccess {
  discover(cluster: ClusterConnection, signal?: AbortSignal): Promise<ClusterFacts>;
  /** Ready etcd pods with the configured container, in API order. */
  snapshotCandidates(cluster: ClusterConnection, signal?: AbortSignal): Promise<EtcdPodFact[]>;
  execSnapshot(
    cluster: ClusterConnection,
    pod: string,
    options: { idleTimeoutMs: number; signal?: AbortSignal },
  ): Promise<SnapshotExec>;
}

export interface Clock {
  now(): Date;
}

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * One series of available backups (a cluster's backups of one policy, or its manual ones) in
 * columns, oldest first: (createdAt, id) ascending, the order of `backups_retention_idx`. The
 * arrays may be longer than `count`; the reader reuses them, so they are valid during the visit only.
 */
export interface RetentionSeriesColumns {
  cluster: string;
  /** null: the cluster's manual backups. */
  policy: string | null;
  count: number;
  ids: readonly string[];
  /** createdAt, epoch ms. */
  createdAt: Float64Array;
  /** 1: the backup has a hold. */
  hold: Uint8Array;
  /** lockedUntil, epoch ms; NaN: no lock. */
  lockedUntil: Float64Array;
  /** cipherSize; 0 when unknown. */
  size: Float64Array;
}

/**
 * Optional catalog capability (the Node catalog has it, D1 does not): every series of available
 * backups in scope, in (cluster, policy) order with a cluster's manual series first, visited
 * synchronously one at a time. Retention's generic path pages rows through the query builder; this
 * one lets SQLite assemble each series, which is what makes a fleet-wide plan fast.
 */
export interface RetentionSeriesScan {
  scanRetentionSeries(scope: { policy?: string; cluster?: string }, visit: (series: RetentionSeriesColumns) => void): Promise<void>;
}
