import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { backup, createLocalStorage, restore, type Storage } from "@hoard/core";
import { silentServerOfSuite } from "@hoard/test-harness/vitest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createMariadbDriver, parseMariadbUrl } from "../src/index.ts";
import {
  accountDatabase,
  accountUrl,
  createAccount,
  createDatabase,
  databaseOf,
  databaseUrl,
  dropDatabase,
  failureOf,
  failureOfSync,
  keysOf,
  randomName,
  runSql,
  type TestAccount,
  unzstd,
} from "./mariadb.ts";

const server = inject("mariadb");
let account: TestAccount;
let sourceUrl: string;
let directory: string;
let storage: Storage;
/** The backup of sourceUrl: customers (2 rows) and a procedure. */
let key: string;

beforeAll(async () => {
  account = await createAccount(server.url);
  directory = await mkdtemp(join(tmpdir(), "hoard-mariadb-safety-"));
  storage = createLocalStorage({ directory });
  sourceUrl = await newDatabase("source");
  await runSql(
    sourceUrl,
    `CREATE TABLE customers (id INT PRIMARY KEY, body VARCHAR(40));
     INSERT INTO customers VALUES (1, 'from backup'), (2, 'also from backup');
     CREATE PROCEDURE hello() SELECT 'hello';`,
  );
  ({ key } = await backup({ driver: createMariadbDriver({ url: sourceUrl }), storage, prefix: "source" }));
});

afterAll(async () => {
  // Drops every database of the account too.
  await account?.drop();
  await rm(directory, { recursive: true, force: true });
});

/** A new empty database of the test account (dropped with the account). */
async function newDatabase(label: string): Promise<string> {
  return accountDatabase(server.url, account, label);
}

/** Everything in a database, as text, to see that nothing changed. */
async function contents(url: string): Promise<string> {
  const tables = await runSql(
    url,
    "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1",
  );
  const routines = await runSql(url, "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1");
  const rows = tables.includes("customers") ? await runSql(url, "SELECT * FROM customers ORDER BY id") : "";
  return `${tables}|${routines}|${rows}`;
}

async function occupiedTarget(): Promise<string> {
  const target = await newDatabase("occupied");
  await runSql(
    target,
    `CREATE TABLE customers (id INT PRIMARY KEY, body VARCHAR(40)); INSERT INTO customers VALUES (1, 'already there');
     CREATE TABLE orders (id INT); CREATE TABLE zebra (id INT); CREATE VIEW customer_names AS SELECT body FROM customers;`,
  );
  return target;
}

describe("a restore into a database that is not empty", () => {
  it("is refused with TARGET_NOT_EMPTY naming what is there, and nothing changes", async () => {
    const target = await occupiedTarget();
    const before = await contents(target);
    const error = await failureOf(restore({ driver: createMariadbDriver({ url: target }), storage, key }));
    expect(error.code).toBe("TARGET_NOT_EMPTY");
    expect(error.message).toBe(
      `mariadb: ${databaseOf(target)} is not empty (3 tables, 1 view, e.g. customers, orders); use --replace to restore over it`,
    );
    expect(await contents(target)).toBe(before);
  });

  it("counts routines and events too", async () => {
    for (const [sql, found] of [
      ["CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2", "1 function, e.g. twice"],
      ["CREATE EVENT tick ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1", "1 event, e.g. tick"],
    ] as const) {
      const target = await newDatabase("routine");
      await runSql(target, sql);
      const error = await failureOf(restore({ driver: createMariadbDriver({ url: target }), storage, key }));
      expect(error.code).toBe("TARGET_NOT_EMPTY");
      expect(error.message).toBe(`mariadb: ${databaseOf(target)} is not empty (${found}); use --replace to restore over it`);
    }
  });

  it("a database that does not exist yet is empty: it is created and restored", async () => {
    const target = databaseUrl(sourceUrl, randomName(`${account.databasePrefix}absent`));
    await restore({ driver: createMariadbDriver({ url: target }), storage, key });
    expect(await runSql(target, "SELECT body FROM customers ORDER BY id")).toBe("from backup\nalso from backup\n");
  });

  it("with replace, restores the backup's objects over it and leaves the others alone", async () => {
    const target = await occupiedTarget();
    await runSql(target, "CREATE PROCEDURE hello() SELECT 'old hello'");
    await restore({ driver: createMariadbDriver({ url: target }), storage, key, replace: true });
    expect(await runSql(target, "SELECT * FROM customers ORDER BY id")).toBe("1\tfrom backup\n2\talso from backup\n");
    expect(await runSql(target, "CALL hello()")).toBe("hello\n");
    expect(await runSql(target, "SHOW FULL TABLES")).toBe(
      "customer_names\tVIEW\ncustomers\tBASE TABLE\norders\tBASE TABLE\nzebra\tBASE TABLE\n",
    );
  });

  it("through a URL without a database: refuses when a database the dump restores into is not empty, and only then", async () => {
    const name = randomName(`${account.databasePrefix}named`);
    const namedUrl = accountUrl(await createDatabase(server.url, name), account.user, account.password);
    await runSql(namedUrl, "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (2);");
    // A --databases dump names its database: CREATE DATABASE and USE.
    const dumped = await backup({ driver: createMariadbDriver({ url: namedUrl, dumpOptions: ["--databases"] }), storage, prefix: "named" });
    await runSql(namedUrl, "DELETE FROM t WHERE id = 2; CREATE TABLE extra (id INT);");
    const serverUrl = databaseUrl(namedUrl, null);

    const error = await failureOf(restore({ driver: createMariadbDriver({ url: serverUrl }), storage, key: dumped.key }));
    expect(error.code).toBe("TARGET_NOT_EMPTY");
    expect(error.message).toBe(
      `mariadb: the dump restores into databases that are not empty: ${name} (2 tables, e.g. extra, t); use --replace to restore over them`,
    );
    expect(await runSql(namedUrl, "SELECT id FROM t")).toBe("1\n");
    // The SQL was copied to the work directory to be read twice; nothing is left there.
    await restore({ driver: createMariadbDriver({ url: serverUrl }), storage, key: dumped.key, replace: true });
    expect(await runSql(namedUrl, "SELECT id FROM t ORDER BY id")).toBe("1\n2\n");
    expect(await runSql(namedUrl, "SHOW TABLES")).toBe("extra\nt\n");

    // Other non-empty databases on the server (this file's source, at least) are not what the dump touches.
    await dropDatabase(server.url, name);
    for (const mode of ["stream", "file"] as const) {
      await restore({ driver: createMariadbDriver({ url: serverUrl }), storage, key: dumped.key, mode });
      expect(await runSql(namedUrl, "SELECT id FROM t ORDER BY id")).toBe("1\n2\n");
      await dropDatabase(server.url, name);
    }
  });
});

describe("secrets in the URL", () => {
  it("says which part is badly percent-encoded, without the secret or the URL", () => {
    for (const [url, part] of [
      ["mariadb://app:p@ss%zzword@127.0.0.1/shop", "password"],
      ["mariadb://a%zzpp:secret@127.0.0.1/shop", "user name"],
      ["mariadb://app:secret@127.0.0.1/sh%zzop", "database name"],
    ] as const) {
      const error = failureOfSync(() => createMariadbDriver({ url }));
      expect(error.code).toBe("INVALID_ARGUMENT");
      expect(error.message).toBe(`mariadb: the ${part} in the database URL is badly percent-encoded: write % as %25`);
      expect(error.message).not.toMatch(/URI malformed|p@ss|zzword|secret/);
    }
  });

  it("never echoes a password with an unencoded @ in an error", async () => {
    expect(parseMariadbUrl("mariadb://app:se@cret@127.0.0.1/shop")).toMatchObject({ password: "se@cret", host: "127.0.0.1" });
    for (const url of [
      "mariadb://app:se@cret@127.0.0.1:99999/shop",
      "mariadb://app:se@cret@127.0.0.1/a/b",
      "mariadb://app:se@cret@h/db?x=1",
    ]) {
      const error = failureOfSync(() => createMariadbDriver({ url }));
      expect(error.code).toBe("INVALID_ARGUMENT");
      expect(error.message).not.toMatch(/se@cret|cret@|se@/);
    }
    // The tools' own errors neither: a wrong password with an @ in it.
    const wrong = `mariadb://${account.user}:se@cret@${server.host}:${server.port}/${databaseOf(sourceUrl)}`;
    const error = await failureOf(backup({ driver: createMariadbDriver({ url: wrong }), storage, prefix: "at-sign" }));
    expect(error.code).toBe("UNAUTHENTICATED");
    expect(error.message).not.toMatch(/se@cret|cret@/);
  });
});

describe("connect timeout", () => {
  const silentServer = silentServerOfSuite();

  it("a host that accepts TCP and never answers: backup fails with UNREACHABLE within the timeout", async () => {
    const silent = silentServer();
    const url = `mariadb://app:secret@${silent.host}:${silent.port}/shop`;
    for (const mode of ["stream", "file"] as const) {
      const before = silent.connections();
      const started = Date.now();
      const error = await failureOf(
        backup({ driver: createMariadbDriver({ url, connectTimeoutMs: 2000 }), storage, prefix: "silent", mode }),
      );
      expect(error.code).toBe("UNREACHABLE");
      expect(error.message).toBe(`mariadb: no answer from ${silent.host}:${silent.port} within 2 s`);
      // Gave up within the timeout plus slack.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(silent.connections()).toBeGreaterThan(before);
    }
    expect((await keysOf(storage)).filter((name) => name.startsWith("silent"))).toEqual([]);
  });

  it("a host that accepts TCP and never answers: restore fails with UNREACHABLE within the timeout", async () => {
    const silent = silentServer();
    const url = `mariadb://app:secret@${silent.host}:${silent.port}/shop`;
    // Checking the target, creating the database, and the restore client itself (replace, no CREATE DATABASE).
    for (const settings of [{}, { replace: true }, { replace: true, createDatabase: false }]) {
      const driver = createMariadbDriver({ url, connectTimeoutMs: 2000, createDatabase: settings.createDatabase });
      const started = Date.now();
      const error = await failureOf(restore({ driver, storage, key, replace: settings.replace }));
      expect(error.code).toBe("UNREACHABLE");
      expect(error.message).toBe(`mariadb: no answer from ${silent.host}:${silent.port} within 2 s`);
      expect(Date.now() - started).toBeLessThan(15_000);
    }
  });

  it("a dump that waits longer than the connect timeout after connecting is not stopped", async () => {
    const _silent = silentServer();
    const target = await newDatabase("locked");
    await runSql(target, "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO t VALUES (1);");
    const table = `${databaseOf(target)}.t`;
    // The default flags wait for the table after "-- Starting transaction..."; --lock-all-tables
    // waits in FLUSH TABLES WITH READ LOCK (which needs RELOAD: as root) before it says anything.
    for (const [url, dumpOptions] of [
      [target, []],
      [databaseUrl(server.url, databaseOf(target)), ["--skip-single-transaction", "--lock-all-tables"]],
    ] as const) {
      // Another session holds a write lock for 4 s: the dump connects at once, then waits for it.
      const holding = runSql(server.url, `LOCK TABLES ${table} WRITE; SELECT SLEEP(4); UNLOCK TABLES;`, { database: null });
      for (let tries = 0; ; tries += 1) {
        const sleeping = await runSql(server.url, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(4)'", {
          database: null,
        });
        if (sleeping === "1\n") break;
        if (tries > 200) throw new Error("the lock was never taken");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const driver = createMariadbDriver({ url, dumpOptions: [...dumpOptions], connectTimeoutMs: 1000 });
      const { key: locked } = await backup({ driver, storage, prefix: "locked" });
      await holding;
      const sql = (await unzstd(await readFile(join(directory, locked)))).toString("utf8");
      expect(sql).toMatch(/INSERT INTO `t` VALUES\s*\(1\);/);
      await rm(join(directory, locked));
    }
  });
});

describe("a dump that is not what it claims to be", () => {
  it("--result-file sends the dump elsewhere: TOOL_FAILED, nothing stored", async () => {
    const elsewhere = join(directory, "elsewhere.sql");
    for (const dumpOptions of [[`--result-file=${elsewhere}`], ["--skip-comments", `--result-file=${elsewhere}`]]) {
      for (const mode of ["stream", "file"] as const) {
        const driver = createMariadbDriver({ url: sourceUrl, dumpOptions });
        const error = await failureOf(backup({ driver, storage, prefix: "redirected", mode }));
        expect(error.code).toBe("TOOL_FAILED");
        expect(error.message).toBe(
          "mariadb-dump produced no SQL dump on its output (does a --dump-option redirect it, e.g. --result-file?)",
        );
      }
    }
    expect((await keysOf(storage)).filter((name) => name.startsWith("redirected"))).toEqual([]);
    // mariadb-dump did write the dump, to the file.
    expect((await stat(elsewhere)).size).toBeGreaterThan(0);
  });

  it("a real dump passes whole, its first bytes as mariadb-dump 10.11 writes them", async () => {
    expect(key).toMatch(/^source-\d{14}\.sql\.zst$/);
    const sql = (await unzstd(await readFile(join(directory, key)))).toString("utf8");
    expect(sql.startsWith("/*M!999999\\- enable the sandbox mode */")).toBe(true);
    expect(sql).toMatch(/-- Dump completed on .*\n$/);
  });
});

describe("an aborted restore", () => {
  it("keeps the driver's word: ABORTED, and the database may be partially restored", async () => {
    const source = await newDatabase("big");
    await runSql(
      source,
      "CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(300)); INSERT INTO big SELECT seq, REPEAT(SHA2(seq, 256), 4) FROM seq_1_to_60000;",
    );
    // Without LOCK TABLES around the INSERTs, so this test can count the committed rows while the restore runs.
    const { key: big } = await backup({
      driver: createMariadbDriver({ url: source, dumpOptions: ["--skip-add-locks"] }),
      storage,
      prefix: "big",
      compressionLevel: 1,
    });
    const sql = await unzstd(await readFile(join(directory, big)));
    const target = await newDatabase("aborted");
    // Feed the first half only, so the restore is midway for sure when it is aborted.
    const input = new PassThrough();
    input.write(sql.subarray(0, Math.floor(sql.length / 2)));
    const controller = new AbortController();
    const restoring = failureOf(
      createMariadbDriver({ url: target }).restore(
        { kind: "stream", stream: input },
        { workDirectory: directory, signal: controller.signal },
      ),
    );
    // Rows are committed as the INSERTs run: wait for some.
    for (let tries = 0; ; tries += 1) {
      const tables = await runSql(target, "SHOW TABLES");
      if (tables === "big\n" && (await runSql(target, "SELECT COUNT(*) > 0 FROM big")) === "1\n") break;
      if (tries > 500) throw new Error("the restore never inserted a row");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    controller.abort();
    const error = await restoring;
    expect(error.code).toBe("ABORTED");
    expect(error.message).toBe(`mariadb: restore into ${databaseOf(target)} aborted; the database may be partially restored`);
    expect(Number(await runSql(target, "SELECT COUNT(*) FROM big"))).toBeGreaterThan(0);
  });
});
