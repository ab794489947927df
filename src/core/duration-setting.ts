// A duration environment variable / binding (`ETCD_VAULT_LEASE=2m`) as a zod schema, shared by the
// Node edition's config and the Worker's bindings: milliseconds out, a readable issue otherwise.
import { z } from "zod";
import { parseDuration } from "./duration.js";

export const durationSetting = (name: string, fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      try {
        return parseDuration(v.trim(), name);
      } catch (e) {
        // The issue's path already names the variable; keep only the reason.
        ctx.addIssue({ code: "custom", message: (e as Error).message.replace(`${name}: `, "") });
        return z.NEVER;
      }
    });
