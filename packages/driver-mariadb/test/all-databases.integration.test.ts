import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backup, createLocalStorage, restore } from "@hoard/core";
import { type MariadbServer, startMariadb } from "@hoard/test-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMariadbDriver } from "../src/index.ts";
import { accountUrl, createDatabase, databaseUrl, runSql, unzstd } from "./mariadb.ts";

// Restoring an all-databases dump rewrites every database on the server, the `mysql` system
// database included, so this runs on a throwaway server of its own, never the shared one.
let server: MariadbServer;
let directory: string;

beforeAll(async () => {
  const saved = { mode: process.env.HOARD_TEST_MARIADB, url: process.env.HOARD_TEST_MARIADB_URL };
  process.env.HOARD_TEST_MARIADB = "throwaway";
  delete process.env.HOARD_TEST_MARIADB_URL;
  try {
    server = await startMariadb();
  } finally {
    process.env.HOARD_TEST_MARIADB = saved.mode;
    if (saved.url !== undefined) process.env.HOARD_TEST_MARIADB_URL = saved.url;
    if (saved.mode === undefined) delete process.env.HOARD_TEST_MARIADB;
  }
  directory = await mkdtemp(join(tmpdir(), "hoard-mariadb-all-"));
});

afterAll(async () => {
  await server?.stop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

describe("all databases", () => {
  it("a URL without a database dumps every database, accounts included, and restores them all", async () => {
    expect(server.origin).toBe("throwaway");
    const storage = createLocalStorage({ directory });
    const first = await createDatabase(server.url, "first_db");
    const second = await createDatabase(server.url, "second db ✓");
    await runSql(
      first,
      `CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(20)); INSERT INTO t VALUES (1, 'première');
       CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;`,
    );
    await runSql(second, "CREATE TABLE u (id INT PRIMARY KEY); INSERT INTO u VALUES (10), (20);");
    await runSql(server.url, "CREATE USER 'restored'@'%' IDENTIFIED BY 'its password'; GRANT SELECT ON first_db.* TO 'restored'@'%';", {
      database: null,
    });

    const { key } = await backup({ driver: createMariadbDriver({ url: server.url }), storage });
    const sql = (await unzstd(await readFile(join(directory, key)))).toString("utf8");
    for (const name of ["first_db", "second db ✓", "mysql"]) {
      expect(sql).toContain(`CREATE DATABASE /*!32312 IF NOT EXISTS*/ \`${name}\``);
    }
    expect(sql).toContain("FLUSH PRIVILEGES");
    expect(sql).toMatch(/-- Dump completed on .*\n$/);

    await runSql(server.url, "DROP DATABASE first_db; DROP DATABASE `second db ✓`; DROP USER 'restored'@'%';", { database: null });
    await restore({ driver: createMariadbDriver({ url: server.url, allDatabases: true }), storage, key });

    expect(await runSql(first, "SELECT id, note, twice(id) FROM t")).toBe("1\tpremière\t2\n");
    expect(await runSql(second, "SELECT id FROM u ORDER BY id")).toBe("10\n20\n");
    const restoredUser = accountUrl(databaseUrl(server.url, "first_db"), "restored", "its password");
    expect(await runSql(restoredUser, "SELECT COUNT(*) FROM t")).toBe("1\n");
  });
});
