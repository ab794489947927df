// The restore bundle: one tar with one top folder, `<cluster>-<YYYYMMDDTHHMMSSZ>-restore/`, holding
// the encrypted snapshot, its checksum, the backup record and the instructions written for this
// cluster. The small files come first so that a streaming reader (`etcd-vault verify -`) knows the
// expected hashes before the snapshot's bytes arrive. The snapshot body is passed through as it
// comes from the vault; the archive length is known up front for Content-Length.

import type { Backup } from "../backup-types.js";
import { tarSize, tarStream, type TarEntry } from "../tar-writer.js";
import { renderRestoreMd } from "./render-restore-md.js";
import { renderRestoreSh } from "./render-restore-sh.js";

export const CIPHERTEXT_FILE = "snapshot.db.age";

const encoder = new TextEncoder();

/** `<cluster>-<YYYYMMDDTHHMMSSZ>-restore`, from the backup's creation time in UTC. */
export function bundleName(backup: Backup): string {
  const created = new Date(backup.createdAt);
  const stamp = created.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
  return `${backup.cluster}-${stamp}-restore`;
}

/** `sha256sum -c` format: hash, two spaces (text mode), name. */
export const sha256sumsText = (backup: Backup): string => `${backup.ciphertext.sha256}  ${CIPHERTEXT_FILE}\n`;

export function bundleEntries(backup: Backup, snapshotBody: ReadableStream<Uint8Array>, now: Date): TarEntry[] {
  const top = bundleName(backup);
  const text = (name: string, content: string, mode = 0o644): TarEntry => {
    const body = encoder.encode(content);
    return { name: `${top}/${name}`, mode, mtime: now, size: body.length, body };
  };
  return [
    { name: `${top}/`, mode: 0o755, mtime: now, size: 0, type: "directory" },
    text("SHA256SUMS", sha256sumsText(backup)),
    text("backup.json", `${JSON.stringify(backup, null, 2)}\n`),
    text("RESTORE.md", renderRestoreMd(backup, { bundleName: top, downloadedAt: now.toISOString() })),
    text("restore.sh", renderRestoreSh(backup), 0o755),
    {
      name: `${top}/${CIPHERTEXT_FILE}`,
      mode: 0o644,
      mtime: new Date(backup.createdAt),
      size: backup.ciphertext.size,
      body: snapshotBody,
    },
  ];
}

export interface BundleDownload {
  stream: ReadableStream<Uint8Array>;
  /** Exact length of `stream` in bytes. */
  size: number;
  /** `<bundleName>.tar` */
  filename: string;
}

export function bundleStream(backup: Backup, snapshotBody: ReadableStream<Uint8Array>, now: Date): BundleDownload {
  const entries = bundleEntries(backup, snapshotBody, now);
  return { stream: tarStream(entries), size: tarSize(entries), filename: `${bundleName(backup)}.tar` };
}
