import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { pipeline, Readable, Transform } from "node:stream";
import { backup, type Driver, type HoardEvent, isHoardError, listBackups, restore } from "@hoard/core";
import { type FerretdbServer, type PostgresServer, startFerretdb, startPostgres } from "@hoard/test-harness";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseMongoUrl } from "../src/connection-string.ts";
import { createMongoDriver, type MongoDriverOptions } from "../src/index.ts";
import { databaseUrl, insert, isFerretDb, newDatabaseUrl, seedFixture, snapshotFixture, withClient } from "./fixture.ts";
import { dumpToBuffer, failureOf, put, seedSmall, temporaryStorage, waitFor } from "./helpers.ts";

const server = inject("mongo");
const tools = inject("mongoTools");

/** The tools engine with the tools built by scripts/install-tools.sh. */
function toolsDriver(url: string, options: Partial<MongoDriverOptions> = {}) {
  return createMongoDriver({ url, engine: "tools", mongodumpPath: tools.mongodump, mongorestorePath: tools.mongorestore, ...options });
}

function collect(): { events: HoardEvent[]; logger: { event(event: HoardEvent): void }; messages(level: string): string[] } {
  const events: HoardEvent[] = [];
  return {
    events,
    logger: { event: (event) => events.push(event) },
    messages: (level) => events.flatMap((event) => (event.type === "log" && event.level === level ? [event.message] : [])),
  };
}

/** Every process's command line (NUL-separated arguments joined by spaces) and environment. */
async function processes(): Promise<{ pid: string; cmdline: string; environ: string }[]> {
  const found: { pid: string; cmdline: string; environ: string }[] = [];
  for (const pid of (await readdir("/proc")).filter((name) => /^\d+$/.test(name))) {
    const read = (file: string) =>
      readFile(`/proc/${pid}/${file}`).then(
        (bytes) => bytes.toString("utf8").replaceAll("\0", " "),
        () => "",
      );
    found.push({ pid, cmdline: await read("cmdline"), environ: await read("environ") });
  }
  return found;
}

describe("mongodb tools engine against the server (real mongodump and mongorestore)", () => {
  let place: Awaited<ReturnType<typeof temporaryStorage>>;
  let source: string;
  let ferretdb: boolean;

  beforeAll(async () => {
    place = await temporaryStorage();
    source = newDatabaseUrl(server.url);
    await seedFixture(source);
    ferretdb = await withClient(server.url, isFerretDb);
  });
  afterAll(async () => {
    await place.remove();
  });

  it("keeps the URI and password out of every command line and environment while mongodump runs", async () => {
    const secret = "Pr0cScanS3cret";
    const { hosts, database } = parseMongoUrl(source);
    // FerretDB passes PLAIN credentials to PostgreSQL, which trusts the postgres user: the password is accepted.
    const url = `mongodb://postgres:${secret}@${hosts}/${database}?authMechanism=PLAIN`;
    const driver = toolsDriver(url);
    const output = await driver.dump({ workDirectory: place.directory });
    if (output.kind !== "stream") throw new Error("expected a stream");
    // Nothing reads the stream yet: mongodump (2.5 MB to write) blocks on its full pipe, still running.
    const running = await processes();
    const mongodump = running.filter((entry) => entry.cmdline.startsWith(`${tools.mongodump} `));
    expect(mongodump, "mongodump is running while /proc is read").toHaveLength(1);
    expect(mongodump[0]?.cmdline.trimEnd()).toMatch(/--config=\S+\/config\.yaml --archive$/);
    for (const entry of running) {
      expect(entry.cmdline, `/proc/${entry.pid}/cmdline`).not.toContain(secret);
      expect(entry.environ, `/proc/${entry.pid}/environ`).not.toContain(secret);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of output.stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).length).toBeGreaterThan(2 * 1024 * 1024);
    // The configuration file is gone once the stream closed (removed asynchronously: allow for a busy machine).
    const configurations = async () => (await readdir(place.directory)).filter((name) => name.startsWith("mongodb-tool-"));
    await waitFor(async () => (await configurations()).length === 0);
    expect(await configurations()).toEqual([]);
  });

  it("says which engine wrote and which restores a backup (debug)", async () => {
    const log = collect();
    const { key } = await backup({ driver: toolsDriver(source, { logger: log.logger }), storage: place.storage, prefix: "engines" });
    const target = newDatabaseUrl(server.url);
    await restore({ driver: toolsDriver(target, { logger: log.logger }), storage: place.storage, key });
    const builtin = collect();
    await restore({
      driver: createMongoDriver({ url: newDatabaseUrl(server.url), engine: "builtin", logger: builtin.logger }),
      storage: place.storage,
      key,
    });
    expect(log.messages("debug")).toEqual(
      expect.arrayContaining([
        `mongodb: engine tools: the backup is written by ${tools.mongodump} --archive (engine setting: tools)`,
        `mongodb: engine tools: ${tools.mongorestore} --archive restores the archive (engine setting: tools)`,
      ]),
    );
    expect(builtin.messages("debug")).toEqual(
      expect.arrayContaining(["mongodb: engine builtin: hoard's built-in engine restores the archive (engine setting: builtin)"]),
    );
    expect(await snapshotFixture(target)).toEqual(await snapshotFixture(source));
    if (ferretdb) {
      // FerretDB v1.24 rejects the ns field of mongorestore's index specs: hoard says so and creates the indexes.
      expect(log.messages("warn")).toEqual([
        "mongodb: the server rejected the ns field that mongorestore adds to index specs (as FerretDB v1 does, FerretDB#4638); mongorestore restored every document, so hoard creates the archive's indexes itself",
      ]);
      expect(log.messages("info")).toContain("mongodb: created 4 index(es) on 2 collection(s) in place of mongorestore (FerretDB#4638)");
    } else {
      expect(log.messages("warn")).toEqual([]);
    }
  });

  it("passes dumpOptions to mongodump and restoreOptions to mongorestore as they are", async () => {
    const archive = await dumpToBuffer(toolsDriver(source, { dumpOptions: ["--excludeCollection=people", "--numParallelCollections=1"] }));
    const target = newDatabaseUrl(server.url);
    await toolsDriver(target, { restoreOptions: ["--noIndexRestore", "--numInsertionWorkersPerCollection=2"] }).restore(
      { kind: "stream", stream: Readable.from([archive]) },
      { workDirectory: place.directory },
    );
    const restored = (await snapshotFixture(target)) as Record<string, { indexes: string[]; documents: string[] }>;
    const original = (await snapshotFixture(source)) as Record<string, { indexes: string[]; documents: string[] }>;
    expect(Object.keys(restored)).toEqual(Object.keys(original).filter((name) => name !== "people"));
    expect(restored.everything?.documents).toEqual(original.everything?.documents);
    // --noIndexRestore: only the _id index, and hoard does not add the others behind the user's back.
    expect(restored.nothing?.indexes).toEqual(['{"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}']);
  });

  it("with namespace options on FerretDB, names what it rejects and what state the target is in", async () => {
    const target = newDatabaseUrl(server.url);
    const from = `${parseMongoUrl(source).database}.people`;
    const to = `${parseMongoUrl(target).database}.people`;
    const error = await failureOf(
      toolsDriver(target, { restoreOptions: [`--nsInclude=${from}`, `--nsFrom=${from}`, `--nsTo=${to}`] }).restore(
        { kind: "stream", stream: Readable.from([await dumpToBuffer(toolsDriver(source))]) },
        { workDirectory: place.directory },
      ),
    );
    const people = async () => withClient(target, (client) => client.db().collection("people").countDocuments());
    if (!ferretdb) {
      // A real MongoDB accepts ns: the restore of the one collection succeeds, so failureOf found none.
      expect(String(error)).toMatch(/expected a failure/);
      expect(await people()).toBe(3000);
      return;
    }
    expect(isHoardError(error, "TOOL_FAILED"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/Index option "ns" is unknown/);
    expect((error as Error).message).toMatch(/FerretDB#4638\): the documents are restored without their indexes/);
    expect((error as Error).message).toMatch(/3000 document\(s\) were restored before the failure/);
    expect(await people()).toBe(3000);
  });

  describe("failures", () => {
    let small: string;
    let archive: Buffer;
    beforeAll(async () => {
      small = newDatabaseUrl(server.url);
      await seedSmall(small, 300);
      archive = await dumpToBuffer(toolsDriver(small));
    });

    it("fails a backup with bad credentials with UNAUTHENTICATED, without the password, and stores nothing", async () => {
      const { hosts } = parseMongoUrl(server.url);
      const url = `mongodb://nobody:Wr0ngPassw0rd@${hosts}/shop?serverSelectionTimeoutMS=5000`;
      // The manifest's first question (describe) already stops such a backup; without it, mongodump's own failure is what is checked here.
      const described = await failureOf(backup({ driver: toolsDriver(url), storage: place.storage, prefix: "credentials" }));
      expect(isHoardError(described, "UNAUTHENTICATED"), String(described)).toBe(true);
      expect((described as Error).message).toMatch(/^mongodb: describe: authentication failed/);
      const driver = { ...toolsDriver(url), describe: undefined, inventory: undefined };
      const error = await failureOf(backup({ driver, storage: place.storage, prefix: "credentials" }));
      expect(isHoardError(error, "UNAUTHENTICATED"), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/^mongodb: mongodump failed .*authentication failed/);
      expect(`${(error as Error).message} ${(error as { detail?: string }).detail}`).not.toContain("Wr0ngPassw0rd");
      expect(await listBackups(place.storage, { prefix: "credentials" })).toEqual([]);
      expect((await place.files()).filter((name) => name.startsWith("credentials"))).toEqual([]);
    });

    it("fails a backup of a database that does not exist with NOT_FOUND and stores nothing, with either engine", async () => {
      const missing = newDatabaseUrl(server.url);
      for (const [prefix, driver] of [
        ["missing-tools", toolsDriver(missing)],
        ["missing-builtin", createMongoDriver({ url: missing, engine: "builtin" })],
      ] as const) {
        const error = await failureOf(backup({ driver, storage: place.storage, prefix }));
        expect(isHoardError(error, "NOT_FOUND"), `${prefix}: ${String(error)}`).toBe(true);
        expect((error as Error).message).toBe(
          `mongodb: dump: database ${parseMongoUrl(missing).database} does not exist on ${parseMongoUrl(missing).hosts} (it holds no collection or view); check the database name in the URL`,
        );
        expect(await listBackups(place.storage, { prefix })).toEqual([]);
        expect((await place.files()).filter((name) => name.startsWith(prefix))).toEqual([]);
      }
    });

    it("fails the restore of a truncated archive with CORRUPT_ARCHIVE and says what state the target is in", async () => {
      // Cut inside the notes collection's documents.
      const target = newDatabaseUrl(server.url);
      await put(place.storage, "truncated-20260101000000.archive", archive.subarray(0, Math.floor(archive.length / 2)));
      const error = await failureOf(
        restore({ driver: toolsDriver(target), storage: place.storage, key: "truncated-20260101000000.archive" }),
      );
      expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
      // hoard's reader, beside mongorestore, finds the cut first and stops mongorestore before it sees the end.
      expect((error as Error).message).toMatch(/^mongodb: the archive is damaged or truncated: it ends inside a document of .*\.notes/);
      await expectTruthfulState(error, target);
    });

    /** The archive with one byte of the last note changed: every length and terminator intact, only the CRC of `notes` disagrees. */
    function withAlteredByte(bytes: Buffer, which: "first" | "last" = "last"): Buffer {
      const damaged = Buffer.from(bytes);
      const marker = Buffer.from("MARKER");
      const position = which === "first" ? damaged.indexOf(marker) : damaged.lastIndexOf(marker);
      expect(position).toBeGreaterThan(0);
      damaged[position] = "N".charCodeAt(0);
      return damaged;
    }

    /** The notes a restore left in the target, and those among them with the altered byte. */
    async function notesIn(url: string): Promise<{ all: number; altered: number }> {
      return withClient(url, async (client) => {
        const notes = client.db().collection("notes");
        return { all: await notes.countDocuments(), altered: await notes.countDocuments({ text: /NARKER/ }) };
      });
    }

    /**
     * Checks that what the failure says about the target is true: untouched and empty, or how many
     * notes it held when mongorestore was stopped (never more than it holds now).
     */
    async function expectTruthfulState(error: unknown, target: string): Promise<void> {
      const message = (error as Error).message;
      const notes = await withClient(target, (client) => client.db().collection("notes").countDocuments());
      const namespace = `${parseMongoUrl(target).database}.notes`;
      if (/mongorestore was stopped before it received any of the archive: the database was not changed$/.test(message)) {
        expect(notes).toBe(0);
        return;
      }
      const held = new RegExp(
        `the database is partially restored \\(when mongorestore was stopped, ${namespace.replace(".", "\\.")} held (\\d+) document\\(s\\)\\)`,
      ).exec(message);
      expect(held, message).not.toBeNull();
      expect(Number(held?.[1])).toBeLessThanOrEqual(notes);
    }

    it("fails the restore of an archive with one altered byte (CRC mismatch) with CORRUPT_ARCHIVE, though mongorestore would accept it", async () => {
      const damaged = withAlteredByte(archive);
      const database = parseMongoUrl(small).database;
      await put(place.storage, "altered-20260101000000.archive", damaged);
      const target = newDatabaseUrl(server.url);
      const error = await failureOf(
        restore({ driver: toolsDriver(target), storage: place.storage, key: "altered-20260101000000.archive" }),
      );
      expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
      expect((error as Error).message).toMatch(
        new RegExp(`^mongodb: the archive is damaged or truncated: CRC mismatch for ${database}\\.notes`),
      );
      await expectTruthfulState(error, target);
    });

    it("stops mongorestore before the end of an altered archive after it inserted the damaged document, and says so", async () => {
      const bigger = newDatabaseUrl(server.url);
      await seedSmall(bigger, 3000);
      // The first note altered: it is in mongorestore's first batch of 1000 (its --batchSize), inserted long before the CRC.
      const damaged = withAlteredByte(await dumpToBuffer(toolsDriver(bigger)), "first");
      const target = newDatabaseUrl(server.url);
      const held = async () => withClient(target, (client) => client.db().collection("notes").countDocuments());
      // All but the end of the archive (which holds the EOF header of notes and its CRC), then, once
      // mongorestore has inserted a batch, the end.
      async function* slowEnd(): AsyncGenerator<Buffer> {
        const cut = damaged.length - 200;
        for (let offset = 0; offset < cut; offset += 16 * 1024) yield damaged.subarray(offset, Math.min(offset + 16 * 1024, cut));
        for (let attempt = 0; attempt < 300 && (await held()) < 1000; attempt++) await new Promise((resolve) => setTimeout(resolve, 100));
        yield damaged.subarray(cut);
      }
      const error = await failureOf(
        toolsDriver(target).restore({ kind: "stream", stream: Readable.from(slowEnd()) }, { workDirectory: place.directory }),
      );
      expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
      expect((error as Error).message).toMatch(
        new RegExp(`^mongodb: the archive is damaged or truncated: CRC mismatch for ${parseMongoUrl(bigger).database}\\.notes`),
      );
      expect((error as Error).message).toMatch(/mongorestore was stopped before the end of the archive/);
      await expectTruthfulState(error, target);
      // The damaged note is in the target: the failure, not a success, is what the user was told.
      const left = await notesIn(target);
      expect(left.all).toBeGreaterThanOrEqual(1000);
      expect(left.all).toBeLessThan(3000);
      expect(left.altered).toBe(1);
    });
  });

  describe("server killed midway", () => {
    let postgres: PostgresServer;
    let doomed: FerretdbServer | undefined;
    beforeAll(async () => {
      postgres = await startPostgres();
    });
    afterAll(async () => {
      await doomed?.stop();
      await postgres.stop();
    });

    it("fails a backup whose server dies while mongodump runs, loudly, and stores nothing", async () => {
      doomed = await startFerretdb(postgres);
      const large = databaseUrl(doomed.url, "killed_dump");
      // 24 MiB: more than one 16 MiB batch of a cursor, so mongodump still has to ask the server when it dies.
      await withClient(large, async (client) => {
        for (let batch = 0; batch < 30; batch++) {
          const documents = Array.from({ length: 100 }, (_, index) => ({
            _id: batch * 100 + index,
            payload: randomBytes(4 * 1024).toString("hex"),
          }));
          await insert(client.db(), "bulk", documents);
        }
      });
      const before = await place.files();
      const server = doomed;
      let killing: Promise<void> | undefined;
      const driver = toolsDriver(large, { connectTimeoutMs: 2_000 });
      // Kills the server once the first mebibyte of the archive went by: mongodump has read the first
      // batches (101 documents, then up to 16 MiB) and must ask the server for the rest.
      const dying: Driver = {
        ...driver,
        async dump(context) {
          const output = await driver.dump(context);
          if (output.kind !== "stream") throw new Error("expected a stream");
          let bytes = 0;
          const watched = new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              bytes += chunk.length;
              if (bytes > 1024 * 1024) killing ??= server.kill();
              callback(null, chunk);
            },
          });
          return { kind: "stream", stream: pipeline(output.stream, watched, () => {}) };
        },
      };
      const error = await failureOf(backup({ driver: dying, storage: place.storage, prefix: "killed-dump" }));
      expect(killing, "the server was killed during the dump").toBeDefined();
      await killing;
      expect(isHoardError(error), String(error)).toBe(true);
      expect(["UNREACHABLE", "TOOL_FAILED"]).toContain((error as { code: string }).code);
      // It names the collection it was reading, not a failure to connect.
      expect((error as Error).message).toMatch(/^mongodb: mongodump failed \(exit code 1\): Failed: .*killed_dump\.bulk/);
      expect(await listBackups(place.storage, { prefix: "killed-dump" })).toEqual([]);
      // Nothing at all was left, temporary upload files included.
      expect(await place.files()).toEqual(before);
      await doomed.stop();
      doomed = undefined;
    });

    it("fails a restore whose server dies while mongorestore runs, saying the database may be partially restored", async () => {
      doomed = await startFerretdb(postgres);
      const small = databaseUrl(doomed.url, "killed_source");
      await seedSmall(small, 300);
      const archive = await dumpToBuffer(toolsDriver(small));
      const server = doomed;
      // The first half of the archive, then the server dies, then the rest.
      async function* dying(): AsyncGenerator<Buffer> {
        yield archive.subarray(0, archive.length >> 1);
        await server.kill();
        yield archive.subarray(archive.length >> 1);
      }
      const error = await failureOf(
        // A short connect timeout: mongorestore gives up on the dead server after it, not after 15 s.
        toolsDriver(databaseUrl(doomed.url, "killed_target"), { connectTimeoutMs: 2_000 }).restore(
          { kind: "stream", stream: Readable.from(dying()) },
          { workDirectory: place.directory, replace: true },
        ),
      );
      expect(isHoardError(error), String(error)).toBe(true);
      expect(["UNREACHABLE", "TOOL_FAILED"]).toContain((error as { code: string }).code);
      expect((error as Error).message).toMatch(/^mongodb: mongorestore failed/);
      expect((error as Error).message).toMatch(/the database (may be|is) partially restored/);
    });
  });
});
