// The 10k-cluster / 1M-backup catalog for bench:tick and bench:retention: a copy of a given file
// (`--catalog`), or freshly generated in its own process (so its memory does not count).
import { copyFileSync } from "node:fs";
import type { FleetCounts } from "./fleet-catalog.js";
import { runTsx } from "./processes.js";
import { fixed, formatSize } from "./report.js";

export async function obtainFleetCatalog(file: string, clusters: number, copyFrom?: string): Promise<FleetCounts | null> {
  if (copyFrom) {
    copyFileSync(copyFrom, file);
    process.stdout.write(`catalog: copy of ${copyFrom}\n`);
    return null;
  }
  process.stdout.write(`generating the catalog (${clusters} clusters) in its own process…\n`);
  const counts = JSON.parse(await runTsx("bench/harness/fleet-catalog-main.ts", ["--file", file, "--clusters", String(clusters)])) as FleetCounts;
  process.stdout.write(
    `catalog: ${counts.clusters} clusters, ${counts.policies} policies (${counts.pairs} pairs), ${counts.backups} backups ` +
      `(${counts.available} available), ${counts.runs} runs; ${formatSize(counts.fileBytes)} on disk; generated in ${fixed(counts.seconds)} s\n`,
  );
  return counts;
}
