#!/usr/bin/env -S node --max-semi-space-size=1
// The installed command. It runs dist/etcd-vault.mjs, the one-file build of src/ that
// bin/build.js writes with esbuild, and rebuilds it first when a source file is newer (a checkout
// or an edit; about two seconds). Where src/ is absent, as in the container image, the bundle
// that was built with the image is run as it is.
//
// Node flag: --max-semi-space-size=1 (here in the #! line, in `npm start` and in the image's
// ENTRYPOINT) makes V8 collect its young generation every MiB, so the 64 KiB buffers a capture
// streams through are freed soon after use; docs/performance.md ("Capture") has the figures.
import { pathToFileURL } from "node:url";
import { existsSync } from "node:fs";
import { BUNDLE, build, bundleIsStale } from "./build.js";

if (bundleIsStale()) {
  try {
    await build();
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    if (!existsSync(BUNDLE)) {
      process.stderr.write(`etcd-vault: cannot build ${BUNDLE} (${why}); run \`npm ci && npm run build\` in the package directory\n`);
      process.exit(70);
    }
    process.stderr.write(`etcd-vault: warning: could not rebuild ${BUNDLE} (${why}); running the existing build\n`);
  }
}
await import(pathToFileURL(BUNDLE).href);
