// Builds the Node edition's blob store for a parsed target (DESIGN "Domain → Target"). The Worker
// edition supplies its own factory with the R2 store; here an r2:// target is a configuration
// error that says where it belongs.

import { VaultError } from "../core/errors.js";
import type { BlobStore } from "../core/ports.js";
import type { TargetSpec } from "../core/storage-url.js";
import { LocalBlobStore } from "./local-store.js";
import { S3BlobStore, type S3Credentials } from "./s3-store.js";

export type { S3Credentials } from "./s3-store.js";

/**
 * The store for `spec`. S3 credentials: the target's own (decrypted) credentials, or none to use
 * the SDK's default chain (AWS_ACCESS_KEY_ID/…, profiles, instance roles). The store applies the
 * target's prefix itself, so keys passed to it are relative to the target.
 */
export function openBlobStore(spec: TargetSpec, credentials?: S3Credentials | null): BlobStore {
  switch (spec.kind) {
    case "file":
      return new LocalBlobStore(spec.dir);
    case "s3":
      return new S3BlobStore({
        bucket: spec.bucket,
        prefix: spec.prefix,
        region: spec.region,
        endpoint: spec.endpoint,
        forcePathStyle: spec.forcePathStyle,
        credentials: credentials ?? null,
        storageClass: spec.storageClass,
        checksums: spec.checksums,
        signedPayload: spec.signedPayload,
      });
    case "r2":
      throw new VaultError(
        "invalid_input",
        `R2 is only available in the Worker edition (target r2://${spec.binding} needs a Workers R2 binding)`,
        { field: "url" },
      );
  }
}

/** `StoreFactory` of services/targets.ts for the Node edition. */
export const nodeStoreFactory = async (spec: TargetSpec, credentials: S3Credentials | null): Promise<BlobStore> =>
  openBlobStore(spec, credentials);
