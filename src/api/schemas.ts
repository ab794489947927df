// Zod schemas of the HTTP contract: validation, OpenAPI and test types come from here.
// Request bodies are strict (unknown fields are an error naming them).

import { z } from "@hono/zod-openapi";
import { DNS_LABEL } from "../core/ids.js";
import { hasLoneSurrogate, hasUnprintable } from "../core/text.js";

export const Name = z.string().regex(DNS_LABEL, "must be a DNS label: lowercase letters, digits and '-', at most 63");
export const Labels = z.record(z.string(), z.string()).refine((l) => Object.keys(l).length <= 64, "at most 64 labels");

/**
 * Free text people name things with, which ends up in responses, logs and RESTORE.md: non-empty,
 * one line, no control characters, bidi controls or lone surrogates (core/text.ts).
 */
export const Text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => !hasUnprintable(s), "must not contain control characters (or bidi controls, line separators)")
    .refine((s) => !hasLoneSurrogate(s), "must be well-formed Unicode (no lone surrogates)");
export const Rfc3339 = z.iso.datetime({ offset: true });

export const ErrorEnvelope = z
  .object({
    error: z.object({ code: z.string(), message: z.string(), requestId: z.string() }),
  })
  .openapi("Error");

export const ListQuery = z.object({
  // Decimal digits only ("0x10" and "1e2" are typos, not 16 and 100); `?limit=` is the default.
  limit: z
    .string()
    .regex(/^[0-9]{0,6}$/, "must be a whole number from 1 to 500")
    .optional()
    .transform((v) => (v === undefined || v === "" ? 50 : Number(v)))
    .pipe(z.number().int().min(1, "must be a whole number from 1 to 500").max(500, "must be a whole number from 1 to 500"))
    .openapi({ type: "integer", minimum: 1, maximum: 500, default: 50 }),
  cursor: z.string().optional(),
});

export const page = <T extends z.ZodTypeAny>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

export const Role = z.enum(["admin", "operator", "viewer", "runner"]);

export const TokenCreate = z
  .strictObject({
    name: Text(100),
    role: Role,
    pool: Name.nullable().optional(),
    expiresAt: Rfc3339.nullable().optional(),
  })
  .openapi("TokenCreate");

export const Token = z
  .object({
    id: z.string(),
    name: z.string(),
    role: Role,
    pool: z.string().nullable(),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
  })
  .openapi("Token");

export const EtcdSettings = z.strictObject({
  namespace: Name.optional(),
  selector: z.string().min(1).max(256).optional(),
  container: z.string().min(1).max(63).optional(),
  command: z.array(z.string().min(1)).min(1).max(64).optional(),
});

export const ClusterCreate = z
  .strictObject({
    name: Name,
    labels: Labels.optional(),
    recipients: z.array(z.string()).max(32).optional(),
    pool: Name.nullable().optional(),
    kubeconfig: z.string().min(1, "must not be empty").max(256 * 1024),
    context: z.string().min(1).nullable().optional(),
    etcd: EtcdSettings.optional(),
  })
  .openapi("ClusterCreate");

export const ClusterPatch = z
  .strictObject({
    labels: z.record(z.string(), z.string().nullable()).nullable().optional(),
    recipients: z.array(z.string()).max(32).nullable().optional(),
    pool: Name.nullable().optional(),
    kubeconfig: z.string().min(1).max(256 * 1024).optional(),
    context: z.string().min(1).nullable().optional(),
    etcd: EtcdSettings.nullable().optional(),
  })
  .openapi("ClusterPatch");

// Facts come from runners too (POST /v1/runners/runs/{id}/discovered, …/complete) and are printed
// into RESTORE.md and restore.sh's comments: names and versions must be printable.
export const Facts = z.object({
  masters: z.array(z.object({ name: Text(253), internalIP: z.union([z.ipv4(), z.ipv6()]).nullable() })).max(100),
  etcdPods: z.array(z.object({ name: Text(253), node: Text(253).nullable(), ready: z.boolean() })).max(100),
  etcdVersion: Text(128).nullable(),
  kubernetesVersion: Text(128).nullable(),
  deckhouseVersion: Text(128).nullable(),
  multiMaster: z.boolean(),
  discoveredAt: Rfc3339,
});

export const Cluster = z
  .object({
    name: z.string(),
    labels: Labels,
    recipients: z.array(z.string()),
    pool: z.string().nullable(),
    context: z.string().nullable(),
    etcd: z.object({ namespace: z.string(), selector: z.string(), container: z.string(), command: z.array(z.string()) }),
    facts: Facts.nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Cluster");

export const AuditEvent = z
  .object({
    id: z.string(),
    at: z.string(),
    actor: z.string(),
    action: z.string(),
    subject: z.string(),
    outcome: z.string(),
    remoteAddr: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()).nullable(),
  })
  .openapi("AuditEvent");

export const NameParam = z.object({ name: Name.openapi({ param: { name: "name", in: "path" } }) });
export const IdParam = z.object({ id: z.string().min(1).max(64).openapi({ param: { name: "id", in: "path" } }) });

export const errorResponses = {
  400: { description: "invalid input", content: { "application/json": { schema: ErrorEnvelope } } },
  401: { description: "unauthorized", content: { "application/json": { schema: ErrorEnvelope } } },
  403: { description: "forbidden", content: { "application/json": { schema: ErrorEnvelope } } },
  404: { description: "not found", content: { "application/json": { schema: ErrorEnvelope } } },
  409: { description: "conflict", content: { "application/json": { schema: ErrorEnvelope } } },
} as const;

export const jsonBody = <T extends z.ZodTypeAny>(schema: T) => ({
  body: { content: { "application/json": { schema } }, required: true },
});
export const jsonOk = <T extends z.ZodTypeAny>(schema: T, description = "OK") => ({
  content: { "application/json": { schema } },
  description,
});

export const ManualBackup = z
  .strictObject({ recipients: z.array(z.string()).min(1).max(32).optional(), target: Name.optional() })
  .openapi("ManualBackup");

export const RunState = z.enum(["queued", "running", "succeeded", "failed", "cancelled"]);
export const Run = z
  .object({
    id: z.string(),
    kind: z.enum(["capture", "discover"]),
    cluster: z.string(),
    policy: z.string().nullable(),
    slot: z.string().nullable(),
    notBefore: z.string(),
    state: RunState,
    attempt: z.number(),
    nextAttemptAt: z.string().nullable(),
    pod: z.string().nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    bytes: z.number(),
    timings: z.object({
      execFirstByteMs: z.number().nullable(),
      streamMs: z.number().nullable(),
      uploadMs: z.number().nullable(),
      totalMs: z.number().nullable(),
    }),
    lease: z.object({ owner: z.string(), expiresAt: z.string() }).nullable(),
    cancelRequested: z.boolean().openapi({
      description: "Someone cancelled the run (POST /v1/runs/{id}/cancel, or by pausing or deleting its policy or deleting its cluster). A queued run is cancelled at once; a running one ends cancelled at its runner's next heartbeat.",
    }),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    backupId: z.string().nullable(),
  })
  .openapi("Run");

export const BackupState = z.enum(["uploading", "available", "failed", "deleting", "deleted", "missing", "corrupt"]);
export const Backup = z
  .object({
    id: z.string(),
    cluster: z.string(),
    policy: z.string().nullable(),
    runId: z.string(),
    state: BackupState,
    createdAt: z.string(),
    target: z.string(),
    objectKey: z.string(),
    plaintext: z.object({ size: z.number(), sha256: z.string() }),
    ciphertext: z.object({ size: z.number(), sha256: z.string() }),
    etcd: z.object({ revision: z.number().nullable(), keys: z.number().nullable(), version: z.string().nullable() }),
    recipients: z.array(z.string()),
    facts: Facts.nullable(),
    hold: z.boolean(),
    holdReason: z.string().nullable(),
    lockedUntil: z.string().nullable(),
  })
  .openapi("Backup");

export const HoldBody = z.strictObject({ reason: Text(500) }).openapi("Hold");

const ObjectLock = z.strictObject({ mode: z.enum(["GOVERNANCE", "COMPLIANCE"]), days: z.number().int().min(1).max(36500) });
const Credentials = z.strictObject({
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  sessionToken: z.string().min(1).optional(),
});
export const TargetCreate = z
  .strictObject({
    name: Name,
    url: z.string().min(1).max(2048),
    credentials: Credentials.nullable().optional(),
    objectLock: ObjectLock.nullable().optional(),
    storageClass: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a storage class name (letters, digits, '_', '-'), e.g. STANDARD_IA").nullable().optional(),
  })
  .openapi("TargetCreate");
export const TargetPatch = z
  .strictObject({
    url: z.string().min(1).max(2048).optional(),
    credentials: Credentials.nullable().optional(),
    objectLock: ObjectLock.nullable().optional(),
    storageClass: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a storage class name (letters, digits, '_', '-'), e.g. STANDARD_IA").nullable().optional(),
  })
  .openapi("TargetPatch");
export const Target = z
  .object({
    name: z.string(),
    kind: z.enum(["file", "s3", "r2"]),
    url: z.string(),
    objectLock: z.object({ mode: z.string(), days: z.number() }).nullable(),
    storageClass: z.string().nullable(),
  })
  .openapi("Target");
export const TargetCheck = z
  .object({
    ok: z.boolean(),
    steps: z.array(z.object({ step: z.string(), ok: z.boolean(), ms: z.number(), error: z.string().optional() })),
  })
  .openapi("TargetCheck");

const Retention = z
  .strictObject({
    last: z.number().int().optional(),
    hourly: z.number().int().optional(),
    daily: z.number().int().optional(),
    weekly: z.number().int().optional(),
    monthly: z.number().int().optional(),
    yearly: z.number().int().optional(),
    within: z.string().nullable().optional(),
  })
  .openapi("Retention");
export const PolicyCreate = z
  .strictObject({
    name: Name,
    selector: z.strictObject({ matchLabels: Labels }),
    schedule: z.string().min(1).max(200),
    timezone: z.string().min(1).max(64).optional(),
    spread: z.string().optional(),
    rpo: z.string().optional(),
    retention: Retention,
    recipients: z.array(z.string()).min(1, "at least one age recipient is required").max(32),
    target: Name.optional(),
    paused: z.boolean().optional(),
  })
  .openapi("PolicyCreate");
// JSON merge patch (RFC 7396): what is absent stays, `null` removes a label from the selector or
// resets timezone, spread, rpo or a retention rule to its default.
export const PolicyPatch = PolicyCreate.omit({ name: true })
  .partial()
  .extend({
    selector: z.strictObject({ matchLabels: z.record(z.string(), z.string().nullable()) }).optional(),
    timezone: z.string().min(1).max(64).nullable().optional(),
    spread: z.string().nullable().optional(),
    rpo: z.string().nullable().optional(),
    // Retention's rules, each also nullable.
    retention: z
      .strictObject(Object.fromEntries(Object.entries(Retention.shape).map(([k, rule]) => [k, rule.unwrap().nullable().optional()])))
      .optional(),
  })
  .openapi("PolicyPatch");
export const Policy = z
  .object({
    name: z.string(),
    selector: z.object({ matchLabels: Labels }),
    schedule: z.string(),
    timezone: z.string(),
    spread: z.string(),
    rpo: z.string(),
    retention: z.object({
      last: z.number(),
      hourly: z.number(),
      daily: z.number(),
      weekly: z.number(),
      monthly: z.number(),
      yearly: z.number(),
      within: z.string().nullable(),
    }),
    recipients: z.array(z.string()),
    target: z.string(),
    paused: z.boolean(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Policy");
export const PolicyDetail = Policy.extend({
  clusters: z.array(z.object({ name: z.string(), nextSlot: z.string().nullable(), notBefore: z.string().nullable() })),
}).openapi("PolicyDetail");
export const TickResult = z
  .object({ created: z.number(), requeued: z.number(), deleted: z.number(), retrying: z.number() })
  .openapi("TickResult");
