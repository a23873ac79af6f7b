import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, psql } from "./postgres.ts";
import { runCli } from "./run-cli.ts";

// The young generation's size at exit, written by a hook (node --import) the CLI runs with.
const hook = `
import { writeFileSync } from "node:fs";
import { getHeapSpaceStatistics } from "node:v8";
process.on("exit", () => {
  const young = getHeapSpaceStatistics().find((space) => space.space_name === "new_space");
  writeFileSync(process.env.HEAP_REPORT_FILE, String(young?.space_size ?? -1));
});
`;

const postgres = inject("postgres");
let directory: string;
let hookUrl: string;
let databaseUrl: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-cli-memory-"));
  await writeFile(join(directory, "hook.mjs"), hook);
  hookUrl = pathToFileURL(join(directory, "hook.mjs")).href;
  databaseUrl = await createDatabase(postgres.url);
  // About 60 MB of COPY text: enough allocation for V8 to grow an unbounded young generation to its largest.
  await psql(databaseUrl, "CREATE TABLE filler AS SELECT n, repeat(md5(n::text), 12) AS text FROM generate_series(1, 150000) n");
}, 120_000);

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Runs hoard with the hook and returns its result and the young generation's size at exit, in bytes. */
async function youngGenerationAfter(args: string[], nodeOptions = "") {
  const report = join(directory, `heap-${Math.random().toString(36).slice(2)}.txt`);
  const result = await runCli(args, { NODE_OPTIONS: `${nodeOptions} --import=${hookUrl}`.trim(), HEAP_REPORT_FILE: report });
  return { result, youngBytes: Number(await readFile(report, "utf8")) };
}

describe("memory", () => {
  it("a backup keeps V8's young generation at its starting size, so peak RSS does not grow with the database", async () => {
    const backups = join(directory, "backups");
    const { result, youngBytes } = await youngGenerationAfter(["backup", databaseUrl, backups, "--compression", "none", "--quiet"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect((await readdir(backups)).filter((name) => name.endsWith(".dump"))).toHaveLength(1);
    // 1 MiB semi-spaces, V8's starting size; left to grow, they reach 16 MiB each under this load.
    expect(youngBytes).toBeGreaterThan(0);
    expect(youngBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
  }, 120_000);

  it("leaves the young generation alone when the user sized it (--max-semi-space-size in NODE_OPTIONS)", async () => {
    const { result, youngBytes } = await youngGenerationAfter(
      ["backup", databaseUrl, join(directory, "sized"), "--compression", "none", "--quiet"],
      "--max-semi-space-size=8",
    );
    expect(result.code).toBe(0);
    expect(youngBytes).toBeGreaterThan(2 * 1024 * 1024);
  }, 120_000);
});
