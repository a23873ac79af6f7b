// The hooks behind manifests, verify and drills against the real server and the round-trip
// fixture (awkward names, every type, views, a sequence, a MyISAM table).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createMariadbDriver } from "../src/driver.ts";
import { seedFixture } from "./fixture.ts";
import { createDatabase, databaseOf, databaseUrl, dropDatabase, failureOf, runSql } from "./mariadb.ts";

const serverUrl = inject("mariadb").url;
let workDirectory: string;
let sourceUrl: string;

beforeAll(async () => {
  workDirectory = await mkdtemp(join(tmpdir(), "hoard-mariadb-inspect-"));
  sourceUrl = await createDatabase(serverUrl);
  await seedFixture(sourceUrl);
});

afterAll(async () => {
  await dropDatabase(serverUrl, databaseOf(sourceUrl));
  await rm(workDirectory, { recursive: true, force: true });
});

/** The dump of the fixture, as bytes (small). */
async function dumpOf(url: string): Promise<Buffer> {
  const output = await createMariadbDriver({ url }).dump({ workDirectory });
  if (output.kind !== "stream") throw new Error("stream expected");
  const chunks: Buffer[] = [];
  for await (const chunk of output.stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe("mariadb inspection hooks", () => {
  it("describe names the server and the dump tool with their versions", async () => {
    const described = await createMariadbDriver({ url: sourceUrl }).describe?.({ workDirectory });
    const version = (await runSql(serverUrl, "SELECT VERSION()", { database: null })).trim();
    expect(described?.server).toEqual({ product: "MariaDB", version: version.split("-")[0] });
    expect(described?.tool?.name).toMatch(/^(mariadb-dump|mysqldump)$/);
    expect(described?.tool?.version).toMatch(/^\d+\.\d+/);
  });

  it("checkArchive counts every table's rows exactly, as the server counts them, awkward names and values included", async () => {
    const driver = createMariadbDriver({ url: sourceUrl });
    const dump = await dumpOf(sourceUrl);
    // Small chunks: headers, strings and escapes are cut anywhere.
    const chunks = Array.from({ length: Math.ceil(dump.length / 7) }, (_, index) => dump.subarray(index * 7, index * 7 + 7));
    const checked = await driver.checkArchive?.({ kind: "stream", stream: Readable.from(chunks) }, { workDirectory });
    const exact = await driver.inventory?.({ workDirectory, exactCounts: true });
    const tables = (exact?.items ?? []).filter((item) => item.kind === "table");
    expect(tables.length).toBeGreaterThan(3);
    expect(checked?.inventory?.exactCounts).toBe(true);
    const counted = new Map(checked?.inventory?.items.map((item) => [item.name, item.count]));
    for (const table of tables) expect([table.name, counted.get(table.name)]).toEqual([table.name, table.count]);
    expect(checked?.summary).toMatch(/^complete SQL dump, \d+ tables, \d+ rows in \d+ INSERT statements$/);
  });

  it("checkArchive fails a dump that does not end with '-- Dump completed'", async () => {
    const driver = createMariadbDriver({ url: sourceUrl });
    const dump = await dumpOf(sourceUrl);
    const error = await failureOf(
      driver.checkArchive?.({ kind: "stream", stream: Readable.from([dump.subarray(0, dump.length - 40)]) }, { workDirectory }) ??
        Promise.resolve(),
    );
    expect(error.code).toBe("CORRUPT_ARCHIVE");
  });

  it("prepareScratch creates a missing database and drops it on release; keeps an empty one; refuses a non-empty one", async () => {
    const name = `${databaseOf(sourceUrl)}_scratch`;
    const scratch = createMariadbDriver({ url: databaseUrl(serverUrl, name) });
    const prepared = await scratch.prepareScratch?.({ workDirectory });
    expect(prepared?.created).toBe(true);
    expect(
      (
        await runSql(serverUrl, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${name}'`, { database: null })
      ).trim(),
    ).toBe("1");
    await prepared?.release();
    expect(
      (
        await runSql(serverUrl, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${name}'`, { database: null })
      ).trim(),
    ).toBe("0");

    const emptyUrl = await createDatabase(serverUrl);
    const kept = await createMariadbDriver({ url: emptyUrl }).prepareScratch?.({ workDirectory });
    expect(kept?.created).toBe(false);
    await kept?.release();
    expect((await runSql(emptyUrl, "SELECT DATABASE()")).trim()).toBe(databaseOf(emptyUrl));
    await dropDatabase(serverUrl, databaseOf(emptyUrl));

    const refused = await failureOf(createMariadbDriver({ url: sourceUrl }).prepareScratch?.({ workDirectory }) ?? Promise.resolve());
    expect(refused.code).toBe("TARGET_NOT_EMPTY");
  });
});
