// Version facts from what the API shows: an image reference's tag, or `etcdctl version` output.

const SEMVER = /^v?(\d+\.\d+\.\d+)(?:[-+][0-9A-Za-z.-]*)?$/;

/**
 * The version in an image reference's tag, without a leading `v` (`registry.k8s.io/etcd:3.5.16-0`
 * → `3.5.16`, `…/etcd:v3.5.16@sha256:…` → `3.5.16`). Null when there is no tag (digest only, as
 * Deckhouse pins its images) or the tag is not a version (Deckhouse tags are content hashes).
 */
export function versionFromImage(image: string): string | null {
  const noDigest = image.split("@")[0]!;
  const lastSegment = noDigest.slice(noDigest.lastIndexOf("/") + 1);
  const colon = lastSegment.lastIndexOf(":");
  if (colon < 0) return null;
  const m = SEMVER.exec(lastSegment.slice(colon + 1));
  return m ? m[1]! : null;
}

/** `etcdctl version: 3.5.16` (or `etcd Version: …`) → `3.5.16`. */
export function versionFromEtcdctl(output: string): string | null {
  const m = /etcd(?:ctl)? version:\s*v?(\d+\.\d+\.\d+)/i.exec(output);
  return m ? m[1]! : null;
}
