// Where a backup's object and its JSON sidecar live (DESIGN "Storage layout").
export function sidecarKey(objectKey: string): string {
  return objectKey.replace(/\.db\.age$/, ".json");
}
