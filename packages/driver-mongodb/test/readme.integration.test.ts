import { backup, restore } from "@hoard/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseMongoUrl } from "../src/connection-string.ts";
import { createMongoDriver } from "../src/index.ts";
import { databaseUrl, insert, newDatabaseUrl, snapshotFixture, withClient } from "./fixture.ts";
import { temporaryStorage } from "./helpers.ts";

const server = inject("mongo");
const withoutTools = { mongodumpPath: "hoard-test-no-mongodump", mongorestorePath: "hoard-test-no-mongorestore" };

// The README's example, with a FerretDB database in place of db.example.net, a temporary directory
// in place of /var/backups/mongodb, and tool names that cannot exist, so that engine "auto" picks
// the built-in engine even where mongodump is installed (mongorestore's index specs carry `ns`,
// which FerretDB v1.24 rejects).
describe("README example", () => {
  let place: Awaited<ReturnType<typeof temporaryStorage>>;
  beforeAll(async () => {
    place = await temporaryStorage();
  });
  afterAll(async () => {
    await place.remove();
  });

  it("backs up shop and restores it as shop_copy", async () => {
    const shop = newDatabaseUrl(server.url);
    const shopCopy = databaseUrl(server.url, `${parseMongoUrl(shop).database}_copy`);
    await withClient(shop, (client) => insert(client.db(), "orders", [{ _id: 1, item: "book" }]));

    const storage = place.storage;
    const { key } = await backup({ driver: createMongoDriver({ url: shop, ...withoutTools }), storage, prefix: "shop" });
    await restore({ driver: createMongoDriver({ url: shopCopy, ...withoutTools }), storage, key, replace: true });

    expect(key).toMatch(/^shop-\d{14}\.archive\.zst$/);
    expect(await snapshotFixture(shopCopy)).toEqual(await snapshotFixture(shop));
  });
});
