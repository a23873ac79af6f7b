import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { chmod, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { gzipSync } from "node:zlib";
import { backup, createLocalStorage, type HoardError, listBackups, restore } from "@hoard/core";
import { afterEach, describe, expect, it } from "vitest";
import { createSqliteDriver } from "../src/index.ts";
import { seedFixture, snapshotFixture } from "./fixture.ts";
import { newPath, scratchDirectory, sqlite, urlOf } from "./sqlite.ts";

const directory = await scratchDirectory("hoard-sqlite-failures-");
const workDirectory = directory;

async function failure(promise: Promise<unknown>): Promise<HoardError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeDefined();
  return error as HoardError;
}

/** A local storage holding one backup with exactly these bytes. */
async function storedBackup(content: string | Buffer, extension = "sql") {
  const storageDirectory = join(directory, `storage-${Math.random().toString(36).slice(2)}`);
  await mkdir(storageDirectory);
  const key = `hand-20240101000000.${extension}`;
  await writeFile(join(storageDirectory, key), content);
  return { storage: createLocalStorage({ directory: storageDirectory }), key };
}

/** A database holding one table `kept` with one row, the "old content" a failed restore must leave alone. */
async function existingDatabase(): Promise<string> {
  const path = newPath(directory, "existing");
  await sqlite(path, "CREATE TABLE kept (id INTEGER PRIMARY KEY, value TEXT); INSERT INTO kept VALUES (1, 'old content');");
  return path;
}

async function contentOf(path: string): Promise<string> {
  return sqlite(path, "SELECT name FROM sqlite_master ORDER BY name; SELECT value FROM kept;", { readonly: true });
}

/** Nothing but the given files in the directory: no temporary file was left behind. */
async function leftovers(): Promise<string[]> {
  return (await readdir(directory)).filter((name) => name.includes("hoard-restore"));
}

let dumpOf: string;
async function fixtureDump(): Promise<string> {
  if (dumpOf) return dumpOf;
  const source = newPath(directory, "fixture");
  await seedFixture(urlOf(source));
  const output = await createSqliteDriver({ url: urlOf(source) }).dump({ workDirectory });
  if (output.kind !== "stream") throw new Error("expected a stream");
  dumpOf = await text(output.stream);
  return dumpOf;
}

const holders: ChildProcessWithoutNullStreams[] = [];
afterEach(async () => {
  for (const holder of holders.splice(0)) {
    holder.stdin.end();
    if (holder.exitCode === null) await once(holder, "exit");
  }
});

/** Another program that holds the database open, in a write transaction when `sql` begins one; resolves once it is in. */
async function holdOpen(path: string, sql: string): Promise<ChildProcessWithoutNullStreams> {
  const holder = spawn("sqlite3", ["-init", "/dev/null", "-bail", path], { stdio: "pipe" });
  holders.push(holder);
  holder.stdin.write(`${sql}\n.print ready\n`);
  let output = "";
  for await (const chunk of holder.stdout) {
    output += String(chunk);
    if (output.includes("ready")) break;
  }
  return holder;
}

describe("dump", () => {
  it("fails with NOT_FOUND for a missing file, and does not create it", async () => {
    const path = newPath(directory, "missing");
    const error = await failure(createSqliteDriver({ url: urlOf(path) }).dump({ workDirectory }));
    expect(error.code).toBe("NOT_FOUND");
    expect(error.message).toBe(`sqlite: ${path} does not exist`);
    await expect(stat(path)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("fails with INVALID_ARGUMENT for a file that is no database", async () => {
    const path = newPath(directory, "text");
    await writeFile(path, "just some text, long enough to be taken for a database header by nobody\n".repeat(20));
    const error = await failure(createSqliteDriver({ url: urlOf(path) }).dump({ workDirectory }));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toBe(`sqlite: ${path} is not an SQLite database`);
  });

  it("fails a damaged database instead of storing the part sqlite3 could read", async () => {
    const path = newPath(directory, "damaged");
    await sqlite(
      path,
      "CREATE TABLE a (x); CREATE TABLE b (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO b SELECT printf('%0100d', i) FROM n; CREATE TABLE z (x); INSERT INTO z VALUES (1);",
    );
    const bytes = await readFile(path);
    bytes.fill(0xff, 4096 * 10 + 100, 4096 * 10 + 2100);
    await writeFile(path, bytes);
    const storage = createLocalStorage({ directory: join(directory, "damaged-storage") });
    const error = await failure(backup({ driver: createSqliteDriver({ url: urlOf(path) }), storage, prefix: "damaged" }));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toContain(`sqlite: ${path} is damaged (database disk image is malformed (11))`);
    expect(await listBackups(storage, { prefix: "damaged" })).toEqual([]);
  });

  it("waits for another program's lock for lockTimeoutMs, then fails naming the file", async () => {
    const path = newPath(directory, "locked");
    await sqlite(path, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    await holdOpen(path, "BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);");
    const error = await failure(createSqliteDriver({ url: urlOf(path), lockTimeoutMs: 200 }).dump({ workDirectory }));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toBe(`sqlite: ${path} is locked by another program (waited 0.2 s); try again, or wait longer with --timeout`);
  });

  it("reads one snapshot: in WAL mode a write committed while the dump runs is not in it", async () => {
    const path = newPath(directory, "snapshot");
    // A first table larger than every buffer between sqlite3 and us, so sqlite3 is still in the
    // middle of the dump, blocked on its output, when the other program writes.
    await sqlite(
      path,
      "PRAGMA journal_mode = WAL; CREATE TABLE a_big (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO a_big SELECT randomblob(40000) FROM n; CREATE TABLE z_late (x); INSERT INTO z_late VALUES ('before');",
    );
    const output = await createSqliteDriver({ url: urlOf(path) }).dump({ workDirectory });
    if (output.kind !== "stream") throw new Error("expected a stream");
    const iterator = output.stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    await sqlite(path, "INSERT INTO z_late VALUES ('during');");
    let dump = String(first.value);
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) dump += String(next.value);
    expect(dump).toContain("INSERT INTO z_late VALUES('before');");
    expect(dump).not.toContain("during");
    expect(dump.endsWith("COMMIT;\n")).toBe(true);
    expect(await sqlite(path, "SELECT count(*) FROM z_late")).toBe("2\n");
  });
});

describe("restore", () => {
  it("refuses a target that holds tables, views, indexes or triggers, naming them, before changing anything", async () => {
    const path = await existingDatabase();
    await sqlite(path, "CREATE TABLE another (x); CREATE VIEW v AS SELECT 1; CREATE INDEX i ON another (x);");
    const { storage, key } = await storedBackup(await fixtureDump());
    const error = await failure(restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key }));
    expect(error.code).toBe("TARGET_NOT_EMPTY");
    expect(error.message).toBe(
      `sqlite: ${path} is not empty (2 tables, 1 view, 1 index, e.g. another, kept); use --replace to restore over it`,
    );
    expect(await contentOf(path)).toBe("another\ni\nkept\nv\nold content\n");
    expect(await leftovers()).toEqual([]);
  });

  it("restores into an existing empty file without --replace, keeping its mode", async () => {
    const path = newPath(directory, "empty");
    await writeFile(path, "");
    await chmod(path, 0o640);
    const { storage, key } = await storedBackup(await fixtureDump());
    await restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key });
    expect(await sqlite(path, "SELECT count(*) FROM customer")).toBe("4\n");
    expect((await stat(path)).mode & 0o777).toBe(0o640);
  });

  it("with replace, puts the backup in place of what was there, keeping the file's mode", async () => {
    const source = newPath(directory, "replace-source");
    await seedFixture(urlOf(source));
    const path = await existingDatabase();
    await chmod(path, 0o600);
    const storage = createLocalStorage({ directory: join(directory, "replace-storage") });
    const { key } = await backup({ driver: createSqliteDriver({ url: urlOf(source) }), storage, prefix: "replace" });
    await restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key, replace: true });
    expect(await snapshotFixture(urlOf(path))).toEqual(await snapshotFixture(urlOf(source)));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await leftovers()).toEqual([]);
  });

  it("with replace, a restore that fails half-way leaves the old content and says so", async () => {
    const path = await existingDatabase();
    // A statement that fails after many that worked: the restore stops there.
    const broken = (await fixtureDump()).replace("COMMIT;\n", "INSERT INTO no_such_table VALUES (1);\nCOMMIT;\n");
    const { storage, key } = await storedBackup(broken);
    const error = await failure(restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key, replace: true }));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toMatch(/^sqlite: restore into .* failed: .*no such table: no_such_table.*; .* was not changed$/);
    expect(error.message).toContain(`; ${path} was not changed`);
    expect(await contentOf(path)).toBe("kept\nold content\n");
    expect(await leftovers()).toEqual([]);
  });

  it("fails a backup cut off between two statements, which sqlite3 alone would take as a whole, empty database", async () => {
    const path = await existingDatabase();
    const dump = await fixtureDump();
    const { storage, key } = await storedBackup(dump.slice(0, dump.indexOf("\n", dump.length / 2) + 1));
    const error = await failure(restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key, replace: true }));
    expect(error.code).toBe("CORRUPT_ARCHIVE");
    expect(error.message).toBe(`sqlite: the backup ends before its COMMIT: it is truncated; ${path} was not changed`);
    expect(await contentOf(path)).toBe("kept\nold content\n");
    // No file appears where there was none, either.
    const fresh = newPath(directory, "fresh");
    await failure(restore({ driver: createSqliteDriver({ url: urlOf(fresh) }), storage, key }));
    await expect(stat(fresh)).rejects.toMatchObject({ code: "ENOENT" });
    expect(await leftovers()).toEqual([]);
  });

  it("fails a corrupt compressed backup with the target untouched", async () => {
    const path = await existingDatabase();
    const compressed = gzipSync(Buffer.from(await fixtureDump()));
    // Damage the middle of the deflate stream: the first part decompresses, then it fails.
    compressed.fill(0x55, compressed.length / 2, compressed.length / 2 + 64);
    const { storage, key } = await storedBackup(compressed, "sql.gz");
    const error = await failure(restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key, replace: true }));
    expect(error.code).toBe("CORRUPT_ARCHIVE");
    expect(error.message).toContain(`${path} was not changed`);
    expect(await contentOf(path)).toBe("kept\nold content\n");
    expect(await leftovers()).toEqual([]);
  });

  it("refuses a backup that is no SQLite dump", async () => {
    const path = newPath(directory, "foreign");
    const { storage, key } = await storedBackup("-- MariaDB dump 10.19\nCREATE TABLE t (x INT);\n");
    const error = await failure(restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key }));
    expect(error.code).toBe("UNSUPPORTED_FORMAT");
    expect(error.message).toBe(
      `sqlite: the backup is not an SQLite dump (it begins with "-- MariaDB dump 10.19.CR"), perhaps one made by another driver; ${path} was not created`,
    );
    await expect(stat(path)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("runs nothing but SQL from a backup: sqlite3's commands that reach outside the database are refused", async () => {
    const path = newPath(directory, "hostile");
    const marker = join(directory, "hostile-marker");
    const hostile = `PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n.shell touch '${marker}'\nSELECT writefile('${marker}', 'x');\nCOMMIT;\n`;
    const { storage, key } = await storedBackup(hostile);
    const error = await failure(restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key }));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toContain("safe mode");
    await expect(stat(marker)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat(path)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses to replace a database another program has open in WAL mode", async () => {
    const path = newPath(directory, "in-use");
    await sqlite(path, "PRAGMA journal_mode = WAL; CREATE TABLE kept (id INTEGER PRIMARY KEY, value TEXT);");
    await holdOpen(path, "INSERT INTO kept VALUES (1, 'old content');");
    const { storage, key } = await storedBackup(await fixtureDump());
    const error = await failure(restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key, replace: true }));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toMatch(/is in use, or a program crashed while writing it \(.*-wal is there\)/);
    expect(await contentOf(path)).toBe("kept\nold content\n");
  });

  it("replaces the file a symbolic link points to, and keeps the link", async () => {
    const real = await existingDatabase();
    const link = newPath(directory, "link");
    await symlink(real, link);
    const { storage, key } = await storedBackup(await fixtureDump());
    await restore({ driver: createSqliteDriver({ url: urlOf(link) }), storage, key, replace: true });
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await sqlite(real, "SELECT count(*) FROM customer")).toBe("4\n");
  });

  it("refuses to replace a file that is no SQLite database", async () => {
    const path = newPath(directory, "notes");
    await writeFile(path, "my notes, not a database\n");
    const { storage, key } = await storedBackup(await fixtureDump());
    const error = await failure(restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key, replace: true }));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(await readFile(path, "utf8")).toBe("my notes, not a database\n");
  });

  it("fails with NOT_FOUND when the target's directory does not exist", async () => {
    const path = join(directory, "no-such-directory", "db.sqlite");
    const { storage, key } = await storedBackup(await fixtureDump());
    const error = await failure(restore({ driver: createSqliteDriver({ url: urlOf(path) }), storage, key }));
    expect(error.code).toBe("NOT_FOUND");
    expect(error.message).toBe(`sqlite: the directory ${join(directory, "no-such-directory")} does not exist`);
  });
});

it("backs up and restores files whose paths hold spaces, quotes and percent signs", async () => {
  const odd = join(directory, `it's a "db" 100% (copy)`);
  await mkdir(odd);
  const source = join(odd, "source file.sqlite");
  const target = join(odd, "target 'file'.sqlite");
  await seedFixture(urlOf(source));
  expect(urlOf(source)).toContain("%20");
  const storage = createLocalStorage({ directory: join(directory, "odd-storage") });
  const { key } = await backup({ driver: createSqliteDriver({ url: urlOf(source) }), storage, prefix: "odd" });
  await restore({ driver: createSqliteDriver({ url: urlOf(target) }), storage, key });
  expect(await snapshotFixture(urlOf(target))).toEqual(await snapshotFixture(urlOf(source)));
});
