import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isHoardError } from "@hoard/core";
import { BSON } from "mongodb";
import { describe, expect, it } from "vitest";
import { guardArchive } from "../src/archive-guard.ts";
import { encodeArchive } from "../src/archive-writer.ts";

/** An archive of two collections, `shop.first` (documents with MARKER) and `shop.second`. */
async function twoCollections(): Promise<Buffer> {
  const metadata = (collection: string) => ({ database: "shop", collection, metadata: '{"indexes":[]}', size: 0, type: "collection" });
  const documents = (count: number) => () =>
    Readable.from(Array.from({ length: count }, (_, index) => BSON.serialize({ _id: index, text: `document ${index} MARKER` })));
  const header = { concurrentCollections: 1, formatVersion: "0.1", serverVersion: "7.0.0", toolVersion: "test" };
  const chunks: Buffer[] = [];
  for await (const chunk of encodeArchive(
    header,
    [
      { metadata: metadata("first"), documents: documents(200) },
      { metadata: metadata("second"), documents: documents(50) },
    ],
    { chunkBytes: 1024 },
  )) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function pieces(bytes: Buffer, size: number): Buffer[] {
  return Array.from({ length: Math.ceil(bytes.length / size) }, (_, index) => bytes.subarray(index * size, (index + 1) * size));
}

/** Runs bytes through the guard into a consumer; returns what the consumer got, whether it saw the end, and the failure. */
async function throughGuard(chunks: Buffer[]): Promise<{ received: Buffer; ended: boolean; error: unknown; forwarded: number }> {
  const guard = guardArchive({ name: "test.archive" });
  const received: Buffer[] = [];
  let ended = false;
  const consumer = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      received.push(chunk);
      callback();
    },
    final(callback) {
      ended = true;
      callback();
    },
  });
  const error = await pipeline(Readable.from(chunks), guard.stream, consumer).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  return { received: Buffer.concat(received), ended, error, forwarded: guard.forwardedBytes() };
}

describe("archive guard", () => {
  it("passes a whole archive on unchanged, in any chunking", async () => {
    const archive = await twoCollections();
    for (const size of [1, 7, 512, 4096, archive.length]) {
      const result = await throughGuard(pieces(archive, size));
      expect(result.error, `chunks of ${size}`).toBeUndefined();
      expect(result.ended).toBe(true);
      expect(result.received.equals(archive)).toBe(true);
      expect(result.forwarded).toBe(archive.length);
    }
  });

  it("never passes on the EOF header whose CRC disagrees, nor the end, of an archive with one altered byte", async () => {
    const archive = await twoCollections();
    const altered = Buffer.from(archive);
    altered[altered.indexOf(Buffer.from("MARKER"))] = "N".charCodeAt(0);
    // The end of shop.first's EOF header: its fields are db, collection, EOF (0x08 "EOF" 0x00 0x01) and CRC (0x12 "CRC" 0x00, 8 bytes), then NUL.
    const eofField = Buffer.from([0x08, ...Buffer.from("EOF"), 0x00, 0x01]);
    const eofHeaderEnd = altered.indexOf(eofField) + eofField.length + 1 + 4 + 8 + 1;
    for (const size of [1, 64, 1000, archive.length]) {
      const result = await throughGuard(pieces(altered, size));
      expect(isHoardError(result.error, "CORRUPT_ARCHIVE"), `chunks of ${size}: ${String(result.error)}`).toBe(true);
      expect((result.error as Error).message).toMatch(/^mongodb: test\.archive is damaged or truncated: CRC mismatch for shop\.first/);
      expect(result.ended).toBe(false);
      expect(result.received.length).toBeLessThan(eofHeaderEnd);
      expect(result.forwarded).toBe(result.received.length);
    }
  });

  it("withholds the end of a truncated archive and fails", async () => {
    const archive = await twoCollections();
    const result = await throughGuard(pieces(archive.subarray(0, archive.length - 4), 256));
    expect(isHoardError(result.error, "CORRUPT_ARCHIVE"), String(result.error)).toBe(true);
    expect(result.ended).toBe(false);
  });

  it("fails with UNSUPPORTED_FORMAT, passing nothing on, for something that is not an archive", async () => {
    const result = await throughGuard([Buffer.from("-- PostgreSQL database dump\n")]);
    expect(isHoardError(result.error, "UNSUPPORTED_FORMAT"), String(result.error)).toBe(true);
    expect(result.received.length).toBe(0);
  });

  it("lets go when its consumer fails first (mongorestore exits): the consumer's error, no hang, no complaint of its own", async () => {
    const archive = await twoCollections();
    const guard = guardArchive({ name: "test.archive" });
    const consumer = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error("mongorestore exited"));
      },
    });
    const error = await pipeline(Readable.from(pieces(archive, 512)), guard.stream, consumer).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(String(error)).toMatch(/mongorestore exited/);
    expect(guard.failure()).toBeUndefined();
  });
});
