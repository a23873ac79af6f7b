import { chmod, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { backup, isHoardError, listBackups } from "@hoard/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMongoDriver } from "../src/index.ts";
import { expectArchive, explainRestoreFailure, readToolFailure } from "../src/tools.ts";
import { directoryWithWork, temporaryStorage, tinyArchive } from "./helpers.ts";

// What mongorestore 100.x writes to stderr (mongorestore/main/mongorestore.go logs "Failed: <error>"
// and then, failed or not, the summary line; every line starts with a timestamp and a tab).
const indexFailure = [
  "2025-03-04T10:15:01.112+0000\tpreparing collections to restore from",
  "2025-03-04T10:15:01.118+0000\treading metadata for shop.orders from archive on stdin",
  "2025-03-04T10:15:01.140+0000\trestoring shop.orders from archive on stdin",
  "2025-03-04T10:15:03.901+0000\tfinished restoring shop.orders (23838 documents, 0 failures)",
  "2025-03-04T10:15:03.902+0000\trestoring indexes for collection shop.orders from metadata",
  '2025-03-04T10:15:03.902+0000\tindex: &idx.IndexDocument{Options:primitive.M{"name":"email_1", "unique":true, "v":2}, Key:primitive.D{{Key:"email", Value:1}}}',
  '2025-03-04T10:15:04.310+0000\tFailed: shop.orders: error creating indexes for shop.orders: createIndex error: (DuplicateKey) Index build failed: E11000 duplicate key error collection: shop.orders index: email_1 dup key: { email: "ada@example.com" }',
  "2025-03-04T10:15:04.311+0000\t23838 document(s) restored successfully. 0 document(s) failed to restore.",
  "",
].join("\n");

const stopOnError = [
  "2025-03-04T11:02:10.004+0000\tpreparing collections to restore from",
  "2025-03-04T11:02:10.010+0000\treading metadata for shop.customers from archive on stdin",
  "2025-03-04T11:02:10.031+0000\trestoring shop.customers from archive on stdin",
  "2025-03-04T11:02:10.412+0000\tFailed: shop.customers: error restoring from archive on stdin: bulk write exception: write errors: [E11000 duplicate key error collection: shop.customers index: _id_ dup key: { _id: 1 }]",
  "2025-03-04T11:02:10.413+0000\t0 document(s) restored successfully. 1 document(s) failed to restore.",
  "",
].join("\n");

const authentication = [
  '2025-03-04T11:30:00.518+0000\terror connecting to host: failed to connect to mongodb://db.example.net:27017/: connection() error occurred during connection handshake: auth error: sasl conversation error: unable to authenticate using mechanism "SCRAM-SHA-256": (AuthenticationFailed) Authentication failed.',
  "",
].join("\n");

const corruptArchive = [
  "2025-03-04T12:00:00.100+0000\tpreparing collections to restore from",
  "2025-03-04T12:00:00.340+0000\trestoring shop.orders from archive on stdin",
  "2025-03-04T12:00:01.002+0000\tFailed: corruption found in archive; ParserConsumer.BodyBSON() ( readBSONOrTerminator: unexpected EOF )",
  "2025-03-04T12:00:01.002+0000\t1200 document(s) restored successfully. 0 document(s) failed to restore.",
  "",
].join("\n");

describe("mongorestore's stderr", () => {
  it("names the failing line, not the summary that follows it", () => {
    const report = readToolFailure(indexFailure);
    expect(report.lines[0]).toMatch(/^Failed: shop\.orders: error creating indexes for shop\.orders: .*E11000/);
    expect(report.lines.join("\n")).not.toContain("document(s) restored successfully");
    expect(report.restored).toBe(23838);
    expect(report.failed).toBe(0);
  });

  it("says how far the restore got, or that the database may be partially restored", () => {
    expect(explainRestoreFailure(indexFailure)).toMatch(
      /^Failed: shop\.orders: error creating indexes .*; the database is partially restored \(23838 document\(s\) were restored before the failure\)$/,
    );
    expect(explainRestoreFailure(stopOnError)).toMatch(
      /^Failed: shop\.customers: error restoring from archive on stdin: bulk write exception: .*E11000 .*; the database may be partially restored$/,
    );
    expect(explainRestoreFailure(corruptArchive)).toMatch(/^Failed: corruption found in archive; .*\(1200 document\(s\)/);
  });

  it("finds failures without a Failed: prefix, and adds advice for known ones", () => {
    const explained = explainRestoreFailure(authentication);
    expect(explained).toMatch(/^error connecting to host: .*\(AuthenticationFailed\) Authentication failed\./);
    expect(explained).toContain("authentication failed: check the user, password and authSource in the URL");
  });

  it("drops timestamps and keeps at most three lines, the fatal one first", () => {
    const noisy = [
      ...Array.from(
        { length: 5 },
        (_, index) =>
          `2025-03-04T12:00:0${index}.000+0000\tcontinuing through error: E11000 duplicate key error dup key: { _id: ${index} }`,
      ),
      "2025-03-04T12:00:09.000+0000\tFailed: shop.orders: error restoring from archive on stdin: connection(db:27017[-3]) incomplete read of message header: EOF",
      "2025-03-04T12:00:09.001+0000\t17 document(s) restored successfully. 5 document(s) failed to restore.",
    ].join("\n");
    const { lines } = readToolFailure(noisy);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^Failed: shop\.orders/);
    expect(lines[1]).toBe("continuing through error: E11000 duplicate key error dup key: { _id: 0 }");
  });
});

describe("checking mongodump's output", () => {
  const magic = Buffer.from("6de29981", "hex");

  async function drain(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async function failure(stream: Readable): Promise<Error> {
    return drain(stream).then(
      () => {
        throw new Error("expected a failure");
      },
      (error: Error) => error,
    );
  }

  it("passes an archive on unchanged, even when its magic number arrives a byte at a time", async () => {
    const bytes = Buffer.concat([magic, Buffer.from("rest of the archive")]);
    expect((await drain(expectArchive(Readable.from([bytes])))).equals(bytes)).toBe(true);
    const pieces = [...bytes.subarray(0, 6)].map((byte) => Buffer.from([byte]));
    expect((await drain(expectArchive(Readable.from([...pieces, bytes.subarray(6)])))).equals(bytes)).toBe(true);
  });

  it("passes on what mongodump --gzip --archive writes", async () => {
    const bytes = gzipSync(Buffer.concat([magic, Buffer.from("archive")]));
    expect((await drain(expectArchive(Readable.from([bytes])))).equals(bytes)).toBe(true);
  });

  it("fails with TOOL_FAILED on empty output and on output that is not an archive", async () => {
    const empty = await failure(expectArchive(Readable.from([])));
    expect(isHoardError(empty, "TOOL_FAILED")).toBe(true);
    expect(empty.message).toMatch(/^mongodb: mongodump produced no archive on its output \(it wrote nothing there\)/);
    const text = await failure(expectArchive(Readable.from([Buffer.from("2025-03-04T10:15:01.112+0000\twriting shop.orders\n")])));
    expect(isHoardError(text, "TOOL_FAILED")).toBe(true);
    expect(text.message).toMatch(/^mongodb: mongodump produced no archive on its output \(it starts with 32303235/);
    const short = await failure(expectArchive(Readable.from([magic.subarray(0, 3)])));
    expect(short.message).toMatch(/only 3 byte\(s\)/);
  });
});

/** Stand-ins for the tools, writing what the real ones write in the same situation. */
describe("tool failures end to end (stand-in executables)", () => {
  let directory: string;
  let workDirectory: string;
  const url = "mongodb://backup:Sup3r%2FS3cret@db.example.net:27017/shop";

  beforeEach(async () => {
    ({ directory, workDirectory } = await directoryWithWork("hoard-mongodb-failures-"));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  async function script(name: string, body: string): Promise<string> {
    const path = join(directory, name);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
    return path;
  }

  it("reports mongorestore's failing line and the database's state, with the whole tail in detail", async () => {
    await writeFile(join(directory, "stderr.txt"), indexFailure);
    const mongorestore = await script("mongorestore", `cat > /dev/null\ncat "${directory}/stderr.txt" >&2\nexit 1`);
    const driver = createMongoDriver({ url, engine: "tools", mongorestorePath: mongorestore });
    const error = await driver
      .restore({ kind: "stream", stream: Readable.from([await tinyArchive()]) }, { workDirectory, replace: true })
      .then(
        () => {
          throw new Error("expected a failure");
        },
        (failure: unknown) => failure,
      );
    expect(isHoardError(error, "TOOL_FAILED"), String(error)).toBe(true);
    const { message, detail } = error as Error & { detail?: string };
    expect(message).toMatch(
      /^mongodb: mongorestore failed \(exit code 1\): Failed: shop\.orders: error creating indexes for shop\.orders: .*E11000 duplicate key error/,
    );
    expect(message).toMatch(/the database is partially restored \(23838 document\(s\) were restored before the failure\)$/);
    expect(detail).toContain("23838 document(s) restored successfully. 0 document(s) failed to restore.");
  });

  it("keeps the password out of a tool's failure, in the message and the detail", async () => {
    const mongorestore = await script(
      "mongorestore",
      "cat > /dev/null\necho 'Failed: error parsing uri mongodb://backup:Sup3r%2FS3cret@db.example.net:27017/ (password Sup3r/S3cret)' >&2\nexit 1",
    );
    const driver = createMongoDriver({ url, engine: "tools", mongorestorePath: mongorestore });
    const error = (await driver
      .restore({ kind: "stream", stream: Readable.from([await tinyArchive()]) }, { workDirectory, replace: true })
      .catch((failure: unknown) => failure)) as Error & { detail?: string };
    expect(isHoardError(error, "TOOL_FAILED"), String(error)).toBe(true);
    expect(error.message).toMatch(/^mongodb: mongorestore failed/);
    for (const text of [error.message, error.detail ?? ""]) {
      expect(text).not.toContain("Sup3r");
      expect(text).not.toContain("S3cret");
    }
  });

  it("stores nothing when a dump option sends mongodump's archive elsewhere (--archive=<file>)", async () => {
    // Like mongodump: the last --archive wins; with a file name, the archive goes there and stdout stays empty.
    const mongodump = await script(
      "mongodump",
      [
        "target=-",
        `for a in "$@"; do case "$a" in --archive) target=-;; --archive=*) target="\${a#--archive=}";; esac; done`,
        "if [ \"$target\" = - ]; then printf '\\155\\342\\231\\201archive'; else printf '\\155\\342\\231\\201archive' > \"$target\"; fi",
        "echo '2025-03-04T10:15:01.112+0000\twriting shop.orders to archive '\"$target\" >&2",
        "exit 0",
      ].join("\n"),
    );
    const place = await temporaryStorage();
    try {
      // Without the manifest's questions to the server (db.example.net does not exist): this is about the dump.
      const driver = {
        ...createMongoDriver({
          url,
          engine: "tools",
          mongodumpPath: mongodump,
          dumpOptions: [`--archive=${join(directory, "elsewhere.archive")}`],
        }),
        describe: undefined,
        inventory: undefined,
      };
      const error = await backup({ driver, storage: place.storage, prefix: "shop" }).then(
        () => {
          throw new Error("expected a failure");
        },
        (failure: unknown) => failure,
      );
      expect(isHoardError(error, "TOOL_FAILED"), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/^mongodb: mongodump produced no archive on its output/);
      expect(await place.files()).toEqual([]);
      expect(await listBackups(place.storage, { prefix: "shop" })).toEqual([]);
      // It did write the archive, elsewhere: the stand-in behaves as the real tool.
      expect((await readFile(join(directory, "elsewhere.archive"))).subarray(0, 4).toString("hex")).toBe("6de29981");
      expect(await readdir(workDirectory)).toEqual([]);
    } finally {
      await place.remove();
    }
  });

  it("prefixes mongodump's own failures with the plugin name", async () => {
    const mongodump = await script(
      "mongodump",
      "printf '\\155\\342\\231\\201'\necho '2025-03-04T10:15:01.112+0000\tFailed: error writing data for collection `shop.orders` to disk: error reading collection: (CursorNotFound) cursor id 42 not found' >&2\nexit 1",
    );
    const driver = createMongoDriver({ url, engine: "tools", mongodumpPath: mongodump });
    const output = await driver.dump({ workDirectory });
    if (output.kind !== "stream") throw new Error("expected a stream");
    const error = await drainFailure(output.stream);
    expect(isHoardError(error, "TOOL_FAILED"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /^mongodb: mongodump failed \(exit code 1\): Failed: error writing data for collection `shop\.orders`/,
    );
  });
});

async function drainFailure(stream: Readable): Promise<unknown> {
  try {
    for await (const _chunk of stream) {
      // Read to the end (or the failure).
    }
  } catch (error) {
    return error;
  }
  throw new Error("expected a failure");
}
