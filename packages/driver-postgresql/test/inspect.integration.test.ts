// The hooks behind manifests, verify and drills, and the cluster script read to its end before
// psql runs it, against the real server and the round-trip fixture.
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { scratchName } from "@hoard/test-harness/vitest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createPostgresDriver } from "../src/index.ts";
import { seedFixture } from "./fixture.ts";
import { createDatabase, databaseUrl, failureOf, psql } from "./postgres.ts";

const server = inject("postgres");
let workDirectory: string;
let sourceUrl: string;

beforeAll(async () => {
  workDirectory = await mkdtemp(join(tmpdir(), "hoard-pg-inspect-"));
  sourceUrl = await createDatabase(server.url);
  await seedFixture(sourceUrl);
});

afterAll(async () => {
  await rm(workDirectory, { recursive: true, force: true });
});

function pgDump(args: string[]): Buffer {
  const dumped = spawnSync("pg_dump", [...args, `--dbname=${sourceUrl}`], { maxBuffer: 256 * 1024 * 1024 });
  if (dumped.status !== 0) throw new Error(`pg_dump failed: ${dumped.stderr.toString()}`);
  return dumped.stdout;
}

/** The bytes in small chunks, so headers and COPY rows are cut anywhere. */
function chunked(bytes: Buffer, size = 11): Readable {
  return Readable.from(
    Array.from({ length: Math.ceil(bytes.length / size) }, (_, index) => bytes.subarray(index * size, (index + 1) * size)),
  );
}

describe("postgresql inspection hooks", () => {
  it("describe names the server and pg_dump with their versions", async () => {
    const described = await createPostgresDriver({ url: sourceUrl }).describe?.({ workDirectory });
    const version = (await psql(sourceUrl, "SHOW server_version")).trim().split(" ")[0];
    expect(described?.server).toEqual({ product: "PostgreSQL", version });
    expect(described?.tool).toEqual({ name: "pg_dump", version: expect.stringMatching(/^\d+\.\d+/) });
  });

  it("checkArchive reads custom, tar, directory and plain dumps to the end and counts every table's rows as the server does", async () => {
    const driver = createPostgresDriver({ url: sourceUrl });
    const exact = await driver.inventory?.({ workDirectory, exactCounts: true });
    const expected = (exact?.items ?? [])
      .filter((item) => item.kind === "table" && item.count !== undefined)
      .map((item) => [`${item.database}.${item.name}`, item.count]);
    expect(expected.length).toBeGreaterThan(2);
    const directory = join(workDirectory, "directory-dump");
    pgDump(["--format=directory", `--file=${directory}`]);
    const inputs = [
      ["custom format", () => ({ kind: "stream" as const, stream: chunked(pgDump(["--format=custom", "--compress=0"])) })],
      ["tar format", () => ({ kind: "stream" as const, stream: chunked(pgDump(["--format=tar"])) })],
      ["plain SQL", () => ({ kind: "stream" as const, stream: chunked(pgDump(["--format=plain"])) })],
      ["directory format", () => ({ kind: "directory" as const, path: directory })],
    ] as const;
    for (const [format, input] of inputs) {
      const checked = await driver.checkArchive?.(input(), { workDirectory });
      expect(checked?.summary).toMatch(new RegExp(`^${format}, \\d+ entries in the table of contents, \\d+ tables, \\d+ rows$`));
      expect(checked?.inventory?.exactCounts).toBe(true);
      const counted = new Map(checked?.inventory?.items.map((item) => [`${item.database}.${item.name}`, item.count]));
      expect(
        expected.map(([name]) => [name, counted.get(name as string)]),
        format,
      ).toEqual(expected);
    }
  });

  it("checkArchive fails a custom dump cut short, and a plain one without its trailer", async () => {
    const driver = createPostgresDriver({ url: sourceUrl });
    const custom = pgDump(["--format=custom", "--compress=0"]);
    const cut = await failureOf(
      driver.checkArchive?.(
        { kind: "stream", stream: chunked(custom.subarray(0, Math.floor(custom.length * 0.7)), 4096) },
        { workDirectory },
      ) ?? Promise.resolve(),
    );
    expect(["TOOL_FAILED", "CORRUPT_ARCHIVE"]).toContain(cut.code);
    const plain = pgDump(["--format=plain"]);
    const untrailed = await failureOf(
      driver.checkArchive?.({ kind: "stream", stream: chunked(plain.subarray(0, plain.length - 80), 4096) }, { workDirectory }) ??
        Promise.resolve(),
    );
    expect(untrailed.code).toBe("CORRUPT_ARCHIVE");
  });

  it("a cluster script whose input fails midway is not run at all (it is read to its end first)", async () => {
    const target = await createDatabase(server.url);
    const script = `--\n-- PostgreSQL database cluster dump\n--\n\nCREATE TABLE cluster_probe (id int);\nINSERT INTO cluster_probe VALUES (1);\n${"-- filler\n".repeat(20_000)}`;
    async function* failing() {
      yield Buffer.from(script);
      await new Promise((resolve) => setTimeout(resolve, 200));
      throw new Error("the download broke");
    }
    const error = await createPostgresDriver({ url: target })
      .restore({ kind: "stream", stream: Readable.from(failing()) }, { workDirectory, replace: true })
      .then(
        () => undefined,
        (failure: unknown) => failure,
      );
    expect((error as Error | undefined)?.message).toContain("the download broke");
    expect((await psql(target, "SELECT count(*) FROM pg_tables WHERE tablename = 'cluster_probe'")).trim()).toBe("0");
  });

  it("prepareScratch creates a missing database and drops it on release; keeps an empty one; refuses a non-empty one", async () => {
    const name = scratchName("hoard_pg_scratch");
    const prepared = await createPostgresDriver({ url: databaseUrl(server.url, name) }).prepareScratch?.({ workDirectory });
    expect(prepared?.created).toBe(true);
    const exists = () => psql(server.url, `SELECT count(*) FROM pg_database WHERE datname = '${name}'`).then((text) => text.trim());
    expect(await exists()).toBe("1");
    await prepared?.release();
    expect(await exists()).toBe("0");

    const empty = await createDatabase(server.url);
    const kept = await createPostgresDriver({ url: empty }).prepareScratch?.({ workDirectory });
    expect(kept?.created).toBe(false);
    await kept?.release();
    expect((await psql(empty, "SELECT 1")).trim()).toBe("1");

    const refused = await failureOf(createPostgresDriver({ url: sourceUrl }).prepareScratch?.({ workDirectory }) ?? Promise.resolve());
    expect(refused.code).toBe("TARGET_NOT_EMPTY");
  });
});
