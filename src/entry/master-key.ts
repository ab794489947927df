// The master key seals kubeconfigs and credentials and derives the link-signing key. From
// ETCD_VAULT_MASTER_KEY (comma-separated: the first seals, all open — for rotation), else a key
// generated once into <data dir>/master.key with mode 0600.
import { existsSync, readFileSync, writeFileSync, chmodSync, mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { decodeMasterKey } from "../crypto/secret-box.js";
import type { Logger } from "../core/ports.js";

export function loadMasterKeys(given: string | undefined, dataDir: string, log: Logger): Uint8Array[] {
  if (given) {
    return given
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .map((k, i) => {
        try {
          return decodeMasterKey(k);
        } catch (e) {
          throw new Error(`ETCD_VAULT_MASTER_KEY: key #${i + 1}: ${(e as Error).message}`);
        }
      });
  }
  const file = join(dataDir, "master.key");
  if (existsSync(file)) return [decodeMasterKey(readFileSync(file, "utf8"))];
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, randomBytes(32).toString("hex") + "\n", { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600);
  log.warn("generated a master key; back it up — without it sealed kubeconfigs and links cannot be opened", { file });
  return [decodeMasterKey(readFileSync(file, "utf8"))];
}
