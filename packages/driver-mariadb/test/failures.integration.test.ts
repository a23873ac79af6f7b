import { chmod, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { backup, type Driver, type HoardError, restore, type Storage } from "@hoard/core";
import { freePort } from "@hoard/test-harness";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { createMariadbDriver } from "../src/index.ts";
import {
  accountUrl,
  accountWithSource,
  childProcesses,
  createDatabase,
  databaseUrl,
  failureOf,
  freshLocalStorage,
  keysOf,
  randomName,
  runSql,
  type TestAccount,
  waitFor,
} from "./mariadb.ts";

const server = inject("mariadb");
let account: TestAccount;
/** A database of the test account with a table of 20,000 rows (about 5 MB of SQL). */
let sourceUrl: string;
let directory: string;
let storage: Storage;
/** Where test programs go, apart from the storage directory. */
let programs: string;

beforeAll(async () => {
  programs = await mkdtemp(join(tmpdir(), "hoard-mariadb-programs-"));
  ({ account, sourceUrl } = await accountWithSource(
    server.url,
    `CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(300));
     INSERT INTO big SELECT seq, CONCAT(SHA2(seq, 512), SHA2(seq + 1, 256)) FROM seq_1_to_20000;
     CREATE TABLE small (id INT PRIMARY KEY, note VARCHAR(20));
     INSERT INTO small VALUES (1, 'one'), (2, 'two');`,
  ));
});

afterAll(async () => {
  await account?.drop();
  await rm(programs, { recursive: true, force: true });
});

beforeEach(async () => {
  ({ directory, storage } = await freshLocalStorage("hoard-mariadb-failures-"));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Reads a stream to its end or its error, returning how many bytes came before the error. */
async function drain(stream: Readable): Promise<{ bytes: number; error?: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    return { bytes };
  } catch (error) {
    return { bytes, error };
  }
}

/** A dump program that runs the real mariadb-dump and then misbehaves as `after` says. */
async function misbehavingDump(after: string): Promise<string> {
  const path = join(programs, `misbehaving-dump-${randomName("x")}`);
  await writeFile(path, `#!/bin/sh\nmariadb-dump "$@" | head -c 20000\n${after}\n`);
  await chmod(path, 0o755);
  return path;
}

describe("backup failures leave nothing in storage", () => {
  it("wrong password: UNAUTHENTICATED with the server's message", async () => {
    const url = accountUrl(sourceUrl, account.user, "not-the-password");
    const error = await failureOf(backup({ driver: createMariadbDriver({ url }), storage }));
    expect(error.code).toBe("UNAUTHENTICATED");
    expect(error.message).toContain(`Access denied for user '${account.user}'`);
    expect(error.message).toContain("check the user name and password");
    expect(error.message).not.toContain("not-the-password");
    expect(await keysOf(storage)).toEqual([]);
  });

  it("missing database: NOT_FOUND naming it", async () => {
    const missing = randomName(`${account.databasePrefix}missing`);
    const error = await failureOf(backup({ driver: createMariadbDriver({ url: databaseUrl(sourceUrl, missing) }), storage }));
    expect(error.code).toBe("NOT_FOUND");
    expect(error.message).toContain(`Unknown database '${missing}'`);
    expect(await keysOf(storage)).toEqual([]);
  });

  it("server not reachable: UNREACHABLE", async () => {
    const url = new URL(sourceUrl);
    url.port = String(await freePort());
    const error = await failureOf(backup({ driver: createMariadbDriver({ url: url.toString() }), storage }));
    expect(error.code).toBe("UNREACHABLE");
    expect(error.message).toMatch(/Can't connect/);
    expect(await keysOf(storage)).toEqual([]);
  });

  it("the dump fails after its output started: TOOL_FAILED with the tool's message", async () => {
    const database = randomName(`${account.databasePrefix}broken`);
    const url = accountUrl(await createDatabase(server.url, database), account.user, account.password);
    // A view whose table is gone makes mariadb-dump fail when it reaches the view, after the tables.
    await runSql(
      url,
      `CREATE TABLE a (id INT PRIMARY KEY); INSERT INTO a VALUES (1);
       CREATE TABLE gone (id INT); CREATE VIEW z AS SELECT * FROM gone; DROP TABLE gone;`,
    );
    const driver = createMariadbDriver({ url });
    const direct = await drain((await driverDump(driver)).stream);
    expect(direct.bytes).toBeGreaterThan(0);
    expect((direct.error as HoardError).code).toBe("TOOL_FAILED");

    const error = await failureOf(backup({ driver, storage }));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toMatch(/mariadb-dump failed \(exit code 2\).*references invalid table/);
    expect(await keysOf(storage)).toEqual([]);
  });

  it("a dump cut short that still exits 0 is refused: no '-- Dump completed'", async () => {
    const driver = createMariadbDriver({ url: sourceUrl, dumpExecutable: await misbehavingDump("exit 0") });
    for (const mode of ["stream", "file"] as const) {
      const error = await failureOf(backup({ driver, storage, mode }));
      expect(error.code).toBe("TOOL_FAILED");
      expect(error.message).toContain('does not end with "-- Dump completed"');
    }
    expect(await keysOf(storage)).toEqual([]);
  });

  it("completion checking can be turned off, and is off when comments are", async () => {
    const dumpExecutable = await misbehavingDump("exit 0");
    for (const driver of [
      createMariadbDriver({ url: sourceUrl, dumpExecutable, verifyCompletion: false }),
      createMariadbDriver({ url: sourceUrl, dumpExecutable, dumpOptions: ["--skip-comments"] }),
    ]) {
      const { bytes, error } = await drain((await driverDump(driver)).stream);
      expect(error).toBeUndefined();
      expect(bytes).toBe(20000);
    }
  });

  it("the dump tool killed after its output started: TOOL_FAILED, killed by SIGKILL", async () => {
    const error = await failureOf(
      backup({ driver: createMariadbDriver({ url: sourceUrl, dumpExecutable: await misbehavingDump("kill -KILL $$") }), storage }),
    );
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toContain("killed by SIGKILL");
    expect(await keysOf(storage)).toEqual([]);
  });

  it("the real mariadb-dump killed midway through a backup: nothing stored", async () => {
    const real = createMariadbDriver({ url: sourceUrl });
    // Hands the pipeline a dump whose tool has already written part of its output and was then killed.
    const killing: Driver = {
      ...real,
      async dump(context) {
        const output = await real.dump(context);
        if (output.kind !== "stream") throw new Error("expected a stream");
        await waitFor(() => (output.stream.readableLength > 0 ? true : undefined));
        const [tool] = await waitFor(async () => {
          const found = await childProcesses("mariadb-dump");
          return found.length === 1 ? found : undefined;
        });
        process.kill(tool?.pid ?? 0, "SIGKILL");
        return output;
      },
    };
    const error = await failureOf(backup({ driver: killing, storage }));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toContain("mariadb-dump failed (killed by SIGKILL)");
    expect(await keysOf(storage)).toEqual([]);
  });

  it("an aborted backup stops the tool: ABORTED", async () => {
    const controller = new AbortController();
    const logger = { event: (event: { type: string }) => event.type === "backup-started" && controller.abort() };
    const error = await failureOf(backup({ driver: createMariadbDriver({ url: sourceUrl }), storage, signal: controller.signal, logger }));
    expect(error.code).toBe("ABORTED");
    expect(await keysOf(storage)).toEqual([]);
    await waitFor(async () => ((await childProcesses("mariadb-dump")).length === 0 ? true : undefined));
  });
});

describe("restore failures", () => {
  it.each([
    { label: ".sql.zst, the default", compression: undefined, name: /^backup-\d{14}\.sql\.zst$/ },
    { label: ".sql.gz", compression: "gzip" as const, name: /^backup-\d{14}\.sql\.gz$/ },
  ])("a truncated $label: CORRUPT_ARCHIVE, and the target may be partially restored", async ({ compression, name }) => {
    const { key } = await backup({ driver: createMariadbDriver({ url: sourceUrl }), storage, compression });
    expect(key).toMatch(name);
    const path = join(directory, key);
    const size = (await readFile(path)).length;
    await truncate(path, Math.floor(size * 0.6));
    const target = randomName(`${account.databasePrefix}target`);
    const targetUrl = databaseUrl(sourceUrl, target);
    const error = await failureOf(restore({ driver: createMariadbDriver({ url: targetUrl }), storage, key }));
    expect(error.code).toBe("CORRUPT_ARCHIVE");
    expect(error.message).toContain(key);
    expect(error.message).toContain(`database \`${target}\` may be partially restored`);
    // It was: the client ran what it had read before the archive broke off.
    expect(await runSql(targetUrl, "SHOW TABLES")).toContain("big");
  });

  it("an SQL error midway: TOOL_FAILED with the line, earlier statements stay, partially restored", async () => {
    await storage.upload(
      "backup-20260101000000.sql",
      toStream("CREATE TABLE kept (id INT PRIMARY KEY);\nINSERT INTO kept VALUES (1);\nTHIS IS NOT SQL;\nCREATE TABLE never (id INT);\n"),
    );
    const targetUrl = databaseUrl(sourceUrl, randomName(`${account.databasePrefix}target`));
    const error = await failureOf(restore({ driver: createMariadbDriver({ url: targetUrl }), storage, key: "backup-20260101000000.sql" }));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toMatch(/mariadb failed \(exit code 1\): ERROR 1064 \(42000\) at line 3/);
    expect(error.message).toContain("may be partially restored");
    expect(await runSql(targetUrl, "SHOW TABLES")).toBe("kept\n");
  });

  it("a wrong password: UNAUTHENTICATED, and nothing was restored", async () => {
    await storage.upload("backup-20260101000000.sql", toStream("CREATE TABLE t (id INT);\n"));
    const url = accountUrl(databaseUrl(sourceUrl, randomName(`${account.databasePrefix}target`)), account.user, "wrong");
    const error = await failureOf(restore({ driver: createMariadbDriver({ url }), storage, key: "backup-20260101000000.sql" }));
    expect(error.code).toBe("UNAUTHENTICATED");
    expect(error.message).toContain("Access denied");
    expect(error.message).not.toContain("partially restored");
  });

  it("a missing database with createDatabase: false: NOT_FOUND, nothing restored", async () => {
    await storage.upload("backup-20260101000000.sql", toStream("CREATE TABLE t (id INT);\n"));
    const missing = randomName(`${account.databasePrefix}missing`);
    const driver = createMariadbDriver({ url: databaseUrl(sourceUrl, missing), createDatabase: false });
    const error = await failureOf(restore({ driver, storage, key: "backup-20260101000000.sql" }));
    expect(error.code).toBe("NOT_FOUND");
    expect(error.message).toContain(`Unknown database '${missing}'`);
    expect(error.message).not.toContain("partially restored");
  });

  it("a directory input is refused", async () => {
    const driver = createMariadbDriver({ url: sourceUrl });
    const error = await failureOf(driver.restore({ kind: "directory", path: directory }, { workDirectory: directory }));
    expect(error.code).toBe("UNSUPPORTED_FORMAT");
  });
});

describe("missing tools", () => {
  it("TOOL_NOT_FOUND names the package to install", async () => {
    const path = process.env.PATH;
    process.env.PATH = programs;
    try {
      const driver = createMariadbDriver({ url: sourceUrl });
      const dumpError = await failureOf(driver.dump({ workDirectory: directory }));
      expect(dumpError.code).toBe("TOOL_NOT_FOUND");
      expect(dumpError.message).toContain("mariadb-dump or mysqldump not found");
      expect(dumpError.message).toContain("apt install mariadb-client");
      const restoreError = await failureOf(driver.restore({ kind: "stream", stream: toStream("") }, { workDirectory: directory }));
      expect(restoreError.code).toBe("TOOL_NOT_FOUND");
      expect(restoreError.message).toContain("mariadb or mysql not found");
    } finally {
      process.env.PATH = path;
    }
  });

  it("a configured program that does not exist: TOOL_NOT_FOUND", async () => {
    const driver = createMariadbDriver({ url: sourceUrl, dumpExecutable: join(directory, "no-such-dump") });
    const error = await failureOf(driver.dump({ workDirectory: directory }));
    expect(error.code).toBe("TOOL_NOT_FOUND");
    expect(error.message).toContain("dumpExecutable");
  });
});

async function driverDump(driver: Driver): Promise<{ stream: Readable }> {
  const output = await driver.dump({ workDirectory: directory });
  if (output.kind !== "stream") throw new Error("expected a stream");
  return output;
}

function toStream(text: string): Readable {
  return Readable.from([Buffer.from(text)]);
}
