import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "storage-gcs",
    include: ["test/**/*.test.ts"],
    globalSetup: ["./test/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
