import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { backup, restore } from "@hoard/core";
import { describeDriverRoundTrip } from "@hoard/core/testing";
import { Int32 } from "mongodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { readArchive } from "../src/archive-reader.ts";
import { createMongoDriver, type MongoDriverOptions } from "../src/index.ts";
import { insert, newDatabaseUrl, seedFixture, snapshotFixture, withClient } from "./fixture.ts";
import { dumpToBuffer, put, temporaryStorage } from "./helpers.ts";

const server = inject("mongo");
const tools = inject("mongoTools");

/** The built-in engine reading three collections at once and restoring with four small batches in flight. */
const parallel: Partial<MongoDriverOptions> = { engine: "builtin", parallelCollections: 3, insertsInFlight: 4, batchSize: 50 };

// The whole round trip (every supported type, options, indexes, capped and empty collections, odd
// names) with several collections dumped at once and several insert batches in flight.
describeDriverRoundTrip("mongodb (built-in, 3 collections at once, 4 batches of 50 in flight)", {
  createDatabase: async () => newDatabaseUrl(server.url),
  seed: seedFixture,
  snapshot: snapshotFixture,
  driver: (url) => createMongoDriver({ url, ...parallel }),
});

describe("mongodb built-in engine: collections at once and inserts in flight", () => {
  let place: Awaited<ReturnType<typeof temporaryStorage>>;
  let source: string;
  let expected: unknown;

  beforeAll(async () => {
    place = await temporaryStorage();
    source = newDatabaseUrl(server.url);
    await seedFixture(source);
    expected = await snapshotFixture(source);
  });
  afterAll(async () => {
    await place.remove();
  });

  it("writes an archive that names its parallelism, passes the archive check, and that mongorestore restores exactly", async () => {
    const archive = await dumpToBuffer(createMongoDriver({ url: source, ...parallel }));
    const events = readArchive(Readable.from([archive]));
    const first = await events.next();
    await events.return(undefined);
    expect(first.value).toMatchObject({ kind: "prelude", header: { concurrentCollections: 3 } });

    const work = await mkdtemp(join(tmpdir(), "hoard-mongodb-parallel-"));
    try {
      const checker = createMongoDriver({ url: source, engine: "builtin" });
      const check = await checker.checkArchive?.({ kind: "stream", stream: Readable.from([archive]) }, { workDirectory: work });
      expect(check?.summary).toMatch(/every CRC-64 matches/);

      // mongorestore reads concurrent_collections and restores at least that many collections at once.
      await put(place.storage, "parallel-20260101000000.archive", archive);
      const target = newDatabaseUrl(server.url);
      await restore({
        driver: createMongoDriver({ url: target, engine: "tools", mongodumpPath: tools.mongodump, mongorestorePath: tools.mongorestore }),
        storage: place.storage,
        key: "parallel-20260101000000.archive",
      });
      expect(await snapshotFixture(target)).toEqual(expected);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it("restores a capped collection in its insertion order, one batch at a time, with batches in flight elsewhere", async () => {
    const url = newDatabaseUrl(server.url);
    // _ids run against the insertion order, so the natural order is not the _id order.
    const entries = Array.from({ length: 400 }, (_, index) => ({ _id: new Int32(1000 - index), line: `entry ${index}` }));
    await withClient(url, async (client) => {
      await client.db().createCollection("ticker", { capped: true, size: 1024 * 1024, max: 1000 });
      await insert(client.db(), "ticker", entries);
      await insert(
        client.db(),
        "plain",
        Array.from({ length: 120 }, (_, index) => ({ _id: new Int32(index) })),
      );
    });
    const naturalOrder = (target: string) =>
      withClient(target, async (client) =>
        (await client.db().collection("ticker").find({}).toArray()).map((document) => Number(document._id)),
      );
    const sourceOrder = await naturalOrder(url);
    expect(sourceOrder).toEqual(entries.map((entry) => entry._id.value));

    const options = { engine: "builtin", batchSize: 5, insertsInFlight: 4 } as const;
    const result = await backup({ driver: createMongoDriver({ url, ...options }), storage: place.storage, prefix: "capped" });
    const target = newDatabaseUrl(server.url);
    await restore({ driver: createMongoDriver({ url: target, ...options }), storage: place.storage, key: result.key });
    expect(await naturalOrder(target)).toEqual(sourceOrder);
    expect(
      await withClient(target, async (client) => (await client.db().collection("plain").find({}).sort({ _id: 1 }).toArray()).length),
    ).toBe(120);
  });

  it("refuses parallelCollections and insertsInFlight that are not whole numbers from 1 to 64", () => {
    for (const bad of [0, -1, 1.5, 65]) {
      expect(() => createMongoDriver({ url: source, parallelCollections: bad })).toThrow(
        /parallelCollections must be a whole number from 1 to 64/,
      );
      expect(() => createMongoDriver({ url: source, insertsInFlight: bad })).toThrow(/insertsInFlight must be a whole number from 1 to 64/);
    }
  });
});
