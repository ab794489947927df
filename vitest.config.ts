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
  },
});
