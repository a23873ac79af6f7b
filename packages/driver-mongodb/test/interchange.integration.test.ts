import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { parseMongoUrl } from "../src/connection-string.ts";
import { createMongoDriver } from "../src/index.ts";
import { isFerretDb, newDatabaseUrl, seedFixture, snapshotFixture, withClient } from "./fixture.ts";
import { dumpToBuffer } from "./helpers.ts";

const server = inject("mongo");
const tools = inject("mongoTools");

const toolsDriver = (url: string, dumpOptions: string[] = []) =>
  createMongoDriver({ url, engine: "tools", mongodumpPath: tools.mongodump, mongorestorePath: tools.mongorestore, dumpOptions });
const builtinDriver = (url: string) => createMongoDriver({ url, engine: "builtin" });

/** Runs the real mongorestore on bytes, as a user would by hand (URI in a private config file); returns its exit code and stderr. */
async function mongorestore(bytes: Buffer, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const directory = await mkdtemp(join(tmpdir(), "hoard-mongorestore-"));
  try {
    const configuration = join(directory, "config.yaml");
    await writeFile(configuration, `uri: ${JSON.stringify(server.url)}\n`, { mode: 0o600 });
    const child = spawn(tools.mongorestore, [`--config=${configuration}`, ...args], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.stdin.on("error", () => {});
    child.stdin.end(bytes);
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    return { code, stderr };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** The snapshot without indexes, for a restore made with --noIndexRestore or whose indexes the server refused. */
function withoutIndexes(snapshot: unknown): unknown {
  return Object.fromEntries(
    Object.entries(snapshot as Record<string, Record<string, unknown>>).map(([name, collection]) => [
      name,
      { ...collection, indexes: undefined },
    ]),
  );
}

describe("archives move between the real tools and the built-in engine", () => {
  let source: string;
  let expected: unknown;
  let ferretdb: boolean;
  let fromMongodump: Buffer;
  let fromMongodumpGzip: Buffer;
  let fromBuiltin: Buffer;

  beforeAll(async () => {
    source = newDatabaseUrl(server.url);
    await seedFixture(source);
    expected = await snapshotFixture(source);
    ferretdb = await withClient(server.url, isFerretDb);
    fromMongodump = await dumpToBuffer(toolsDriver(source));
    // --gzip as a dump option: passed to mongodump as it is, which then writes a gzip archive.
    fromMongodumpGzip = await dumpToBuffer(toolsDriver(source, ["--gzip"]));
    fromBuiltin = await dumpToBuffer(builtinDriver(source));
  });

  it("the archives are what they claim: mongodump's names its tool version, --gzip is gzip, the built-in engine's names hoard", () => {
    expect(fromMongodump.subarray(0, 4).toString("hex")).toBe("6de29981");
    expect(fromMongodump.includes(Buffer.from("100.18.0"))).toBe(true);
    expect(fromMongodumpGzip.subarray(0, 2).toString("hex")).toBe("1f8b");
    expect(gunzipSync(fromMongodumpGzip).subarray(0, 4).toString("hex")).toBe("6de29981");
    expect(fromBuiltin.includes(Buffer.from("hoard built-in engine"))).toBe(true);
  });

  for (const variant of ["plain", "gzip"] as const) {
    it(`restores mongodump --archive${variant === "gzip" ? " --gzip" : ""} output exactly with the built-in engine`, async () => {
      const target = newDatabaseUrl(server.url);
      const archive = variant === "gzip" ? fromMongodumpGzip : fromMongodump;
      await builtinDriver(target).restore({ kind: "stream", stream: Readable.from([archive]) }, { workDirectory: tmpdir() });
      expect(await snapshotFixture(target)).toEqual(expected);
    });
  }

  it("restores the built-in engine's archive exactly with mongorestore --archive (through hoard's tools engine)", async () => {
    const target = newDatabaseUrl(server.url);
    await toolsDriver(target).restore({ kind: "stream", stream: Readable.from([fromBuiltin]) }, { workDirectory: tmpdir() });
    expect(await snapshotFixture(target)).toEqual(expected);
  });

  it("restores the built-in engine's archive, gzipped, with mongorestore --archive --gzip run by hand", async () => {
    const target = newDatabaseUrl(server.url);
    const database = parseMongoUrl(target).database as string;
    const { code, stderr } = await mongorestore(gzipSync(fromBuiltin), [
      "--archive",
      "--gzip",
      "--nsFrom=$db$.$collection$",
      `--nsTo=${database}.$collection$`,
    ]);
    const restored = await snapshotFixture(target);
    if (ferretdb) {
      // mongorestore read the index specs from the archive and sent them, with the ns it adds, to
      // FerretDB v1.24, which refuses them (FerretDB#4638): the documents and collection options are
      // all there; hoard's tools engine creates the indexes itself in this case (test above).
      expect(code).toBe(1);
      expect(stderr).toMatch(/Failed: .*error creating indexes for .*: createIndex error: \(BadValue\) Index option "ns" is unknown/);
      expect(stderr).toMatch(/3020 document\(s\) restored successfully\. 0 document\(s\) failed to restore\./);
      expect(withoutIndexes(restored)).toEqual(withoutIndexes(expected));
    } else {
      expect(code, stderr).toBe(0);
      expect(restored).toEqual(expected);
    }
  });
});
