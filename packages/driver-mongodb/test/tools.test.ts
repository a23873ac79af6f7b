import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { isHoardError } from "@hoard/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodeNamespaceHeader, encodePrelude, encodeTerminator } from "../src/archive-writer.ts";
import { createMongoDriver } from "../src/index.ts";
import {
  insertionWorkers,
  mongodumpArguments,
  mongorestoreArguments,
  toolConfigurationText,
  writeToolConfiguration,
} from "../src/tools.ts";
import { directoryWithWork, tinyArchive } from "./helpers.ts";

const secretUrl = "mongodb://backup:s3cr%22t%20pass@db.example.net:27017/shop?authSource=admin";
const password = "s3cr";

describe("tool arguments", () => {
  it("give mongodump the configuration file and the archive on stdout, then the user's options", () => {
    expect(mongodumpArguments("/private/config.yaml", ["--numParallelCollections=1"])).toEqual([
      "--config=/private/config.yaml",
      "--archive",
      "--numParallelCollections=1",
    ]);
  });

  it("rename every namespace into the URL's database, and drop only when asked", () => {
    expect(mongorestoreArguments("/c.yaml", { database: "target", drop: true, restoreOptions: ["--noIndexRestore"] })).toEqual([
      "--config=/c.yaml",
      "--archive",
      "--drop",
      "--nsFrom=$db$.$collection$",
      "--nsTo=target.$collection$",
      "--noIndexRestore",
    ]);
    expect(mongorestoreArguments("/c.yaml", { database: undefined, drop: false, restoreOptions: [] })).toEqual([
      "--config=/c.yaml",
      "--archive",
    ]);
  });

  it("leave namespaces to the user who chooses them, and do not repeat --drop", () => {
    expect(mongorestoreArguments("/c.yaml", { database: "target", drop: true, restoreOptions: ["--drop", "--nsInclude=shop.*"] })).toEqual([
      "--config=/c.yaml",
      "--archive",
      "--drop",
      "--nsInclude=shop.*",
    ]);
  });

  it("give mongorestore insertion workers per collection unless the user chooses them or their order", () => {
    const withWorkers = (restoreOptions: string[]) =>
      mongorestoreArguments("/c.yaml", { database: undefined, drop: false, restoreOptions, insertionWorkers: 2 });
    expect(withWorkers([])).toEqual(["--config=/c.yaml", "--archive", "--numInsertionWorkersPerCollection=2"]);
    expect(withWorkers(["--numInsertionWorkersPerCollection=8"])).toEqual([
      "--config=/c.yaml",
      "--archive",
      "--numInsertionWorkersPerCollection=8",
    ]);
    expect(withWorkers(["--maintainInsertionOrder"])).toEqual(["--config=/c.yaml", "--archive", "--maintainInsertionOrder"]);
    expect(mongorestoreArguments("/c.yaml", { database: undefined, drop: false, restoreOptions: [], insertionWorkers: 1 })).toEqual([
      "--config=/c.yaml",
      "--archive",
    ]);
  });

  it("use one insertion worker for an archive with a capped collection (more would reorder it) or unreadable metadata", () => {
    const collection = (metadata: string) => ({ database: "shop", collection: "c", metadata, size: 0, type: "collection" });
    const plain = collection('{"options":{},"indexes":[]}');
    expect(insertionWorkers([plain, plain], 2, "a")).toBe(2);
    expect(insertionWorkers([plain], 1, "a")).toBe(1);
    expect(insertionWorkers([plain, collection('{"options":{"capped":true,"size":4096},"indexes":[]}')], 2, "a")).toBe(1);
    expect(insertionWorkers([collection("{not json")], 4, "a")).toBe(1);
  });

  it("hold no URI and no password", () => {
    const args = [
      ...mongodumpArguments("/c.yaml", []),
      ...mongorestoreArguments("/c.yaml", { database: "shop", drop: false, restoreOptions: [] }),
    ];
    expect(args.join(" ")).not.toContain(password);
    expect(args.join(" ")).not.toContain("mongodb://");
  });
});

describe("tool configuration file", () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), "hoard-mongodb-tools-"));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("holds the URI as a YAML double-quoted string, escaped the JSON way", () => {
    const text = toolConfigurationText('mongodb://u:a"b\\c@h/db');
    expect(text).toBe('uri: "mongodb://u:a\\"b\\\\c@h/db"\n');
    expect(JSON.parse(text.slice("uri: ".length))).toBe('mongodb://u:a"b\\c@h/db');
  });

  it("is private (0600 in a 0700 directory) and removed by remove()", async () => {
    const configuration = await writeToolConfiguration(directory, secretUrl);
    expect((await stat(configuration.path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(configuration.path, ".."))).mode & 0o777).toBe(0o700);
    expect(await readFile(configuration.path, "utf8")).toBe(`uri: ${JSON.stringify(secretUrl)}\n`);
    await configuration.remove();
    await configuration.remove();
    expect(await readdir(directory)).toEqual([]);
  });
});

/**
 * Stand-ins for mongodump and mongorestore that record how they were called. They check hoard's
 * side of the process plumbing (argv, the configuration file's life, stdin and stdout), not the
 * tools, which cannot be built on this machine.
 */
describe("running the tools (stand-in executables)", () => {
  let directory: string;
  let workDirectory: string;

  beforeEach(async () => {
    ({ directory, workDirectory } = await directoryWithWork("hoard-mongodb-stand-in-"));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  async function standIn(name: string, body: string): Promise<string> {
    const path = join(directory, name);
    const script = `#!/bin/sh
record="${directory}/${name}"
printf '%s\\n' "$@" > "$record.args"
for argument in "$@"; do case "$argument" in --config=*) configuration="\${argument#--config=}";; esac; done
cp "$configuration" "$record.config"
stat -c %a "$configuration" > "$record.mode"
${body}
`;
    await writeFile(path, script);
    await chmod(path, 0o755);
    return path;
  }

  async function readAll(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  it("dumps through mongodump with the URI only in the private configuration file, removed afterwards", async () => {
    // A minimal archive: hoard reads its prelude to check that the URL's database was dumped.
    const archive = Buffer.concat([
      encodePrelude({ concurrentCollections: 1, formatVersion: "0.1", serverVersion: "7.0.0", toolVersion: "stand-in" }, [
        { database: "shop", collection: "orders", metadata: "", size: 0, type: "collection" },
      ]),
      encodeNamespaceHeader({ database: "shop", collection: "orders" }, 0n),
      encodeTerminator(),
    ]);
    await writeFile(join(directory, "archive.bin"), archive);
    const mongodump = await standIn("mongodump", `cat "${directory}/archive.bin"`);
    const driver = createMongoDriver({
      url: secretUrl,
      engine: "tools",
      mongodumpPath: mongodump,
      dumpOptions: ["--numParallelCollections=1"],
    });
    const output = await driver.dump({ workDirectory });
    expect(output.kind).toBe("stream");
    if (output.kind !== "stream") return;
    expect((await readAll(output.stream)).equals(archive)).toBe(true);
    const args = await readFile(join(directory, "mongodump.args"), "utf8");
    expect(args).not.toContain(password);
    expect(args).toMatch(/^--config=.*\n--archive\n--numParallelCollections=1\n$/);
    expect(await readFile(join(directory, "mongodump.config"), "utf8")).toBe(
      `uri: ${JSON.stringify(`${secretUrl}&serverSelectionTimeoutMS=15000&connectTimeoutMS=15000`)}\n`,
    );
    expect((await readFile(join(directory, "mongodump.mode"), "utf8")).trim()).toBe("600");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await readdir(workDirectory)).toEqual([]);
    expect(driver.url).not.toContain(password);
  });

  it("fails the dump stream when mongodump fails, and still removes the configuration file", async () => {
    const mongodump = await standIn("mongodump", "echo 'Failed: server selection error: connection refused' >&2; exit 1");
    const driver = createMongoDriver({ url: secretUrl, engine: "tools", mongodumpPath: mongodump });
    const output = await driver.dump({ workDirectory });
    if (output.kind !== "stream") throw new Error("expected a stream");
    const error = await readAll(output.stream).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(isHoardError(error, "UNREACHABLE")).toBe(true);
    expect(String(error)).toMatch(/cannot reach the server/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await readdir(workDirectory)).toEqual([]);
  });

  it("restores through mongorestore: decompressed input on stdin, URI without database, renaming and --drop", async () => {
    const mongorestore = await standIn("mongorestore", `cat > "${directory}/mongorestore.stdin"`);
    const driver = createMongoDriver({ url: secretUrl, engine: "tools", mongorestorePath: mongorestore, drop: true });
    // As `mongodump --gzip --archive` writes it, stored without a .gz extension.
    const archive = await tinyArchive();
    await driver.restore({ kind: "stream", stream: Readable.from([gzipSync(archive)]) }, { workDirectory });
    expect((await readFile(join(directory, "mongorestore.stdin"))).equals(archive)).toBe(true);
    const args = (await readFile(join(directory, "mongorestore.args"), "utf8")).trim().split("\n");
    // Two insertion workers per collection: the driver's default insertsInFlight, and the archive holds no capped collection.
    expect(args.slice(1)).toEqual([
      "--archive",
      "--drop",
      "--nsFrom=$db$.$collection$",
      "--nsTo=shop.$collection$",
      "--numInsertionWorkersPerCollection=2",
    ]);
    expect(args.join(" ")).not.toContain(password);
    const configured = JSON.parse((await readFile(join(directory, "mongorestore.config"), "utf8")).slice("uri: ".length));
    expect(configured).toBe(
      "mongodb://backup:s3cr%22t%20pass@db.example.net:27017/?authSource=admin&serverSelectionTimeoutMS=15000&connectTimeoutMS=15000",
    );
    expect(await readdir(workDirectory)).toEqual([]);
  });

  it("reads the prelude before mongorestore starts: an input that is no archive fails without running it, the database unchanged", async () => {
    const mongorestore = await standIn("mongorestore", "cat > /dev/null");
    const driver = createMongoDriver({ url: secretUrl, engine: "tools", mongorestorePath: mongorestore });
    const error = await driver
      .restore({ kind: "stream", stream: Readable.from([Buffer.from("-- PostgreSQL database dump\n")]) }, { workDirectory })
      .then(
        () => undefined,
        (failure: unknown) => failure,
      );
    expect(isHoardError(error, "UNSUPPORTED_FORMAT"), String(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(
      /not a mongodump archive.*; mongorestore was not started: the database was not changed$/,
    );
    await expect(readFile(join(directory, "mongorestore.args"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("removes the configuration file when mongorestore fails", async () => {
    const mongorestore = await standIn("mongorestore", "cat > /dev/null; echo 'Failed: authentication failed' >&2; exit 1");
    const driver = createMongoDriver({ url: secretUrl, engine: "tools", mongorestorePath: mongorestore });
    // replace: the target check would first try to reach db.example.net.
    const error = await driver
      .restore({ kind: "stream", stream: Readable.from([await tinyArchive()]) }, { workDirectory, replace: true })
      .then(
        () => undefined,
        (failure: unknown) => failure,
      );
    expect(isHoardError(error, "UNAUTHENTICATED")).toBe(true);
    expect(String(error)).toMatch(/authentication failed/);
    expect(await readdir(workDirectory)).toEqual([]);
  });

  it("says TOOL_NOT_FOUND when the tools engine is asked for and mongodump is missing", async () => {
    const driver = createMongoDriver({ url: secretUrl, engine: "tools", mongodumpPath: join(directory, "missing", "mongodump") });
    await expect(driver.dump({ workDirectory })).rejects.toMatchObject({ code: "TOOL_NOT_FOUND" });
  });

  it("refuses tool options the built-in engine cannot honour", async () => {
    const driver = createMongoDriver({ url: secretUrl, engine: "builtin", dumpOptions: ["--oplog"], restoreOptions: ["--noIndexRestore"] });
    await expect(driver.dump({ workDirectory })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(driver.restore({ kind: "stream", stream: Readable.from([]) }, { workDirectory })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
  });
});
