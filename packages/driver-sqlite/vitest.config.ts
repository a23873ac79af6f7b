import { defineProject } from "vitest/config";

// No server to start: the tests use real database files and the real sqlite3 program.
export default defineProject({
  test: {
    name: "driver-sqlite",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
