// The environment, validated once at start (DESIGN "Configuration"). A bad value stops the process
// with the variable's name and the reason; nothing below entry/ reads process.env.

import { z } from "zod";
import { isIP } from "node:net";
import { resolve } from "node:path";
import { durationSetting } from "../core/duration-setting.js";
import { recipientsSetting } from "./recipients-setting.js";
import { ADMIN_TOKEN_FORM_MESSAGE, ISSUED_TOKEN } from "../services/tokens.js";

export const envSchema = z.object({
  PORT: z.coerce.number().int().min(1).max(65535).default(8080),
  // All interfaces by default (the container image and Kubernetes need that); 127.0.0.1 keeps a
  // workstation's service to itself.
  ETCD_VAULT_LISTEN_HOST: z
    .string()
    .refine((v) => isIP(v) !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(v), "must be an IP address or a host name to listen on, like 127.0.0.1 or ::")
    .default("0.0.0.0"),
  ETCD_VAULT_DATA_DIR: z.string().min(1).default("./var"),
  ETCD_VAULT_STORAGE: z
    .string()
    .regex(/^(file|s3):\/\//, "must start with file:// or s3://")
    .optional(),
  ETCD_VAULT_ADMIN_TOKEN: z
    .string()
    .min(24, "must be at least 24 characters")
    .refine((v) => !ISSUED_TOKEN.test(v), ADMIN_TOKEN_FORM_MESSAGE)
    .optional(),
  ETCD_VAULT_MASTER_KEY: z.string().optional(),
  ETCD_VAULT_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  ETCD_VAULT_SCHEDULER: z.enum(["on", "off"]).default("on"),
  ETCD_VAULT_DEFAULT_RECIPIENTS: recipientsSetting(),
  ETCD_VAULT_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(4),
  ETCD_VAULT_EXEC_IDLE_TIMEOUT: durationSetting("ETCD_VAULT_EXEC_IDLE_TIMEOUT", "60s"),
  ETCD_VAULT_LEASE: durationSetting("ETCD_VAULT_LEASE", "2m"),
  ETCD_VAULT_MANUAL_TTL: durationSetting("ETCD_VAULT_MANUAL_TTL", "30d"),
  ETCD_VAULT_ALLOW_CREDENTIAL_COMMANDS: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true"),
  ETCD_VAULT_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export type Env = z.infer<typeof envSchema>;

export interface Config extends Env {
  dataDir: string;
  storageUrl: string;
  publicUrl: string;
}

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings count as unset: `FOO=` in a manifest should not fail validation.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  const dataDir = resolve(e.ETCD_VAULT_DATA_DIR);
  return {
    ...e,
    dataDir,
    storageUrl: e.ETCD_VAULT_STORAGE ?? `file://${resolve(dataDir, "vault")}`,
    publicUrl: (e.ETCD_VAULT_PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ""),
  };
}
