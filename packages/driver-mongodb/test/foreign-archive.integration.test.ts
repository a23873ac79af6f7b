import { Readable } from "node:stream";
import type { HoardEvent } from "@hoard/core";
import { BSON } from "mongodb";
import { describe, expect, inject, it } from "vitest";
import { encodeNamespaceHeader, encodePrelude, encodeTerminator } from "../src/archive-writer.ts";
import { createCrc64 } from "../src/crc64.ts";
import { createMongoDriver } from "../src/index.ts";
import { newDatabaseUrl, snapshotFixture } from "./fixture.ts";

const server = inject("mongo");

function document(value: object): Buffer {
  return Buffer.from(BSON.serialize(value));
}

function checksum(...documents: Buffer[]): bigint {
  const crc = createCrc64();
  for (const part of documents) crc.update(part);
  return crc.signedValue();
}

/**
 * An archive laid out the way mongodump writes one with parallel collections, from an older server
 * whose index specs carry `ns` (which FerretDB v1.24 rejects), with namespaces only mongorestore
 * restores (the oplog, users) and one with data but no metadata.
 */
function foreignArchive(): Buffer {
  const peopleMetadata = JSON.stringify({
    indexes: [
      { v: { $numberInt: "2" }, key: { _id: { $numberInt: "1" } }, name: "_id_", ns: "legacy.people" },
      { v: { $numberInt: "2" }, unique: true, key: { email: { $numberInt: "1" } }, name: "email_1", ns: "legacy.people" },
    ],
    uuid: "0123456789abcdef0123456789abcdef",
    collectionName: "people",
    type: "collection",
  });
  const ordersMetadata = JSON.stringify({ options: {}, indexes: [], collectionName: "orders", type: "collection" });
  const ada = document({ _id: 1, email: "ada@example.com" });
  const grace = document({ _id: 2, email: "grace@example.com" });
  const order = document({ _id: "o-1", total: 12.5 });
  const stray = document({ _id: "s-1" });
  const user = document({ _id: "legacy.admin", user: "admin", db: "legacy" });
  const oplogEntry = document({ op: "n", ns: "", o: {} });
  const ns = (database: string, collection: string) => ({ database, collection });
  return Buffer.concat([
    encodePrelude({ concurrentCollections: 4, formatVersion: "0.1", serverVersion: "4.0.28", toolVersion: "100.9.4" }, [
      { database: "legacy", collection: "people", metadata: peopleMetadata, size: 0, type: "collection" },
      { database: "legacy", collection: "orders", metadata: ordersMetadata, size: 0, type: "collection" },
      { database: "legacy", collection: "$admin.system.users", metadata: "", size: 0, type: "" },
      { database: "", collection: "oplog", metadata: "", size: 0, type: "" },
    ]),
    encodeNamespaceHeader(ns("legacy", "people")),
    ada,
    encodeTerminator(),
    encodeNamespaceHeader(ns("legacy", "orders")),
    order,
    encodeTerminator(),
    encodeNamespaceHeader(ns("legacy", "$admin.system.users")),
    user,
    encodeTerminator(),
    encodeNamespaceHeader(ns("legacy", "people")),
    grace,
    encodeTerminator(),
    encodeNamespaceHeader(ns("legacy", "orders"), checksum(order)),
    encodeTerminator(),
    encodeNamespaceHeader(ns("legacy", "stray")),
    stray,
    encodeTerminator(),
    encodeNamespaceHeader(ns("legacy", "stray"), checksum(stray)),
    encodeTerminator(),
    encodeNamespaceHeader(ns("legacy", "$admin.system.users"), checksum(user)),
    encodeTerminator(),
    encodeNamespaceHeader(ns("legacy", "people"), checksum(ada, grace)),
    encodeTerminator(),
    encodeNamespaceHeader(ns("", "oplog")),
    oplogEntry,
    encodeTerminator(),
    encodeNamespaceHeader(ns("", "oplog"), checksum(oplogEntry)),
    encodeTerminator(),
  ]);
}

describe("an archive as mongodump writes it (built-in engine)", () => {
  it("restores interleaved segments into the URL's database, strips ns from index specs, skips users and the oplog", async () => {
    const target = newDatabaseUrl(server.url);
    const events: HoardEvent[] = [];
    const driver = createMongoDriver({ url: target, engine: "builtin", logger: { event: (event) => events.push(event) } });
    await driver.restore({ kind: "stream", stream: Readable.from([foreignArchive()]) }, { workDirectory: "/nonexistent" });

    const snapshot = (await snapshotFixture(target)) as Record<string, { documents: string[]; indexes: string[] }>;
    expect(Object.keys(snapshot).sort()).toEqual(["orders", "people", "stray"]);
    expect(snapshot.people?.documents).toHaveLength(2);
    expect(snapshot.people?.indexes).toContain('{"key":{"email":{"$numberInt":"1"}},"name":"email_1","unique":true}');
    expect(snapshot.orders?.documents).toEqual(['{"_id":"o-1","total":{"$numberDouble":"12.5"}}']);
    const warnings = events.flatMap((event) => (event.type === "log" && event.level === "warn" ? [event.message] : []));
    expect(warnings).toEqual([
      "mongodb: skipping legacy.$admin.system.users: users and roles are restored only by mongorestore",
      "mongodb: skipping .oplog: the oplog is replayed only by mongorestore --oplogReplay",
      expect.stringMatching(/legacy\.stray has data but no metadata/),
    ]);
  });
});
