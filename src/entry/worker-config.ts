// The Worker's environment (bindings, vars and secrets), validated once per isolate with one zod
// schema, like entry/config.ts does for the Node edition. A bad value names the variable and the
// reason; the Worker then answers every request with that message instead of half-working.

import { z } from "zod";
import { durationSetting } from "../core/duration-setting.js";
import { recipientsSetting } from "./recipients-setting.js";
import { parseStorageUrl } from "../core/storage-url.js";
import { decodeMasterKey } from "../crypto/secret-box.js";
import { isD1Database, type D1DatabaseLike } from "../catalog/d1.js";
import { isR2Bucket } from "../vault/r2-store.js";
import { ADMIN_TOKEN_FORM_MESSAGE, ISSUED_TOKEN } from "../services/tokens.js";

const SECRET_HINT = "set it with `wrangler secret put`, or locally in .dev.vars / `wrangler dev --var NAME:value`";

export const workerEnvSchema = z
  .object({
    DB: z.custom<D1DatabaseLike>(isD1Database, "must be a D1 binding ([[d1_databases]] binding = \"DB\" in wrangler.toml)"),
    ETCD_VAULT_MASTER_KEY: z
      .string({ error: `is required (32 bytes as 64 hex digits or base64; comma-separated for rotation); ${SECRET_HINT}` })
      .transform((v, ctx) => {
        const keys = v.split(",").map((s) => s.trim()).filter(Boolean);
        if (!keys.length) {
          ctx.addIssue({ code: "custom", message: "is empty" });
          return z.NEVER;
        }
        try {
          return keys.map((k) => decodeMasterKey(k));
        } catch (e) {
          ctx.addIssue({ code: "custom", message: (e as Error).message });
          return z.NEVER;
        }
      }),
    // There is no terminal to print a generated token on: the Worker needs the first one given.
    ETCD_VAULT_ADMIN_TOKEN: z
      .string({ error: `is required (at least 24 characters); ${SECRET_HINT}` })
      .min(24, "must be at least 24 characters")
      .refine((v) => !ISSUED_TOKEN.test(v), ADMIN_TOKEN_FORM_MESSAGE),
    ETCD_VAULT_STORAGE: z.string().default("r2://VAULT"),
    ETCD_VAULT_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
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
  })
  // Other bindings (the R2 bucket named by ETCD_VAULT_STORAGE) pass through for the check below.
  .loose()
  .superRefine((env, ctx) => {
    let binding: string;
    try {
      const spec = parseStorageUrl(env.ETCD_VAULT_STORAGE, "ETCD_VAULT_STORAGE");
      if (spec.kind !== "r2") {
        ctx.addIssue({ code: "custom", path: ["ETCD_VAULT_STORAGE"], message: "must be r2://BINDING[/prefix] in the Worker edition" });
        return;
      }
      binding = spec.binding;
    } catch (e) {
      ctx.addIssue({ code: "custom", path: ["ETCD_VAULT_STORAGE"], message: (e as Error).message });
      return;
    }
    if (!isR2Bucket((env as Record<string, unknown>)[binding])) {
      ctx.addIssue({
        code: "custom",
        path: [binding],
        message: `must be an R2 bucket binding ([[r2_buckets]] binding = "${binding}" in wrangler.toml), named by ETCD_VAULT_STORAGE`,
      });
    }
  });

export type WorkerConfig = z.infer<typeof workerEnvSchema> & { bindings: Record<string, unknown> };

export class WorkerConfigError extends Error {}

export function loadWorkerConfig(env: Record<string, unknown>): WorkerConfig {
  // Empty strings count as unset (`ETCD_VAULT_PUBLIC_URL = ""` in wrangler.toml means "not set").
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = workerEnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new WorkerConfigError(`invalid Worker configuration:\n${lines.join("\n")}`);
  }
  return { ...parsed.data, bindings: env };
}
