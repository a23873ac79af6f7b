import { defineConfig } from "vitest/config";

// One `vitest run` at the root runs every package's tests; each package's own config starts the
// real servers its tests need (see packages/test-harness: setupServers).
export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*"],
  },
});
