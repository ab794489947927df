import { defineConfig } from "vitest/config";

// Integration tests start real processes (etcd, s3rver, the kube simulator), so they get
// generous timeouts; files run in parallel across the two cores, tests inside a file in order.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
    // The AWS SDK announces its Node 22 floor on every client; known (DESIGN "Runtime"), silenced here.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  },
});
