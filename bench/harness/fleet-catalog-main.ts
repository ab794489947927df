// Generates the fleet catalog in its own process, so the benchmark that measures memory starts
// clean: `tsx bench/harness/fleet-catalog-main.ts --file catalog.db [--clusters 10000]`.
// Prints one JSON line with the counts.

import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { generateFleetCatalog } from "./fleet-catalog.js";

const { values } = parseArgs({ options: { file: { type: "string" }, clusters: { type: "string" } } });
if (!values.file) throw new Error("--file is required");
if (existsSync(values.file)) throw new Error(`${values.file} exists; the generator writes a new catalog`);
const counts = generateFleetCatalog(values.file, { clusters: Number(values.clusters ?? 10_000) });
process.stdout.write(`${JSON.stringify(counts)}\n`);
