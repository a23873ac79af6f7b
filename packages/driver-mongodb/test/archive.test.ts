import { Readable } from "node:stream";
import { isHoardError } from "@hoard/core";
import { BSON } from "mongodb";
import { describe, expect, it } from "vitest";
import type { ArchiveCollectionMetadata, ArchiveHeader } from "../src/archive-format.ts";
import { type ArchiveEvent, readArchive } from "../src/archive-reader.ts";
import { type ArchiveCollection, encodeArchive, encodeNamespace, encodeNamespaceHeader, encodePrelude } from "../src/archive-writer.ts";
import { createCrc64 } from "../src/crc64.ts";

// A tiny BSON encoder for the few field types the archive's own documents use, written from
// bsonspec.org so that the expected bytes do not come from the library the writer uses.
type Field = [name: string, kind: "string" | "int32" | "int64" | "boolean", value: string | number | bigint | boolean];
function handBson(fields: Field[]): Buffer {
  const body: Buffer[] = [];
  for (const [name, kind, value] of fields) {
    const key = Buffer.from(`${name}\0`, "utf8");
    if (kind === "string") {
      const text = Buffer.from(`${String(value)}\0`, "utf8");
      const length = Buffer.alloc(4);
      length.writeInt32LE(text.length);
      body.push(Buffer.from([0x02]), key, length, text);
    } else if (kind === "int32") {
      const number = Buffer.alloc(4);
      number.writeInt32LE(Number(value));
      body.push(Buffer.from([0x10]), key, number);
    } else if (kind === "int64") {
      const number = Buffer.alloc(8);
      number.writeBigInt64LE(BigInt(value as bigint));
      body.push(Buffer.from([0x12]), key, number);
    } else {
      body.push(Buffer.from([0x08]), key, Buffer.from([value ? 1 : 0]));
    }
  }
  const content = Buffer.concat(body);
  const length = Buffer.alloc(4);
  length.writeInt32LE(content.length + 5);
  return Buffer.concat([length, content, Buffer.from([0])]);
}

const terminator = Buffer.from([0xff, 0xff, 0xff, 0xff]);
const magic = Buffer.from([0x6d, 0xe2, 0x99, 0x81]);
const header: ArchiveHeader = { concurrentCollections: 1, formatVersion: "0.1", serverVersion: "7.0.0", toolVersion: "test" };
const people: ArchiveCollectionMetadata = {
  database: "shop",
  collection: "people",
  metadata: '{"indexes":[]}',
  size: 0,
  type: "collection",
};
const empty: ArchiveCollectionMetadata = { database: "shop", collection: "empty", metadata: "", size: 0, type: "collection" };
const documents = [BSON.serialize({ _id: 1, name: "Ada" }), BSON.serialize({ _id: 2, name: "Grace", tags: ["x", "y"] })].map((bytes) =>
  Buffer.from(bytes),
);

function namespaceHeader(database: string, collection: string, eof: boolean, crc: bigint): Buffer {
  return handBson([
    ["db", "string", database],
    ["collection", "string", collection],
    ["EOF", "boolean", eof],
    ["CRC", "int64", crc],
  ]);
}

function crcOf(...parts: Buffer[]): bigint {
  const checksum = createCrc64();
  for (const part of parts) checksum.update(part);
  return checksum.signedValue();
}

async function* fromArray(values: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* values;
}

function collectionOf(metadata: ArchiveCollectionMetadata, values: Uint8Array[]): ArchiveCollection {
  return { metadata, documents: () => fromArray(values) };
}

async function bytesOf(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function sampleArchive(): Promise<Buffer> {
  return bytesOf(encodeArchive(header, [collectionOf(people, documents), collectionOf(empty, [])]));
}

async function eventsOf(archive: Buffer, chunkSize = 1 << 20): Promise<ArchiveEvent[]> {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < archive.length; offset += chunkSize) chunks.push(archive.subarray(offset, offset + chunkSize));
  const events: ArchiveEvent[] = [];
  for await (const event of readArchive(fromArray(chunks), { name: "sample.archive" })) events.push(event);
  return events;
}

async function failureOf(archive: Buffer): Promise<unknown> {
  try {
    await eventsOf(archive);
  } catch (error) {
    return error;
  }
  throw new Error("the archive was read without an error");
}

describe("archive writer", () => {
  it("lays out magic, header, metadata, terminator and namespace blocks as spec.md says, byte for byte", async () => {
    const expected = Buffer.concat([
      magic,
      handBson([
        ["concurrent_collections", "int32", 1],
        ["version", "string", "0.1"],
        ["server_version", "string", "7.0.0"],
        ["tool_version", "string", "test"],
      ]),
      handBson([
        ["db", "string", "shop"],
        ["collection", "string", "people"],
        ["metadata", "string", '{"indexes":[]}'],
        ["size", "int32", 0],
        ["type", "string", "collection"],
      ]),
      handBson([
        ["db", "string", "shop"],
        ["collection", "string", "empty"],
        ["metadata", "string", ""],
        ["size", "int32", 0],
        ["type", "string", "collection"],
      ]),
      terminator,
      namespaceHeader("shop", "people", false, 0n),
      ...documents,
      terminator,
      namespaceHeader("shop", "people", true, crcOf(...documents)),
      terminator,
      // An empty collection still gets its segment, which mongorestore needs to create it.
      namespaceHeader("shop", "empty", false, 0n),
      terminator,
      namespaceHeader("shop", "empty", true, 0n),
      terminator,
    ]);
    expect((await sampleArchive()).toString("hex")).toBe(expected.toString("hex"));
  });

  it("writes the same bytes whatever the chunk size", async () => {
    const small = await bytesOf(encodeNamespace({ database: "shop", collection: "people" }, fromArray(documents), { chunkBytes: 1 }));
    const large = await bytesOf(encodeNamespace({ database: "shop", collection: "people" }, fromArray(documents)));
    expect(small.equals(large)).toBe(true);
  });

  it("pulls documents only as fast as the archive stream is read, and stops the source when the stream is destroyed", async () => {
    let pulled = 0;
    let stopped = false;
    const document = Buffer.from(BSON.serialize({ _id: 0, padding: "p".repeat(1000) }));
    async function* endless(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) {
          pulled++;
          yield document;
        }
      } finally {
        stopped = true;
      }
    }
    const stream = Readable.from(encodeArchive(header, [{ metadata: people, documents: endless }], { chunkBytes: 64 * 1024 }), {
      objectMode: false,
    });
    let read = 0;
    for await (const chunk of stream) {
      read += (chunk as Buffer).length;
      if (read > 1024 * 1024) break;
    }
    // About 1 MiB was read; what was pulled beyond it is at most a few chunks of read-ahead.
    expect(pulled * document.length).toBeLessThan(read + 4 * 64 * 1024);
    // Leaving the loop destroys the stream, which closes once the source has run its cleanup.
    if (!stream.closed) await new Promise((resolve) => stream.once("close", resolve));
    expect(stopped).toBe(true);
  });

  it("with collections read at once, interleaves whole segments in the order they are ready, every CRC intact", async () => {
    const other: ArchiveCollectionMetadata = { ...people, collection: "orders" };
    const manyDocuments = (prefix: string) =>
      Array.from({ length: 6 }, (_, index) => Buffer.from(BSON.serialize({ _id: `${prefix}${index}`, padding: "p".repeat(40) })));
    const peopleDocuments = manyDocuments("p");
    const orderDocuments = manyDocuments("o");
    // Each source waits a turn between documents, so neither can finish before the other starts.
    async function* slowly(list: Buffer[]): AsyncGenerator<Uint8Array> {
      for (const document of list) {
        await new Promise((resolve) => setImmediate(resolve));
        yield document;
      }
    }
    const collections: ArchiveCollection[] = [
      { metadata: people, documents: () => slowly(peopleDocuments) },
      { metadata: other, documents: () => slowly(orderDocuments) },
      { metadata: empty, documents: () => fromArray([]) },
    ];
    const chunks: Buffer[] = [];
    for await (const chunk of encodeArchive({ ...header, concurrentCollections: 2 }, collections, {
      chunkBytes: 150,
      parallelCollections: 2,
    })) {
      chunks.push(chunk);
    }
    // After the prelude, every chunk is one or more whole blocks: a namespace header first, a terminator last.
    for (const chunk of chunks.slice(1)) {
      expect(BSON.deserialize(chunk.subarray(0, chunk.readInt32LE(0)))).toHaveProperty("db", "shop");
      expect(chunk.subarray(-4).equals(terminator)).toBe(true);
    }
    const events = await eventsOf(Buffer.concat(chunks));
    expect(events[0]).toEqual({ kind: "prelude", header: { ...header, concurrentCollections: 2 }, collections: [people, other, empty] });
    const order = events.slice(1).map((event) => (event.kind === "prelude" ? "" : `${event.kind} ${event.namespace.collection}`));
    // Interleaved: a document of orders comes before the last document of people.
    expect(order.indexOf("document orders")).toBeLessThan(order.lastIndexOf("document people"));
    const documentsOf = (collection: string) =>
      events.flatMap((event) => (event.kind === "document" && event.namespace.collection === collection ? [event.bytes] : []));
    expect(documentsOf("people")).toEqual(peopleDocuments);
    expect(documentsOf("orders")).toEqual(orderDocuments);
    expect(order.filter((entry) => entry.startsWith("namespace-end")).sort()).toEqual([
      "namespace-end empty",
      "namespace-end orders",
      "namespace-end people",
    ]);
  });

  it("with collections read at once, stops the others when one fails", async () => {
    let stopped = false;
    async function* endless(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) {
          await new Promise((resolve) => setImmediate(resolve));
          yield documents[0] as Buffer;
        }
      } finally {
        stopped = true;
      }
    }
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield documents[1] as Buffer;
      await new Promise((resolve) => setImmediate(resolve));
      throw new Error("the cursor died");
    }
    const collections: ArchiveCollection[] = [
      { metadata: people, documents: endless },
      { metadata: { ...people, collection: "orders" }, documents: failing },
    ];
    await expect(bytesOf(encodeArchive(header, collections, { chunkBytes: 16, parallelCollections: 2 }))).rejects.toThrow(
      "the cursor died",
    );
    expect(stopped).toBe(true);
  });

  it("writes the sequential layout when one collection is read at a time", async () => {
    const collections: ArchiveCollection[] = [
      { metadata: people, documents: () => fromArray(documents) },
      { metadata: empty, documents: () => fromArray([]) },
    ];
    expect((await bytesOf(encodeArchive(header, collections, { parallelCollections: 1 }))).equals(await sampleArchive())).toBe(true);
  });

  it("refuses a malformed document instead of writing a broken archive", async () => {
    const broken = Buffer.from([10, 0, 0, 0, 0]);
    await expect(bytesOf(encodeNamespace({ database: "shop", collection: "people" }, fromArray([broken])))).rejects.toMatchObject({
      code: "INTERNAL",
    });
  });
});

describe("archive reader", () => {
  it("reads back what the writer wrote, however the input is split", async () => {
    const archive = await sampleArchive();
    const expected: ArchiveEvent[] = [
      { kind: "prelude", header, collections: [people, empty] },
      { kind: "document", namespace: { database: "shop", collection: "people" }, bytes: documents[0] as Buffer },
      { kind: "document", namespace: { database: "shop", collection: "people" }, bytes: documents[1] as Buffer },
      { kind: "namespace-end", namespace: { database: "shop", collection: "people" } },
      { kind: "namespace-end", namespace: { database: "shop", collection: "empty" } },
    ];
    expect(await eventsOf(archive)).toEqual(expected);
    expect(await eventsOf(archive, 1)).toEqual(expected);
    expect(await eventsOf(archive, 7)).toEqual(expected);
  });

  it("reads interleaved segments, as mongodump writes them with parallel collections", async () => {
    const other: ArchiveCollectionMetadata = { ...people, collection: "orders" };
    const [first, second] = documents as [Buffer, Buffer];
    const archive = Buffer.concat([
      encodePrelude({ ...header, concurrentCollections: 4 }, [people, other]),
      namespaceHeader("shop", "people", false, 0n),
      first,
      terminator,
      namespaceHeader("shop", "orders", false, 0n),
      second,
      terminator,
      namespaceHeader("shop", "people", false, 0n),
      second,
      terminator,
      namespaceHeader("shop", "orders", true, crcOf(second)),
      terminator,
      namespaceHeader("shop", "people", true, crcOf(first, second)),
      terminator,
    ]);
    const summary = (await eventsOf(archive)).map((event) =>
      event.kind === "prelude" ? "prelude" : `${event.kind} ${event.namespace.collection}`,
    );
    expect(summary).toEqual([
      "prelude",
      "document people",
      "document orders",
      "document people",
      "namespace-end orders",
      "namespace-end people",
    ]);
  });

  it("fails with CORRUPT_ARCHIVE wherever the archive is cut short", async () => {
    const archive = await sampleArchive();
    for (let length = 0; length < archive.length; length++) {
      const error = await failureOf(archive.subarray(0, length));
      expect(isHoardError(error, "CORRUPT_ARCHIVE"), `cut at ${length} of ${archive.length}: ${String(error)}`).toBe(true);
    }
  });

  it("notices a CRC mismatch", async () => {
    const archive = await sampleArchive();
    const position = archive.indexOf(Buffer.from("Grace"));
    archive[position] = "B".charCodeAt(0);
    const error = await failureOf(archive);
    expect(isHoardError(error, "CORRUPT_ARCHIVE")).toBe(true);
    expect(String((error as Error).message)).toMatch(/CRC mismatch for shop\.people/);
  });

  it("notices a namespace of the prelude that never ends", async () => {
    const archive = Buffer.concat([encodePrelude(header, [people]), namespaceHeader("shop", "people", false, 0n), terminator]);
    expect(String(await failureOf(archive))).toMatch(/ends inside shop\.people/);
    const unopened = encodePrelude(header, [people]);
    expect(String(await failureOf(unopened))).toMatch(/ends before shop\.people/);
  });

  it("refuses data after a namespace's end, and a namespace reopened after it", async () => {
    const prelude = encodePrelude(header, [people]);
    const afterEnd = Buffer.concat([prelude, namespaceHeader("shop", "people", true, 0n), documents[0] as Buffer, terminator]);
    expect(String(await failureOf(afterEnd))).toMatch(/data after the end of shop\.people/);
    const reopened = Buffer.concat([
      prelude,
      namespaceHeader("shop", "people", true, 0n),
      terminator,
      namespaceHeader("shop", "people", false, 0n),
      terminator,
    ]);
    expect(String(await failureOf(reopened))).toMatch(/continues after its end/);
  });

  it("refuses two terminators in a row and impossible lengths", async () => {
    const prelude = encodePrelude(header, []);
    expect(String(await failureOf(Buffer.concat([prelude, terminator])))).toMatch(/two terminators/);
    const badLength = Buffer.concat([prelude, Buffer.from([3, 0, 0, 0])]);
    expect(String(await failureOf(badLength))).toMatch(/neither a valid BSON length nor a terminator/);
  });

  it("says UNSUPPORTED_FORMAT for something that is not an archive", async () => {
    const error = await failureOf(Buffer.from("-- PostgreSQL database dump\n"));
    expect(isHoardError(error, "UNSUPPORTED_FORMAT")).toBe(true);
  });

  it("writes namespace headers with the fields and types of archive.go's NamespaceHeader", () => {
    const decoded = BSON.deserialize(encodeNamespaceHeader({ database: "d", collection: "c" }, -1n), { promoteLongs: false });
    expect(Object.keys(decoded)).toEqual(["db", "collection", "EOF", "CRC"]);
    expect(decoded.EOF).toBe(true);
    expect(decoded.CRC.toBigInt()).toBe(-1n);
  });
});
