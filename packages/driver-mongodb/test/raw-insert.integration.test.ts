import { Readable } from "node:stream";
import { isHoardError, restore } from "@hoard/core";
import { BSON } from "mongodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { encodeArchive } from "../src/archive-writer.ts";
import { createMongoDriver } from "../src/index.ts";
import { newDatabaseUrl, withClient } from "./fixture.ts";
import { failureOf, put, temporaryStorage } from "./helpers.ts";

const server = inject("mongo");

/** An archive of `shop.orders` holding `documents` exactly as given (raw BSON), with a matching CRC. */
async function archiveOf(documents: Uint8Array[]): Promise<Buffer> {
  const orders = { database: "shop", collection: "orders", metadata: '{"indexes":[]}', size: 0, type: "collection" };
  const header = { concurrentCollections: 1, formatVersion: "0.1", serverVersion: "7.0.0", toolVersion: "hoard tests" };
  const chunks: Buffer[] = [];
  for await (const chunk of encodeArchive(header, [{ metadata: orders, documents: () => Readable.from(documents) }])) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe("mongodb built-in restore: documents sent as the archive holds them", () => {
  let place: Awaited<ReturnType<typeof temporaryStorage>>;

  beforeAll(async () => {
    place = await temporaryStorage();
  });
  afterAll(async () => {
    await place.remove();
  });

  it("fails with the server's refusal and how many documents of the batch it refused", async () => {
    const documents = [BSON.serialize({ _id: 1, item: "book" }), BSON.serialize({ _id: 1, item: "lamp" }), BSON.serialize({ _id: 2 })];
    await put(place.storage, "duplicate-20260101000000.archive", await archiveOf(documents));
    const target = newDatabaseUrl(server.url);
    const error = await failureOf(
      restore({
        driver: createMongoDriver({ url: target, engine: "builtin" }),
        storage: place.storage,
        key: "duplicate-20260101000000.archive",
      }),
    );
    expect(isHoardError(error, "TOOL_FAILED"), String(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(
      /inserting into [^ ]+\.orders \(1 of 3 documents rejected\)\) failed: .*duplicate key/,
    );
    // Unordered: the documents the server accepted stay, as with mongorestore.
    expect(await withClient(target, (client) => client.db().collection("orders").countDocuments({}))).toBe(2);
  });

  it("fails an archive holding a document that is not valid BSON (its CRC matching) with CORRUPT_ARCHIVE", async () => {
    const damaged = Buffer.from(BSON.serialize({ _id: 2, a: 3 }));
    // The type byte of "a" (int32, 0x10) becomes one that BSON does not have; length and final NUL stay right.
    damaged[damaged.indexOf(Buffer.from([0x10, 0x61, 0x00]))] = 0x99;
    await put(place.storage, "invalid-20260101000000.archive", await archiveOf([BSON.serialize({ _id: 1 }), damaged]));
    const error = await failureOf(
      restore({
        driver: createMongoDriver({ url: newDatabaseUrl(server.url), engine: "builtin" }),
        storage: place.storage,
        key: "invalid-20260101000000.archive",
      }),
    );
    expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(
      /^mongodb: .+ is damaged: a document of shop\.orders is not valid BSON \(.*unknown BSON type/i,
    );
  });
});
