import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { isHoardError } from "@hoard/core";
import { describe, expect, it } from "vitest";
import { decompressByContent, detectCompression } from "../src/compression.ts";

async function textOf(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe("compression found by content", () => {
  it("recognises gzip, zstd and bzip2 by their magic numbers, and not an archive", () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe("gzip");
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe("zstd");
    expect(detectCompression(Buffer.from("BZh9"))).toBe("bzip2");
    expect(detectCompression(Buffer.from([0x6d, 0xe2, 0x99, 0x81]))).toBeUndefined();
    expect(detectCompression(Buffer.from([0x1f]))).toBeUndefined();
  });

  it("undoes gzip, twice over, and leaves plain data alone", async () => {
    const doubly = gzipSync(gzipSync(Buffer.from("archive bytes")));
    const unpacked = await decompressByContent(Readable.from([doubly]), "x");
    expect(unpacked.layers).toEqual(["gzip", "gzip"]);
    expect(await textOf(unpacked.stream)).toBe("archive bytes");
    const plain = await decompressByContent(Readable.from([Buffer.from("ab")]), "x");
    expect(plain.layers).toEqual([]);
    expect(await textOf(plain.stream)).toBe("ab");
  });

  it("fails a damaged gzip stream with CORRUPT_ARCHIVE", async () => {
    const packed = gzipSync(Buffer.alloc(100_000, 7));
    const unpacked = await decompressByContent(Readable.from([packed.subarray(0, packed.length - 20)]), "cut.archive");
    const error = await textOf(unpacked.stream).then(
      () => undefined,
      (failure: unknown) => failure,
    );
    expect(isHoardError(error, "CORRUPT_ARCHIVE")).toBe(true);
  });
});
