// What every domain verb receives. Built once at the edge (entry/node.ts, entry/worker.ts);
// nothing below reads globals or the environment.

import type { Catalog } from "../catalog/db.js";
import type { SecretBox } from "../crypto/secret-box.js";
import type { BlobStore, ClusterAccess, Clock, Logger } from "../core/ports.js";

export type Role = "admin" | "operator" | "viewer" | "runner";

export interface Actor {
  /** Token id, or `system` for the scheduler and start-up work. */
  id: string;
  name: string;
  role: Role;
  pool: string | null;
}

export const SYSTEM_ACTOR: Actor = { id: "system", name: "system", role: "admin", pool: null };

export interface ServiceSettings {
  publicUrl: string;
  defaultRecipients: string[];
  concurrency: number;
  execIdleTimeoutMs: number;
  leaseMs: number;
  manualTtlMs: number;
  /** Kubeconfigs may carry exec plugins / auth-provider cmd-path (ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS). */
  allowCredentialCommands: boolean;
}

export interface ServiceContext {
  catalog: Catalog;
  secrets: SecretBox;
  clock: Clock;
  log: Logger;
  access: ClusterAccess;
  /** Blob store of a named target (built from its row, cached). */
  storeFor(target: string): Promise<BlobStore>;
  settings: ServiceSettings;
  /** Wakes the in-process runner when work is queued (no-op where runners are remote). */
  notifyWork(): void;
  /** Random bytes source (ids, tokens); WebCrypto on both runtimes. */
  randomBytes(n: number): Uint8Array;
}

/** Per-request view: the service plus who is asking and from where. */
export interface RequestContext extends ServiceContext {
  actor: Actor;
  remoteAddr: string | null;
  requestId: string;
}

/** The settings part of the environment, as both editions and `tick --db` validate it. */
export interface SettingsEnv {
  ETCD_VAULT_DEFAULT_RECIPIENTS: string[];
  ETCD_VAULT_CONCURRENCY: number;
  ETCD_VAULT_EXEC_IDLE_TIMEOUT: number;
  ETCD_VAULT_LEASE: number;
  ETCD_VAULT_MANUAL_TTL: number;
  ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS?: boolean;
}

export function settingsFrom(env: SettingsEnv, publicUrl: string): ServiceSettings {
  return {
    publicUrl,
    defaultRecipients: env.ETCD_VAULT_DEFAULT_RECIPIENTS,
    concurrency: env.ETCD_VAULT_CONCURRENCY,
    execIdleTimeoutMs: env.ETCD_VAULT_EXEC_IDLE_TIMEOUT,
    leaseMs: env.ETCD_VAULT_LEASE,
    manualTtlMs: env.ETCD_VAULT_MANUAL_TTL,
    allowCredentialCommands: env.ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS ?? false,
  };
}
