import { access, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";
import { backup, restore, type Storage } from "@hoard/core";
import { findExecutable } from "@hoard/test-harness";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { createDriverFromUrl, createMariadbDriver } from "../src/index.ts";
import {
  accountUrl,
  accountWithSource,
  createDatabase,
  databaseOf,
  databaseUrl,
  dropDatabase,
  freshLocalStorage,
  randomName,
  runSql,
  type TestAccount,
} from "./mariadb.ts";

const server = inject("mariadb");
let account: TestAccount;
let sourceUrl: string;
let directory: string;
let storage: Storage;

beforeAll(async () => {
  ({ account, sourceUrl } = await accountWithSource(
    server.url,
    "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(20)); INSERT INTO t VALUES (1, 'one'), (2, 'twö');",
  ));
});

afterAll(async () => {
  await account?.drop();
});

beforeEach(async () => {
  ({ directory, storage } = await freshLocalStorage("hoard-mariadb-restore-"));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const rowsOf = (url: string) => runSql(url, "SELECT * FROM t ORDER BY id");

describe("restore", () => {
  it("creates the target database when it does not exist", async () => {
    const { key } = await backup({ driver: createMariadbDriver({ url: sourceUrl }), storage });
    const targetUrl = databaseUrl(sourceUrl, randomName(`${account.databasePrefix}new`));
    await restore({ driver: createMariadbDriver({ url: targetUrl }), storage, key });
    expect(await rowsOf(targetUrl)).toBe("1\tone\n2\ttwö\n");
  });

  it("restores plain SQL written by hand, gzipped, with DELIMITER blocks", async () => {
    const sql = [
      "-- not made by mariadb-dump",
      "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(20));",
      "INSERT INTO t VALUES (1, 'one'), (2, 'twö');",
      "DELIMITER //",
      "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END //",
      "DELIMITER ;",
      "INSERT INTO t VALUES (3, 'line\\r\\nbreak');",
      "",
    ].join("\r\n");
    await storage.upload("backup-20260101000000.sql.gz", Readable.from([Buffer.from(sql)]).pipe(createGzip()));
    const targetUrl = databaseUrl(sourceUrl, randomName(`${account.databasePrefix}plain`));
    await restore({ driver: createMariadbDriver({ url: targetUrl }), storage, key: "backup-20260101000000.sql.gz" });
    expect(await runSql(targetUrl, "SELECT id, HEX(note) FROM t ORDER BY id")).toBe(
      `1\t${Buffer.from("one").toString("hex").toUpperCase()}\n2\t${Buffer.from("twö").toString("hex").toUpperCase()}\n3\t6C696E650D0A627265616B\n`,
    );
    expect(await runSql(targetUrl, "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()")).toBe("p\n");
  });

  it("refuses client commands in the SQL that would run programs (--binary-mode)", async () => {
    const marker = join(directory, "shell-ran");
    await storage.upload("backup-20260101000000.sql", Readable.from([Buffer.from(`CREATE TABLE a (id INT);\n\\! touch ${marker}\n`)]));
    const targetUrl = databaseUrl(sourceUrl, randomName(`${account.databasePrefix}shell`));
    await expect(restore({ driver: createMariadbDriver({ url: targetUrl }), storage, key: "backup-20260101000000.sql" })).rejects.toThrow(
      /Unknown command/,
    );
    await expect(access(marker)).rejects.toThrow();
  });

  it("restores a mysqldump --databases dump (CREATE DATABASE and USE) through a server URL", async () => {
    const name = randomName(`${account.databasePrefix}named`);
    const namedUrl = accountUrl(await createDatabase(server.url, name), account.user, account.password);
    await runSql(namedUrl, "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(20)); INSERT INTO t VALUES (7, 'seven');");
    const driver = createMariadbDriver({ url: namedUrl, dumpExecutable: "mysqldump", dumpOptions: ["--databases"] });
    const { key } = await backup({ driver, storage });
    await dropDatabase(server.url, name);
    // The dump names its database, so a URL without one restores it under that name.
    await restore({ driver: createMariadbDriver({ url: databaseUrl(namedUrl, null) }), storage, key });
    expect(await rowsOf(namedUrl)).toBe("7\tseven\n");
  });

  it("falls back to mysqldump and mysql when mariadb-dump and mariadb are not on PATH", async () => {
    const programs = await mkdtemp(join(tmpdir(), "hoard-mariadb-path-"));
    const path = process.env.PATH;
    const messages: string[] = [];
    const logger = { event: (event: { type: string; message?: string }) => event.message && messages.push(event.message) };
    const targetUrl = databaseUrl(sourceUrl, randomName(`${account.databasePrefix}fallback`));
    try {
      await symlink(findExecutable("mysqldump") ?? "/usr/bin/mysqldump", join(programs, "mysqldump"));
      await symlink(findExecutable("mysql") ?? "/usr/bin/mysql", join(programs, "mysql"));
      process.env.PATH = programs;
      const { key } = await backup({ driver: createMariadbDriver({ url: sourceUrl, logger }), storage });
      await restore({ driver: createMariadbDriver({ url: targetUrl, logger }), storage, key });
    } finally {
      process.env.PATH = path;
      await rm(programs, { recursive: true, force: true });
    }
    expect(await rowsOf(targetUrl)).toBe("1\tone\n2\ttwö\n");
    expect(messages).toContain(`dumping database \`${databaseOf(sourceUrl)}\` with ${join(programs, "mysqldump")}`);
    expect(messages).toContain(`restoring into database \`${databaseOf(targetUrl)}\` with ${join(programs, "mysql")}`);
  });

  it("takes mysql:// URLs and restore options from the registry settings", async () => {
    const { key } = await backup({ driver: createDriverFromUrl(sourceUrl.replace(/^mariadb:/, "mysql:")), storage });
    const target = randomName(`${account.databasePrefix}mysql`);
    const targetUrl = databaseUrl(sourceUrl, target).replace(/^mariadb:/, "mysql:");
    // --force continues past the error, so the restore succeeds and the rows are there.
    await storage.upload("backup-20260102000000.sql", Readable.from([Buffer.from("NOT SQL;\nCREATE TABLE after_error (id INT);\n")]));
    await restore({ driver: createDriverFromUrl(targetUrl, {}), storage, key });
    // The target holds the first restore's table now: restoring over it needs replace.
    await restore({
      driver: createDriverFromUrl(targetUrl, { restoreOptions: ["--force"] }),
      storage,
      key: "backup-20260102000000.sql",
      replace: true,
    });
    expect(await runSql(targetUrl, "SHOW TABLES")).toBe("after_error\nt\n");
    expect(databaseOf(targetUrl)).toBe(target);
  });
});
