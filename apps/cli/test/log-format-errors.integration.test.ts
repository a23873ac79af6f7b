import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./run-cli.js";

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-log-errors-"));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Every stderr line parsed as JSON (fails the test on a line that is not). */
function jsonLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("the final error with --log-format json", () => {
  it("is one JSON object (level error, the message, the code), not a text line", async () => {
    const missing = join(directory, "backup-20260101000000.dump.gz");
    const result = await runCli(["restore", missing, "postgresql://postgres@127.0.0.1/none", "--log-format", "json"]);
    expect(result.code).toBe(1);
    const lines = jsonLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "error", event: "failed", code: "NOT_FOUND" });
    expect(String(lines[0]?.message)).not.toMatch(/^hoard:/);
    expect(typeof lines[0]?.time).toBe("string");
  });

  it("holds for usage errors too, and for HOARD_LOG_FORMAT=json", async () => {
    const usage = await runCli(["backup", "--log-format=json"]);
    expect(usage.code).toBe(2);
    expect(jsonLines(usage.stderr)).toEqual([expect.objectContaining({ level: "error", code: "USAGE" })]);
    const fromEnvironment = await runCli(["prune", directory, "--keep-last", "nope"], { HOARD_LOG_FORMAT: "json" });
    expect(fromEnvironment.code).toBe(2);
    expect(jsonLines(fromEnvironment.stderr)).toHaveLength(1);
  });

  it("stays the text line `hoard: ...` by default", async () => {
    const result = await runCli(["backup"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^hoard: [^\n]+\n$/);
  });
});
