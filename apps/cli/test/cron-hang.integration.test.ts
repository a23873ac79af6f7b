import { silentServerOfSuite } from "@hoard/test-harness/vitest";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, seedSmall } from "./postgres.ts";
import { collect, startCli } from "./run-cli.ts";

// A storage endpoint that accepts connections and never answers used to hang the first scheduled
// backup forever, and every later tick was "skipped": backups silently stopped. With --timeout the
// hung run fails, loudly, and the next tick runs again.

const postgres = inject("postgres");

let sourceUrl: string;
const silentServer = silentServerOfSuite();

beforeAll(async () => {
  sourceUrl = await createDatabase(postgres.url);
  await seedSmall(sourceUrl);
});

describe("--cron against a silent storage endpoint", () => {
  it("fails each run within the timeout and keeps scheduling new runs", async () => {
    const child = startCli(
      [
        "backup",
        sourceUrl,
        "s3://bucket/hung",
        "--cron",
        "* * * * * *",
        "--timeout",
        "1s",
        "--s3-endpoint",
        silentServer().url,
        "--s3-force-path-style",
        "--s3-region",
        "us-east-1",
      ],
      { AWS_ACCESS_KEY_ID: "AKIDUMMY", AWS_SECRET_ACCESS_KEY: "dummy-secret-key" },
    );
    const done = collect(child);
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const failures = () => stderr.split("\n").filter((line) => line.includes("scheduled backup failed")).length;
    const deadline = Date.now() + 45_000;
    while (Date.now() < deadline && failures() < 2) await new Promise((resolve) => setTimeout(resolve, 250));
    child.kill("SIGTERM");
    const result = await done;
    // Two runs failed, one after the other: the schedule did not stall on the first.
    expect(failures(), result.stderr).toBeGreaterThanOrEqual(2);
    const failureLines = result.stderr.split("\n").filter((line) => line.includes("scheduled backup failed"));
    for (const line of failureLines) expect(line).toContain(`no answer from ${silentServer().url}`);
    expect(result.stdout).toBe("");
    expect(result.code).toBe(1);
  });
});
