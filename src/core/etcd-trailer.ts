// etcd snapshot streams (`etcdctl snapshot save`'s wire form and Deckhouse's `snapshot pipe`)
// are the bbolt database followed by 32 bytes: SHA-256 of everything before them. bbolt files
// are a whole number of pages (multiples of 512), so a stream carries the trailer exactly when
// `length % 512 == 32` (the rule etcd's own restore uses to decide whether to check the hash).
export const TRAILER_SIZE = 32;

export function hasTrailer(length: number): boolean {
  return length % 512 === TRAILER_SIZE;
}
