import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backup, createLocalStorage, drill, type HoardEvent, type Logger, readManifest, restore, verify } from "@hoard/core";
import { describeDriverRoundTrip } from "@hoard/core/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDriverFromUrl, createPostgresDriver } from "../src/index.ts";
import { seedFixture, snapshotFixture } from "./fixture.ts";
import { createDatabase, failureOf, pgTool, psql, unzstd } from "./postgres.ts";

const server = inject("postgres");
const schemaOf = (url: string) => pgTool("pg_dump", ["--schema-only", `--dbname=${url}`], url);

// The shared round trip (stream and file mode) with parallel dumps and restores.
describeDriverRoundTrip("postgresql with pgJobs", {
  createDatabase: () => createDatabase(server.url),
  seed: seedFixture,
  snapshot: (url) => snapshotFixture(url, schemaOf),
  driver: (url) => createPostgresDriver({ url, jobs: 3 }),
});

/** Two tables with enough rows for pg_dump's data files to be worth compressing. */
const bulkSql = `
CREATE TABLE bulk_events (id bigint PRIMARY KEY, at timestamptz NOT NULL, payload jsonb, note text);
INSERT INTO bulk_events SELECT i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute',
  jsonb_build_object('user', i % 977, 'kind', (ARRAY['view', 'click', 'buy'])[1 + i % 3], 'value', i * 7 % 1000),
  CASE WHEN i % 5 = 0 THEN NULL ELSE md5(i::text) END FROM generate_series(1, 20000) AS i;
CREATE TABLE bulk_blobs (id int PRIMARY KEY, content bytea NOT NULL);
INSERT INTO bulk_blobs SELECT i, decode(repeat(md5(i::text), 16), 'hex') FROM generate_series(1, 2000) AS i;
`;

/** Row counts and an MD5 of every row, in key order, of the bulk tables. */
async function bulkDigest(url: string): Promise<string> {
  return psql(
    url,
    `SELECT 'bulk_events', count(*), md5(string_agg(t::text, E'\\n' ORDER BY id)) FROM bulk_events t
     UNION ALL SELECT 'bulk_blobs', count(*), md5(string_agg(t::text, E'\\n' ORDER BY id)) FROM bulk_blobs t`,
  );
}

/** The member names of an uncompressed tar. */
function tarMembers(tar: Buffer): string[] {
  const names: string[] = [];
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const name = header.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
    const prefix = header.subarray(345, 500).toString("utf8").replace(/\0.*$/s, "");
    names.push(prefix ? `${prefix}/${name}` : name);
    const size = Number.parseInt(header.subarray(124, 136).toString("latin1").replace(/\0.*$/s, "").trim() || "0", 8);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

function recordingLogger(): Logger & { messages: string[] } {
  const messages: string[] = [];
  return {
    messages,
    event(event: HoardEvent) {
      if (event.type === "log") messages.push(event.message);
    },
  };
}

describe("parallel dumps and restores", () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "hoard-pg-jobs-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("stores a directory dump as .dump.tar; restores it with --jobs (saying it is not one transaction) and without", async () => {
    const source = await createDatabase(server.url);
    await seedFixture(source);
    const expected = await snapshotFixture(source, schemaOf);
    const storage = createLocalStorage({ directory });
    const dumpLogger = recordingLogger();
    const { key } = await backup({ driver: createDriverFromUrl(source, { pgJobs: 3 }), storage, prefix: "jobs", logger: dumpLogger });
    expect(key).toMatch(/^jobs-\d{14}\.dump\.tar$/);
    const messages = dumpLogger.messages.join("\n");
    expect(messages).toMatch(/--format=directory --jobs=3 .*the whole dump is on local disk before it is stored/);
    expect(messages).toMatch(
      /postgresql: pg_dump wrote \d+ bytes into \S+postgresql-directory-dump \(each table's file compressed with gzip\)/,
    );
    expect(messages).toContain(
      "postgresql: the dump is compressed already (gzip, each table's file by pg_dump): stored without compressing it again",
    );
    const parallel = await createDatabase(server.url);
    const logger = recordingLogger();
    await restore({ driver: createPostgresDriver({ url: parallel, jobs: 3, logger }), storage, key, logger });
    expect(await snapshotFixture(parallel, schemaOf)).toEqual(expected);
    expect(logger.messages).toContain(
      `postgresql: pg_restore --jobs=3: not in one transaction (pg_restore cannot run parallel jobs in one); a failure leaves ${new URL(parallel).pathname.slice(1)} partially restored`,
    );
    const single = await createDatabase(server.url);
    await restore({ driver: createPostgresDriver({ url: single }), storage, key });
    expect(await snapshotFixture(single, schemaOf)).toEqual(expected);
  });

  it("a --pg-jobs backup of a database with bulk data is stored as .dump.tar with compression none, restores exactly, and passes verify and drill", async () => {
    const source = await createDatabase(server.url);
    await seedFixture(source);
    await psql(source, bulkSql);
    const expected = { fixture: await snapshotFixture(source, schemaOf), bulk: await bulkDigest(source) };
    const storage = createLocalStorage({ directory });
    const result = await backup({ driver: createPostgresDriver({ url: source, jobs: 2 }), storage, prefix: "bulk", verify: true });
    expect(result.key).toMatch(/^bulk-\d{14}\.dump\.tar$/);
    expect(result.manifest.compression).toEqual({ format: "none" });
    expect((await readManifest(storage, result.key))?.compression).toEqual({ format: "none" });
    expect(result.verification?.archive?.summary).toMatch(/^directory format, /);
    // A plain tar of pg_dump's files: its members are the table of contents and gzip-compressed data files.
    const stored = await readFile(join(directory, result.key));
    expect(stored.subarray(257, 262).toString("latin1")).toBe("ustar");
    expect(tarMembers(stored).some((name) => /^\.\/\d+\.dat\.gz$/.test(name))).toBe(true);
    // Restored in one transaction and with jobs: the same rows, counts and checksums.
    for (const jobs of [undefined, 2]) {
      const target = await createDatabase(server.url);
      await restore({ driver: createPostgresDriver({ url: target, ...(jobs && { jobs }) }), storage, key: result.key });
      expect({ fixture: await snapshotFixture(target, schemaOf), bulk: await bulkDigest(target) }).toEqual(expected);
    }
    const verified = await verify({ storage, key: result.key, driver: createPostgresDriver({ url: source }) });
    expect(verified.sha256).toBe(result.manifest.object.sha256);
    const scratch = await createDatabase(server.url);
    const drilled = await drill({ storage, key: result.key, driver: createPostgresDriver({ url: scratch }) });
    expect(drilled.compared.items).toBeGreaterThan(0);
    expect(await bulkDigest(scratch)).toEqual(expected.bulk);
  });

  it("a compression the backup names is applied (.dump.tar.gz, as before), and such backups still restore", async () => {
    const source = await createDatabase(server.url);
    await seedFixture(source);
    await psql(source, bulkSql);
    const expected = await bulkDigest(source);
    const storage = createLocalStorage({ directory });
    const logger = recordingLogger();
    const result = await backup({
      driver: createPostgresDriver({ url: source, jobs: 2 }),
      storage,
      prefix: "named",
      compression: "gzip",
      logger,
    });
    expect(result.key).toMatch(/^named-\d{14}\.dump\.tar\.gz$/);
    expect(result.manifest.compression).toEqual({ format: "gzip", level: 6 });
    expect(logger.messages).toContain(
      "postgresql: the dump is compressed already (gzip, each table's file by pg_dump); compressing it again with gzip, as asked, saves little",
    );
    for (const jobs of [undefined, 2]) {
      const target = await createDatabase(server.url);
      await restore({ driver: createPostgresDriver({ url: target, ...(jobs && { jobs }) }), storage, key: result.key });
      expect(await bulkDigest(target)).toEqual(expected);
    }
  });

  it("--compress=0 for pg_dump leaves the files uncompressed, and core compresses the tar with the default zstd (.dump.tar.zst)", async () => {
    const source = await createDatabase(server.url);
    await psql(source, bulkSql);
    const expected = await bulkDigest(source);
    const storage = createLocalStorage({ directory });
    const logger = recordingLogger();
    const driver = createPostgresDriver({ url: source, jobs: 2, dumpOptions: ["--compress=0"] });
    const result = await backup({ driver, storage, prefix: "z0", logger });
    expect(result.key).toMatch(/^z0-\d{14}\.dump\.tar\.zst$/);
    expect(result.manifest.compression).toEqual({ format: "zstd", level: 3, minMatch: 6 });
    expect(logger.messages.join("\n")).toMatch(/pg_dump wrote \d+ bytes into \S+ \(uncompressed\)/);
    expect(tarMembers(await unzstd(await readFile(join(directory, result.key)))).some((name) => /^\.\/\d+\.dat$/.test(name))).toBe(true);
    const target = await createDatabase(server.url);
    await restore({ driver: createPostgresDriver({ url: target, jobs: 2 }), storage, key: result.key });
    expect(await bulkDigest(target)).toEqual(expected);
  });

  it("a failed parallel restore says the database may be partially restored", async () => {
    const source = await createDatabase(server.url);
    await seedFixture(source);
    const storage = createLocalStorage({ directory });
    const { key } = await backup({ driver: createPostgresDriver({ url: source, jobs: 2 }), storage, prefix: "jobs-fail" });
    const target = await createDatabase(server.url);
    // A view outside the backup on a table in it: --clean cannot drop the table.
    await psql(target, "CREATE TABLE child (id int); CREATE VIEW keeps_child AS SELECT id FROM child");
    const name = new URL(target).pathname.slice(1);
    const failure = await failureOf(restore({ driver: createPostgresDriver({ url: target, jobs: 2 }), storage, key, replace: true }));
    expect(failure.code).toBe("TOOL_FAILED");
    expect(failure.message).toMatch(
      new RegExp(`^pg_restore failed .*; pg_restore --jobs does not run in one transaction, so ${name} may be partially restored$`),
    );
  });

  it("pgJobs is a whole number from 2", () => {
    expect(() => createDriverFromUrl(`${server.url}`, { pgJobs: 1 })).toThrow(/pg-jobs|pgJobs/);
  });
});
