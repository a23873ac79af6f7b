import { defineConfig } from "vitest/config";

// One `vitest run` at the root runs every package's tests; each package's own config starts the
// real servers its tests need (see packages/test-harness: setupServers).
//
// How many test files run at once is set by `pnpm test` (`--maxWorkers`, package.json): vitest 5
// passes the command line's maxWorkers on to every project but not the root config's, so a
// `maxWorkers` here was silently ignored and the suite ran one file at a time (vitest#11051).
export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*"],
  },
});
