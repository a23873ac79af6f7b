import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { backup, createLocalStorage, isHoardError, restore, type Storage } from "@hoard/core";
import { type PostgresServer, startThrowawayPostgres } from "@hoard/test-harness";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createPostgresDriver } from "../src/index.ts";
import { createDatabase, databaseUrl, psql } from "./postgres.ts";

const server = inject("postgres");

/** Runs `command args` and stores its stdout under `key`, optionally piped through a compressor. */
async function storeToolOutput(
  storage: Storage,
  key: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  compressor?: string[],
) {
  const producer = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  let output: Readable = producer.stdout;
  if (compressor) {
    const [program, ...flags] = compressor as [string, ...string[]];
    const compress = spawn(program, flags, { stdio: ["pipe", "pipe", "inherit"] });
    producer.stdout.pipe(compress.stdin);
    output = compress.stdout;
  }
  await storage.upload(key, output);
}

let directory: string;
let storage: Storage;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-pg-failures-"));
  storage = createLocalStorage({ directory });
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function storedKeys(): Promise<string[]> {
  return (await readdir(directory)).sort();
}

describe("restoring dumps made elsewhere", () => {
  it("restores a plain SQL dump made by pg_dump and gzip", async () => {
    const source = await createDatabase(server.url);
    await psql(source, "CREATE TABLE note (id int PRIMARY KEY, body text); INSERT INTO note VALUES (1, 'plain ✓'), (2, NULL)");
    await storeToolOutput(storage, "plain-20260101000000.sql.gz", "pg_dump", ["--format=plain", `--dbname=${source}`], {}, ["gzip", "-c"]);
    const target = await createDatabase(server.url);
    await restore({ driver: createPostgresDriver({ url: target }), storage, key: "plain-20260101000000.sql.gz" });
    expect(await psql(target, "SELECT id || ':' || coalesce(body, 'null') FROM note ORDER BY id")).toBe("1:plain ✓\n2:null\n");
  });

  it("restores a plain dump whose SELECTs make psql print more than a pipe holds (many sequences)", async () => {
    // pg_dump writes one SELECT pg_catalog.setval(...) per sequence; psql prints each result even
    // with --quiet. 3000 sequences print about 150 KB: an unread stdout used to hang the restore.
    const source = await createDatabase(server.url);
    await psql(
      source,
      "DO $$ BEGIN FOR i IN 0..2999 LOOP EXECUTE format('CREATE SEQUENCE s%s', i); PERFORM setval(format('s%s', i), i + 1); END LOOP; END $$",
    );
    await storeToolOutput(storage, "sequences-20260101000000.sql.gz", "pg_dump", ["--format=plain", `--dbname=${source}`], {}, [
      "gzip",
      "-c",
    ]);
    const target = await createDatabase(server.url);
    const outcome = await Promise.race([
      restore({ driver: createPostgresDriver({ url: target }), storage, key: "sequences-20260101000000.sql.gz" }).then(() => "restored"),
      new Promise((resolve) => setTimeout(resolve, 60_000, "still restoring after 60 s")),
    ]);
    expect(outcome).toBe("restored");
    expect(await psql(target, "SELECT count(*) || ':' || (SELECT last_value FROM s2999) FROM pg_sequences")).toBe("3000:3000\n");
  });

  it("restores a compressed custom-format dump made by pg_dump -Fc, stored without extension layers", async () => {
    const source = await createDatabase(server.url);
    await psql(source, "CREATE TABLE note (id int PRIMARY KEY); INSERT INTO note SELECT generate_series(1, 100)");
    await storeToolOutput(storage, "custom-20260101000000.dump", "pg_dump", ["-Fc", `--dbname=${source}`], {});
    const target = await createDatabase(server.url);
    await restore({ driver: createPostgresDriver({ url: target }), storage, key: "custom-20260101000000.dump" });
    expect(await psql(target, "SELECT sum(id) FROM note")).toBe("5050\n");
  });

  it("restores pg_dump's tar format, unpacked as a directory", async () => {
    const source = await createDatabase(server.url);
    await psql(source, "CREATE TABLE note (id int PRIMARY KEY); INSERT INTO note SELECT generate_series(1, 10)");
    await storeToolOutput(storage, "tarred-20260101000000.tar.gz", "pg_dump", ["-Ft", `--dbname=${source}`], {}, ["gzip", "-c"]);
    const target = await createDatabase(server.url);
    await restore({ driver: createPostgresDriver({ url: target }), storage, key: "tarred-20260101000000.tar.gz" });
    expect(await psql(target, "SELECT sum(id) FROM note")).toBe("55\n");
  });

  it("restores a whole cluster from `pg_dumpall | bzip2`, as awesome-database-backup stores it", async () => {
    const origin = await startThrowawayPostgres();
    const destination = await startThrowawayPostgres();
    try {
      await psql(origin.url, "CREATE ROLE app_owner LOGIN");
      await psql(origin.url, "CREATE DATABASE legacy_app OWNER app_owner");
      await psql(
        origin.databaseUrl("legacy_app"),
        "CREATE TABLE account (id int PRIMARY KEY, name text); INSERT INTO account VALUES (1, 'ada'), (2, 'grace')",
      );
      await storeToolOutput(storage, "cluster-20260101000000.sql.bz2", "pg_dumpall", [`--dbname=${origin.url}`], {}, ["bzip2", "-c"]);
      await restore({ driver: createPostgresDriver({ url: destination.url }), storage, key: "cluster-20260101000000.sql.bz2" });
      expect(await psql(destination.databaseUrl("legacy_app"), "SELECT string_agg(name, ',' ORDER BY id) FROM account")).toBe(
        "ada,grace\n",
      );
      expect(await psql(destination.url, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'legacy_app'")).toBe(
        "app_owner\n",
      );
    } finally {
      await Promise.all([origin.stop(), destination.stop()]);
    }
  });
});

describe("failures leave nothing that looks like a backup", () => {
  let secured: PostgresServer;
  const password = "correct horse battery staple";

  beforeAll(async () => {
    secured = await startThrowawayPostgres({ password });
  });

  afterAll(async () => {
    await secured?.stop();
  });

  it("fails on a wrong password with the server's message and stores nothing", async () => {
    const before = await storedKeys();
    const url = new URL(secured.databaseUrl("postgres"));
    url.password = "wrong password";
    const error = await backup({ driver: createPostgresDriver({ url: url.toString() }), storage, prefix: "wrong-password" }).catch(
      (caught: unknown) => caught,
    );
    expect(isHoardError(error, "UNAUTHENTICATED")).toBe(true);
    expect((error as Error).message).toMatch(
      /^postgresql: cannot ask the server its version: authentication failed: check the user and password in the URL/,
    );
    expect((error as Error).message).not.toContain("wrong password");
    expect(await storedKeys()).toEqual(before);
  });

  it("fails on a missing database and stores nothing", async () => {
    const before = await storedKeys();
    const error = await backup({
      driver: createPostgresDriver({ url: databaseUrl(server.url, "hoard_never_created") }),
      storage,
      prefix: "missing",
      mode: "file",
    }).catch((caught: unknown) => caught);
    expect(isHoardError(error, "NOT_FOUND")).toBe(true);
    expect((error as Error).message).toBe('postgresql: cannot ask the server its version: database "hoard_never_created" does not exist');
    expect(await storedKeys()).toEqual(before);
  });

  it("keeps the password, password= and sslpassword= out of every process's arguments", async () => {
    await psql(secured.url, "CREATE TABLE IF NOT EXISTS filler AS SELECT n, repeat('x', 500) AS body FROM generate_series(1, 20000) n");
    const sslPassword = "key passphrase & more";
    const withoutUserinfoPassword = new URL(secured.url);
    withoutUserinfoPassword.password = "";
    const inQuery = `${withoutUserinfoPassword.toString()}?sslmode=prefer&password=${encodeURIComponent(password)}`;
    const cases = [
      { url: secured.url, secrets: [password] },
      { url: inQuery, secrets: [password] },
      { url: `${inQuery}&sslpassword=${encodeURIComponent(sslPassword)}`, secrets: [password, sslPassword], serviceFile: true },
    ];
    for (const { url, secrets, serviceFile } of cases) {
      const workDirectory = await mkdtemp(join(directory, "work-"));
      const driver = createPostgresDriver({ url });
      const output = await driver.dump({ workDirectory });
      if (output.kind !== "stream") throw new Error("expected a stream");
      // The dump blocks on its full pipe until read: look at every process's command line while it runs.
      let commandLines: string[] = [];
      for (let tries = 0; commandLines.length === 0 && tries < 500; tries += 1) {
        for (const pid of await readdir("/proc")) {
          if (!/^\d+$/.test(pid)) continue;
          const text = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
          if (text.includes("pg_dump") && text.includes("--format=custom")) {
            commandLines.push(text.replaceAll("\0", " "));
          }
        }
        if (commandLines.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      commandLines = [...new Set(commandLines)];
      expect(commandLines.length).toBeGreaterThan(0);
      for (const line of commandLines) {
        for (const secret of secrets) {
          expect(line).not.toContain(secret);
          expect(line).not.toContain(encodeURIComponent(secret));
        }
        expect(line).not.toMatch(/[?&](ssl)?password=/);
      }
      const entries = await readdir(workDirectory);
      if (serviceFile) {
        // sslpassword went into a private service file in the work directory, named by PGSERVICEFILE.
        expect(entries).toHaveLength(1);
        const file = join(workDirectory, entries[0] as string, "pg_service.conf");
        expect((await stat(file)).mode & 0o777).toBe(0o600);
        expect(await readFile(file, "utf8")).toBe(`[hoard]\nsslpassword=${sslPassword}\n`);
      } else {
        expect(entries).toEqual([]);
      }
      // The dump works with the password from the query (the server asks for it) and the service file.
      const chunks: Buffer[] = [];
      for await (const chunk of output.stream) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).subarray(0, 5).toString("latin1")).toBe("PGDMP");
      for (let tries = 0; (await readdir(workDirectory)).length > 0 && tries < 100; tries += 1) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await readdir(workDirectory)).toEqual([]);
    }
  });

  it("fails when the server is killed midway and stores nothing", async () => {
    const doomed = await startThrowawayPostgres();
    try {
      await psql(doomed.url, "CREATE TABLE big AS SELECT n, md5(n::text) || repeat('y', 400) AS body FROM generate_series(1, 400000) n");
      const before = await storedKeys();
      let stopping: Promise<void> | undefined;
      const error = await backup({
        driver: createPostgresDriver({ url: doomed.url }),
        storage,
        prefix: "killed",
        compressionLevel: 9,
        logger: {
          event(event) {
            if (event.type === "progress" && event.bytes > 0) stopping ??= doomed.stop();
          },
        },
      }).catch((caught: unknown) => caught);
      await stopping;
      expect(isHoardError(error, "TOOL_FAILED")).toBe(true);
      expect((error as Error).message).toMatch(/^pg_dump failed/);
      expect(await storedKeys()).toEqual(before);
    } finally {
      await doomed.stop();
    }
  });

  it("restores nothing from a truncated backup and says the database is unchanged", async () => {
    const source = await createDatabase(server.url);
    await psql(source, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 50000)");
    // gzip level 0 (stored): the raw dump is in the backup as it is.
    const made = await backup({
      driver: createPostgresDriver({ url: source }),
      storage,
      prefix: "to-truncate",
      compression: "gzip",
      compressionLevel: 0,
    });
    const whole = await readFile(join(directory, made.key));
    // Cut inside the data but keep a valid gzip stream: store the raw dump's first half, gzipped afresh.
    const { gunzipSync, gzipSync } = await import("node:zlib");
    const raw = gunzipSync(whole);
    await storage.upload("cut-20260101000000.dump.gz", Readable.from([gzipSync(raw.subarray(0, Math.floor(raw.length / 2)))]));
    const target = await createDatabase(server.url);
    const error = await restore({ driver: createPostgresDriver({ url: target }), storage, key: "cut-20260101000000.dump.gz" }).catch(
      (caught: unknown) => caught,
    );
    // hoard reads the archive's data on its way to pg_restore (data-chunks.ts) and finds the cut itself.
    expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
    expect((error as Error).message).toBe(
      "postgresql: the custom-format archive ends inside its data: it is truncated; the restore ran in one transaction, so the database was left unchanged",
    );
    expect(await psql(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).toBe("0\n");
  });
});
