import { defineConfig } from "vitest/config";

// One `vitest run` at the root runs every package's tests; each package's own config starts the
// real servers its tests need (see packages/test-harness: setupServers).
export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*"],
    // Most test time is spent waiting on servers, tools and timeouts, not on this process's CPU:
    // on a 2-core machine the default (one file at a time) left the suite at 15 min per Node line.
    maxWorkers: 3,
  },
});
