// The catalog: one drizzle schema for better-sqlite3 (Node edition) and D1 (Worker edition).
// Times are integer milliseconds since the epoch (cheap to index and compare); the API renders
// them as RFC 3339. JSON columns hold small structured values (labels, facts, timings).
// Changing this file means a new migration: `npm run migrate:generate`.

import { sql } from "drizzle-orm";
import { sqliteTable, text, integer, index, uniqueIndex } from "drizzle-orm/sqlite-core";

export const tokens = sqliteTable("tokens", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  role: text("role", { enum: ["admin", "operator", "viewer", "runner"] }).notNull(),
  pool: text("pool"),
  /** hex SHA-256 of the secret part; the secret itself is shown once and never stored. */
  secretHash: text("secret_hash").notNull(),
  createdAt: integer("created_at").notNull(),
  expiresAt: integer("expires_at"),
  lastUsedAt: integer("last_used_at"),
  revokedAt: integer("revoked_at"),
});

export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: text("id").primaryKey(), // ULID: sorts by time
    at: integer("at").notNull(),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    subject: text("subject").notNull(),
    outcome: text("outcome").notNull(),
    remoteAddr: text("remote_addr"),
    detail: text("detail", { mode: "json" }).$type<Record<string, unknown>>(),
  },
  (t) => [index("audit_subject_idx").on(t.subject, t.id), index("audit_action_idx").on(t.action, t.id)],
);

export const clusters = sqliteTable("clusters", {
  name: text("name").primaryKey(),
  labels: text("labels", { mode: "json" }).$type<Record<string, string>>().notNull(),
  recipients: text("recipients", { mode: "json" }).$type<string[]>().notNull(),
  pool: text("pool"),
  /** AES-256-GCM envelope under the master key: `<keyId>:<base64 iv|ciphertext>`. */
  kubeconfigSealed: text("kubeconfig_sealed").notNull(),
  context: text("context"),
  etcd: text("etcd", { mode: "json" }).$type<import("../core/cluster-types.js").EtcdSettings>().notNull(),
  facts: text("facts", { mode: "json" }).$type<import("../core/cluster-types.js").ClusterFacts>(),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

export const targets = sqliteTable("targets", {
  name: text("name").primaryKey(),
  kind: text("kind", { enum: ["file", "s3", "r2"] }).notNull(),
  url: text("url").notNull(),
  /** Sealed JSON `{accessKeyId, secretAccessKey, sessionToken?}` or null (use the AWS environment). */
  credentialsSealed: text("credentials_sealed"),
  objectLock: text("object_lock", { mode: "json" }).$type<{ mode: "GOVERNANCE" | "COMPLIANCE"; days: number }>(),
  storageClass: text("storage_class"),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

export const policies = sqliteTable("policies", {
  name: text("name").primaryKey(),
  selector: text("selector", { mode: "json" }).$type<{ matchLabels: Record<string, string> }>().notNull(),
  schedule: text("schedule").notNull(),
  timezone: text("timezone").notNull(),
  spread: text("spread").notNull(),
  rpo: text("rpo").notNull(),
  retention: text("retention", { mode: "json" }).$type<Record<string, number | string>>().notNull(),
  recipients: text("recipients", { mode: "json" }).$type<string[]>().notNull(),
  target: text("target").notNull(),
  paused: integer("paused", { mode: "boolean" }).notNull(),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** When a cluster started matching a policy: its first run is the first slot after `since`. */
export const policyMembers = sqliteTable(
  "policy_members",
  {
    policy: text("policy").notNull(),
    cluster: text("cluster").notNull(),
    since: integer("since").notNull(),
    /**
     * The pair's spread hash: the first 4 bytes of SHA-256("cluster/policy") as an unsigned
     * integer; its offset is this modulo the policy's spread (core/schedule.ts). Kept here so a
     * fresh process's tick does not hash every pair again (30,000 SHA-256s, bench:tick). Null in
     * rows written before migration 0007; the tick fills those in.
     */
    spreadHash: integer("spread_hash"),
  },
  (t) => [uniqueIndex("policy_members_pk").on(t.policy, t.cluster)],
);

export const runs = sqliteTable(
  "runs",
  {
    id: text("id").primaryKey(),
    kind: text("kind", { enum: ["capture", "discover"] }).notNull(),
    cluster: text("cluster").notNull(),
    policy: text("policy"),
    slot: integer("slot"),
    notBefore: integer("not_before").notNull(),
    state: text("state", { enum: ["queued", "running", "succeeded", "failed", "cancelled"] }).notNull(),
    attempt: integer("attempt").notNull(),
    nextAttemptAt: integer("next_attempt_at"),
    leaseOwner: text("lease_owner"),
    leaseExpiresAt: integer("lease_expires_at"),
    cancelRequested: integer("cancel_requested", { mode: "boolean" }).notNull().default(false),
    pod: text("pod"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    bytes: integer("bytes").notNull().default(0),
    timings: text("timings", { mode: "json" }).$type<Record<string, number | null>>(),
    /** Request-time choices for manual runs (recipients, target); null = resolve at capture. */
    options: text("options", { mode: "json" }).$type<{ recipients?: string[]; target?: string }>(),
    /** Result of discover runs (facts) handed back to a waiting request. */
    result: text("result", { mode: "json" }).$type<unknown>(),
    createdAt: integer("created_at").notNull(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
    backupId: text("backup_id"),
  },
  (t) => [
    // (policy, slot, cluster): runs of one slot land together (the tick inserts thousands at once)
    // and "which pairs already have this slot" is a seek. Uniqueness is the same set either way.
    uniqueIndex("runs_slot_uq").on(t.policy, t.slot, t.cluster),
    // Claims: the oldest due queued run (services/runs.ts claimRun); lease expiry (running).
    index("runs_state_idx").on(t.state, t.notBefore),
    // GET /v1/runs?state=… newest first. Queries that combine state with cluster or policy write
    // `+state` (services/runs.ts) so SQLite never walks a whole state here for them.
    index("runs_state_id_idx").on(t.state, t.id),
    // A cluster's runs, in two halves. A fleet-wide tick queues one run per cluster and policy at
    // once; in one (cluster, …) index over every run those 30,000 entries land in 10,000 places
    // of a million-entry index (~10,000 pages rewritten, most of the tick's time: bench:tick).
    // Here new runs enter only the small index of queued and running runs; a run moves to the
    // history index when it finishes, one at a time. Queries name the halves by repeating their
    // conditions word for word (SQLite uses a partial index only then): services/runs.ts.
    index("runs_cluster_active_idx").on(t.cluster, t.id).where(sql`state in ('queued', 'running')`),
    index("runs_cluster_done_idx").on(t.cluster, t.id).where(sql`state not in ('queued', 'running')`),
    // Runs waiting for a retry (the tick counts them); never a run the tick creates.
    index("runs_retry_idx").on(t.state).where(sql`next_attempt_at is not null`),
  ],
);

export const backups = sqliteTable(
  "backups",
  {
    id: text("id").primaryKey(), // ULID
    cluster: text("cluster").notNull(),
    policy: text("policy"),
    runId: text("run_id").notNull(),
    state: text("state", {
      enum: ["uploading", "available", "failed", "deleting", "deleted", "missing", "corrupt"],
    }).notNull(),
    createdAt: integer("created_at").notNull(),
    target: text("target").notNull(),
    objectKey: text("object_key").notNull(),
    plainSize: integer("plain_size"),
    plainSha256: text("plain_sha256"),
    cipherSize: integer("cipher_size"),
    cipherSha256: text("cipher_sha256"),
    etcdRevision: integer("etcd_revision"),
    etcdKeys: integer("etcd_keys"),
    etcdVersion: text("etcd_version"),
    recipients: text("recipients", { mode: "json" }).$type<string[]>().notNull(),
    facts: text("facts", { mode: "json" }).$type<import("../core/cluster-types.js").ClusterFacts>(),
    hold: integer("hold", { mode: "boolean" }).notNull().default(false),
    holdReason: text("hold_reason"),
    lockedUntil: integer("locked_until"),
    errorMessage: text("error_message"),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    index("backups_cluster_idx").on(t.cluster, t.id),
    index("backups_series_idx").on(t.cluster, t.policy, t.state, t.createdAt),
    index("backups_state_idx").on(t.state),
    index("backups_policy_idx").on(t.policy, t.id),
    // GET /v1/backups?state=… newest first, read in order instead of sorting every backup in the
    // state (20,000 failed of 1M: ~70 ms per request, blocking every other request; bench:tick).
    // Trap: without ANALYZE statistics SQLite also picks it for `cluster = ? AND state = ? ORDER BY
    // id` and walks every available backup (80 s over 1M); such queries must write `+state`
    // (services/backups.ts does). The same index on runs was dropped again for that reason.
    index("backups_state_id_idx").on(t.state, t.id),
    // Retention reads every available backup in series order (cluster, policy, createdAt, id),
    // page by page. This index holds that order and every column the planner reads, so the scan
    // never touches the table: over 1M backups each 5,000-row page otherwise re-sorted all
    // available rows (~1 s a page, minutes for the fleet; bench:retention).
    index("backups_retention_idx").on(
      t.state,
      t.cluster,
      // Manual backups (policy null) sort as ''. Written without a comma: drizzle-kit 0.31 splits
      // index expressions at commas (coalesce(…, '') came out broken).
      sql`case when ${t.policy} is null then '' else ${t.policy} end`,
      t.createdAt,
      t.id,
      t.policy,
      t.hold,
      t.lockedUntil,
      t.cipherSize,
    ),
  ],
);

export const links = sqliteTable(
  "links",
  {
    id: text("id").primaryKey(),
    backupId: text("backup_id").notNull(),
    kind: text("kind", { enum: ["bundle", "snapshot"] }).notNull(),
    expiresAt: integer("expires_at").notNull(),
    revokedAt: integer("revoked_at"),
    uses: integer("uses").notNull().default(0),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("links_backup_idx").on(t.backupId, t.id)],
);

export const meta = sqliteTable("meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/** A remote runner's multipart upload into the vault, part by part (runner routes). */
export const uploads = sqliteTable("uploads", {
  backupId: text("backup_id").primaryKey(),
  runId: text("run_id").notNull(),
  uploadId: text("upload_id").notNull(),
  nextPart: integer("next_part").notNull(),
  size: integer("size").notNull(),
  /** Resumable SHA-256 state of the ciphertext received so far (core/sha256.ts). */
  hashState: text("hash_state").notNull(),
  parts: text("parts", { mode: "json" }).$type<Array<{ partNumber: number; etag: string; size: number; sha256: string }>>().notNull(),
  createdAt: integer("created_at").notNull(),
});
