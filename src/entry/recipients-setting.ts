// ETCD_VAULT_DEFAULT_RECIPIENTS for both editions' configuration: a comma-separated list of age
// recipients, checked when the process starts (a bad one stops it with the variable's name and
// the reason) rather than at the first manual backup that falls back to it.
import { z } from "zod";
import { parseRecipients } from "../crypto/recipients.js";

export function recipientsSetting() {
  return z
    .string()
    .default("")
    .transform((v, ctx) => {
      const list = v.split(",").map((s) => s.trim()).filter(Boolean);
      if (!list.length) return list;
      try {
        // Entries are named by position ("recipient[1]: …"); the variable names itself in the report.
        return parseRecipients(list, "recipient");
      } catch (e) {
        ctx.addIssue({ code: "custom", message: (e as Error).message });
        return z.NEVER;
      }
    });
}
