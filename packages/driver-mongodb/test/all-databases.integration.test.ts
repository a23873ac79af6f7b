import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { backup, restore } from "@hoard/core";
import { type MongoServer, type PostgresServer, startMongo, startPostgres } from "@hoard/test-harness";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ArchiveEvent, readArchive } from "../src/archive-reader.ts";
import { createMongoDriver } from "../src/index.ts";
import { databaseUrl, insert, seedFixture, snapshotDatabase, withClient } from "./fixture.ts";
import { dumpToBuffer, temporaryStorage } from "./helpers.ts";

/**
 * A URL without a database dumps every database but admin, config and local, and restores each
 * into the database the archive names. This needs servers of its own: two fresh FerretDB
 * instances. With HOARD_TEST_MONGODB_URL both would be that one shared server, where restoring
 * every database would collide with other tests; there, only the dump side is checked.
 */
describe("mongodb without a database in the URL (built-in engine)", () => {
  let postgres: PostgresServer;
  let source: MongoServer;
  let target: MongoServer;
  const names = [`hoard_all_${randomBytes(4).toString("hex")}`, `hoard_all_${randomBytes(4).toString("hex")}`] as const;

  beforeAll(async () => {
    postgres = await startPostgres();
    source = await startMongo(postgres);
    target = await startMongo(postgres);
    await seedFixture(databaseUrl(source.url, names[0]));
    await withClient(databaseUrl(source.url, names[1]), async (client) => {
      await insert(client.db(), "second", [{ _id: 1, in: "the second database" }]);
    });
  });
  afterAll(async () => {
    await target?.stop();
    await source?.stop();
    await postgres?.stop();
  });

  it("dumps every database except admin, config and local", async () => {
    const archive = await dumpToBuffer(createMongoDriver({ url: databaseUrl(source.url, undefined), engine: "builtin" }));
    const events: ArchiveEvent[] = [];
    for await (const event of readArchive(Readable.from([archive]))) events.push(event);
    const prelude = events[0];
    if (prelude?.kind !== "prelude") throw new Error("no prelude");
    const databases = new Set(prelude.collections.map((collection) => collection.database));
    for (const name of names) expect(databases).toContain(name);
    for (const skipped of ["admin", "config", "local"]) expect(databases).not.toContain(skipped);
  });

  it("restores every database under its own name on another server", async () => {
    if (source.url === target.url) return; // One shared server (HOARD_TEST_MONGODB_URL): see above.
    const place = await temporaryStorage();
    try {
      const { key } = await backup({
        driver: createMongoDriver({ url: source.url, engine: "builtin" }),
        storage: place.storage,
        prefix: "all",
      });
      await restore({ driver: createMongoDriver({ url: target.url, engine: "builtin" }), storage: place.storage, key });
      for (const name of names) {
        const expected = await withClient(source.url, (client) => snapshotDatabase(client, name));
        expect(await withClient(target.url, (client) => snapshotDatabase(client, name))).toEqual(expected);
      }
      const listed = await withClient(
        target.url,
        async (client) => (await client.db("admin").admin().listDatabases({ nameOnly: true })).databases,
      );
      expect(listed.map((database) => database.name).sort()).toEqual([...names].sort());
    } finally {
      await place.remove();
    }
  });
});
