#!/usr/bin/env node
// The installed command: runs the TypeScript CLI through tsx's loader, so no build step is needed.
import { register } from "tsx/esm/api";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

register();
const here = dirname(fileURLToPath(import.meta.url));
await import(join(here, "..", "src", "entry", "cli.ts"));
