#!/usr/bin/env node
// Builds the Node edition into one ES module, dist/etcd-vault.mjs, with esbuild: every dependency
// inlined except better-sqlite3 (a native addon, loaded from node_modules at run time).
//
//   node bin/build.js            (npm run build; bin/etcd-vault.js also calls it when src/ is newer)
//
// Why a bundle: Node loads an ES module graph file by file, and @kubernetes/client-node 1.4 alone
// is thousands of modules (~73 MiB of RSS when imported unbundled, ~20 MiB bundled); tsx's loader
// thread is another ~30 MiB. docs/performance.md has the figures.

import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const BUNDLE = join(ROOT, "dist", "etcd-vault.mjs");

/** The newest modification time under src/ (and of the files that shape the build). */
export function newestSource() {
  let newest = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(join(ROOT, "src"));
  for (const f of ["package-lock.json", "tsconfig.json", "bin/build.js"]) newest = Math.max(newest, statSync(join(ROOT, f)).mtimeMs);
  return newest;
}

/** Whether dist/etcd-vault.mjs is missing or older than the sources (false when src/ is absent, as in the image). */
export function bundleIsStale() {
  let built;
  try {
    built = statSync(BUNDLE).mtimeMs;
  } catch {
    return true;
  }
  try {
    return newestSource() > built;
  } catch {
    return false;
  }
}

/**
 * What `npm start` passes to node, split at bin/etcd-vault.js: its V8 flags and the command's own
 * arguments. Benchmarks start their measured processes with the same flags.
 */
export function startNodeArgs() {
  const start = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts.start;
  const words = start.trim().split(/\s+/);
  const bin = words.indexOf("bin/etcd-vault.js");
  if (words[0] !== "node" || bin < 0) throw new Error(`unexpected start script: ${start}`);
  return { flags: words.slice(1, bin), args: words.slice(bin + 1) };
}

export async function build({ quiet = false } = {}) {
  await bundle(join(ROOT, "src", "entry", "cli.ts"), BUNDLE, { quiet });
}

/**
 * One entry point and everything it imports into one ES module at `outfile` (the benchmarks use
 * it for their measured processes, so that they run as the product does).
 */
export async function bundle(entry, outfile, { quiet = false } = {}) {
  const esbuild = await import("esbuild");
  mkdirSync(dirname(outfile), { recursive: true });
  const t0 = performance.now();
  // Written next to the bundle under temporary names, then renamed: two processes that start
  // at once never see half a file.
  const result = await esbuild.build({
    write: false,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minify: true,
    // Names stay readable in stack traces and in error classes' `name`.
    keepNames: true,
    sourcemap: "linked",
    tsconfig: join(ROOT, "tsconfig.json"),
    // better-sqlite3 finds its .node binary relative to its own files; ws's optional native
    // helpers are absent on purpose (ws falls back to JS when their require fails).
    external: ["better-sqlite3", "bufferutil", "utf-8-validate"],
    // CommonJS dependencies call require() for Node built-ins; an ES module has none of its own.
    banner: { js: "import { createRequire as __evCreateRequire } from 'node:module'; const require = __evCreateRequire(import.meta.url);" },
    logLevel: "warning",
    legalComments: "linked",
  });
  const suffix = `.tmp-${process.pid}`;
  // The bundle last, so that a fresh bundle always has its map and notices beside it.
  const files = [...result.outputFiles].sort((a, b) => (a.path === outfile) - (b.path === outfile));
  for (const f of files) {
    writeFileSync(f.path + suffix, f.contents);
    renameSync(f.path + suffix, f.path);
  }
  if (!quiet) process.stderr.write(`etcd-vault: built ${outfile} in ${Math.round(performance.now() - t0)} ms\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await build();
}
