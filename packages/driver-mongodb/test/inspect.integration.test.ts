import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { type ArchiveCheck, backup, drill, type HoardEvent, isHoardError, type Manifest, readManifest, verify } from "@hoard/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseMongoUrl } from "../src/connection-string.ts";
import { createMongoDriver, type MongoDriverOptions } from "../src/index.ts";
import { insert, isFerretDb, newDatabaseUrl, withClient } from "./fixture.ts";
import { dumpToBuffer, failureOf, temporaryStorage } from "./helpers.ts";

const server = inject("mongo");
const tools = inject("mongoTools");

const toolsDriver = (url: string, options: Partial<MongoDriverOptions> = {}) =>
  createMongoDriver({ url, engine: "tools", mongodumpPath: tools.mongodump, mongorestorePath: tools.mongorestore, ...options });
const builtinDriver = (url: string, options: Partial<MongoDriverOptions> = {}) => createMongoDriver({ url, engine: "builtin", ...options });
const drivers = [
  ["tools", toolsDriver],
  ["builtin", builtinDriver],
] as const;

const context = { workDirectory: "/nonexistent-hoard-work-directory" };

/** A database with three collections of 250, 40 and 0 documents. */
async function seedCounted(url: string): Promise<void> {
  await withClient(url, async (client) => {
    const db = client.db();
    await insert(
      db,
      "orders",
      Array.from({ length: 250 }, (_, index) => ({ _id: index, total: index * 3, note: "MARKER" })),
    );
    await insert(
      db,
      "customers",
      Array.from({ length: 40 }, (_, index) => ({ _id: index, name: `customer ${index}` })),
    );
    await db.createCollection("empty");
  });
}

const expectedItems = (database: string) => [
  { database, name: "customers", kind: "collection", count: 40 },
  { database, name: "empty", kind: "collection", count: 0 },
  { database, name: "orders", kind: "collection", count: 250 },
];

function check(driver: ReturnType<typeof toolsDriver>, bytes: Buffer): Promise<ArchiveCheck> {
  if (!driver.checkArchive) throw new Error("the MongoDB driver checks archives");
  return driver.checkArchive({ kind: "stream", stream: Readable.from([bytes]) }, context);
}

async function databaseNames(): Promise<string[]> {
  return withClient(server.url, async (client) =>
    (await client.db("admin").admin().listDatabases({ nameOnly: true })).databases.map((entry) => entry.name),
  );
}

describe("mongodb driver hooks for manifests, verify and drills (against the server)", () => {
  let source: string;
  let database: string;
  let ferretdb: boolean;
  let place: Awaited<ReturnType<typeof temporaryStorage>>;

  beforeAll(async () => {
    place = await temporaryStorage();
    source = newDatabaseUrl(server.url);
    database = parseMongoUrl(source).database as string;
    await seedCounted(source);
    ferretdb = await withClient(server.url, isFerretDb);
  });
  afterAll(async () => {
    await place.remove();
  });

  describe("describe", () => {
    it("names the server and mongodump with its version on the tools path, and logs both (debug)", async () => {
      const events: HoardEvent[] = [];
      const description = await toolsDriver(source, { logger: { event: (event) => events.push(event) } }).describe?.(context);
      const version = /^mongodump version: (\S+)/m.exec(spawnSync(tools.mongodump, ["--version"], { encoding: "utf8" }).stdout)?.[1];
      expect(version).toMatch(/^100\.\d+\.\d+/);
      expect(description?.tool).toEqual({ name: "mongodump", version });
      expect(description?.server).toEqual(
        ferretdb
          ? { product: "FerretDB", version: expect.stringMatching(/^\d+\.\d+\.\d+/) }
          : { product: "MongoDB", version: expect.stringMatching(/^\d+\.\d+/) },
      );
      const debug = events.flatMap((event) => (event.type === "log" && event.level === "debug" ? [event.message] : []));
      const server = `${description?.server?.product} ${description?.server?.version}`.replaceAll(".", "\\.");
      const reports = ferretdb ? " \\(it reports MongoDB 7\\.0\\.\\d+\\)" : "";
      expect(debug).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^mongodb: server ${server}${reports}; the dump is written by mongodump ${version?.replaceAll(".", "\\.")} \\(${tools.mongodump}\\)$`,
          ),
        ),
      );
    });

    it("names the built-in engine with the driver package's version on the built-in path", async () => {
      const { version } = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
      const description = await builtinDriver(source).describe?.(context);
      expect(description?.tool).toEqual({ name: "hoard built-in engine", version });
      expect(description?.server?.product).toBe(ferretdb ? "FerretDB" : "MongoDB");
    });

    it("puts which path wrote a backup into its manifest", async () => {
      for (const [engine, driver] of drivers) {
        const { key } = await backup({ driver: driver(source), storage: place.storage, prefix: `manifest-${engine}` });
        const manifest = (await readManifest(place.storage, key)) as Manifest;
        expect(manifest.database.tool?.name, engine).toBe(engine === "tools" ? "mongodump" : "hoard built-in engine");
        expect(manifest.database.server?.product).toBe(ferretdb ? "FerretDB" : "MongoDB");
        expect(manifest.contents).toEqual({ items: expectedItems(database), exactCounts: false });
      }
    });

    it("fails with UNREACHABLE for a server that does not answer", async () => {
      const error = await failureOf(
        builtinDriver("mongodb://127.0.0.1:9/shop?serverSelectionTimeoutMS=500").describe?.(context) ?? Promise.resolve(),
      );
      expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    });
  });

  describe("inventory", () => {
    it("lists the URL's database's collections with estimated counts, or exact ones when asked", async () => {
      const driver = builtinDriver(source);
      expect(await driver.inventory?.(context)).toEqual({ items: expectedItems(database), exactCounts: false });
      expect(await driver.inventory?.({ ...context, exactCounts: true })).toEqual({ items: expectedItems(database), exactCounts: true });
    });

    it("lists every database's collections when the URL names none", async () => {
      const inventory = await builtinDriver(server.url).inventory?.({ ...context, exactCounts: true });
      expect(inventory?.items.filter((item) => item.database === database)).toEqual(expectedItems(database));
      expect(inventory?.items.some((item) => ["admin", "config", "local"].includes(item.database ?? ""))).toBe(false);
    });
  });

  describe("checkArchive", () => {
    let archives: Record<string, Buffer>;
    beforeAll(async () => {
      archives = {
        tools: await dumpToBuffer(toolsDriver(source)),
        "tools --gzip": await dumpToBuffer(toolsDriver(source, { dumpOptions: ["--gzip"] })),
        builtin: await dumpToBuffer(builtinDriver(source)),
      };
    });

    it("reads archives of mongodump (plain and --gzip) and of the built-in engine, with exact counts", async () => {
      for (const [writer, bytes] of Object.entries(archives)) {
        const result = await check(builtinDriver(source), bytes);
        expect(result.inventory, writer).toEqual({ items: expectedItems(database), exactCounts: true });
        expect(result.summary, writer).toMatch(
          /^mongodump archive \(format 0\.1, written by .+ from server \d+\.\d+\.\d+(, gzip inside)?\): 3 collection\(s\), 0 view\(s\), 290 document\(s\) in 3 namespace\(s\), every CRC-64 matches$/,
        );
      }
      expect((await check(builtinDriver(source), archives["tools --gzip"] as Buffer)).summary).toMatch(/, gzip inside\)/);
    });

    it("fails with CORRUPT_ARCHIVE naming the collection for one altered byte, and for a cut", async () => {
      const plain = archives.tools as Buffer;
      const altered = Buffer.from(plain);
      altered[altered.indexOf(Buffer.from("MARKER"))] = "N".charCodeAt(0);
      const crc = await failureOf(check(toolsDriver(source), altered));
      expect(isHoardError(crc, "CORRUPT_ARCHIVE"), String(crc)).toBe(true);
      expect((crc as Error).message).toMatch(
        new RegExp(`^mongodb: the archive is damaged or truncated: CRC mismatch for ${database}\\.orders`),
      );
      const cut = await failureOf(check(toolsDriver(source), plain.subarray(0, plain.length - 4)));
      expect(isHoardError(cut, "CORRUPT_ARCHIVE"), String(cut)).toBe(true);
      const cutGzip = await failureOf(check(toolsDriver(source), gzipSync(plain).subarray(0, 300)));
      expect(isHoardError(cutGzip, "CORRUPT_ARCHIVE"), String(cutGzip)).toBe(true);
      const other = await failureOf(check(toolsDriver(source), Buffer.from("-- PostgreSQL database dump\n")));
      expect(isHoardError(other, "UNSUPPORTED_FORMAT"), String(other)).toBe(true);
    });

    it("is what hoard verify runs on a stored backup", async () => {
      const { key } = await backup({ driver: toolsDriver(source), storage: place.storage, prefix: "verified" });
      const result = await verify({ storage: place.storage, key, driver: builtinDriver(source) });
      expect(result.archive?.inventory).toEqual({ items: expectedItems(database), exactCounts: true });
    });
  });

  describe("prepareScratch", () => {
    it("accepts a database that does not exist, and release drops it after a drill restored into it", async () => {
      for (const [engine, driver] of drivers) {
        const { key } = await backup({ driver: driver(source), storage: place.storage, prefix: `drill-${engine}` });
        const scratch = newDatabaseUrl(server.url);
        const name = parseMongoUrl(scratch).database as string;
        const result = await drill({ storage: place.storage, key, driver: driver(scratch) });
        expect(result.scratchCreated, engine).toBe(true);
        expect(result.compared, engine).toEqual({ items: 3, counts: 3 });
        expect(await databaseNames()).not.toContain(name);
        expect(await databaseNames()).toContain(database);
      }
    });

    it("accepts an existing empty database and leaves it to its owner", async () => {
      const scratch = newDatabaseUrl(server.url);
      const name = parseMongoUrl(scratch).database as string;
      // A database that exists and holds no collection of its own: on MongoDB only system collections make one.
      await withClient(scratch, async (client) => {
        await client.db().createCollection(ferretdb ? "gone" : "system.js");
        if (ferretdb) await client.db().collection("gone").drop();
      });
      expect(await databaseNames()).toContain(name);
      const prepared = await builtinDriver(scratch).prepareScratch?.(context);
      expect(prepared?.created).toBe(false);
      await prepared?.release();
      expect(await databaseNames()).toContain(name);
      await withClient(scratch, (client) => client.db().dropDatabase());
    });

    it("refuses a database that holds a collection with TARGET_NOT_EMPTY, and a URL without a database", async () => {
      const error = await failureOf(builtinDriver(source).prepareScratch?.(context) ?? Promise.resolve());
      expect(isHoardError(error, "TARGET_NOT_EMPTY"), String(error)).toBe(true);
      expect((error as Error).message).toMatch(new RegExp(`${database} is not empty \\(3 collections`));
      expect(await withClient(source, (client) => client.db().collection("orders").countDocuments())).toBe(250);
      const whole = await failureOf(builtinDriver(server.url).prepareScratch?.(context) ?? Promise.resolve());
      expect(isHoardError(whole, "INVALID_ARGUMENT"), String(whole)).toBe(true);
    });
  });
});
