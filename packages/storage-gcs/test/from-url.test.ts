import { isHoardError } from "@hoard/core";
import { describe, expect, it } from "vitest";
import { createStorageFromUrl, parseByteSize } from "../src/index.ts";

describe("createStorageFromUrl settings", () => {
  it("accepts a chunk size in bytes or with a unit, and a storage class", () => {
    for (const gcsChunkSize of ["16777216", "16MiB", "16M", "16mb", "512KiB", "512k", "1G"]) {
      const storage = createStorageFromUrl("gs://bucket/prefix", {
        gcsChunkSize,
        gcsStorageClass: "NEARLINE",
        gcsEndpoint: "http://127.0.0.1:1",
      });
      expect(storage.scheme).toBe("gs");
    }
  });

  it("rejects a chunk size it cannot read, with INVALID_ARGUMENT", () => {
    let caught: unknown;
    try {
      createStorageFromUrl("gs://bucket/prefix", { gcsChunkSize: "lots" });
    } catch (error) {
      caught = error;
    }
    expect(isHoardError(caught, "INVALID_ARGUMENT")).toBe(true);
    expect((caught as Error).message).toBe(
      'gcs: invalid --gcs-chunk-size: "lots" is not a size: use e.g. 16MiB, 512KiB or a number of bytes',
    );
  });
});

describe("parseByteSize", () => {
  // The same forms as --s3-part-size.
  it.each([
    ["16777216", 16 * 1024 ** 2],
    ["16MiB", 16 * 1024 ** 2],
    ["16M", 16 * 1024 ** 2],
    ["16mb", 16 * 1024 ** 2],
    ["16 MiB", 16 * 1024 ** 2],
    ["512KiB", 512 * 1024],
    ["512K", 512 * 1024],
    ["1G", 1024 ** 3],
    ["262144B", 262144],
    ["16 TB", 16 * 1024 ** 4],
  ])("reads %s", (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(["", "MiB", "1.5M", "-1", "16 PB", "lots"])("refuses %s", (text) => {
    expect(parseByteSize(text)).toBeUndefined();
  });

  it("reaches the storage: --gcs-chunk-size 16M is 16 MiB", () => {
    expect(() => createStorageFromUrl("gs://b/p", { gcsChunkSize: "16M" })).not.toThrow();
    // 1000 bytes is not a multiple of 256 KiB: the parsed size reaches the option check.
    expect(() => createStorageFromUrl("gs://b/p", { gcsChunkSize: "1000B" })).toThrow(/256 KiB/);
  });
});

describe("timeoutMs", () => {
  it("comes from the common settings", () => {
    expect(() => createStorageFromUrl("gs://b/p", { timeoutMs: 2500 })).not.toThrow();
    expect(() => createStorageFromUrl("gs://b/p", { timeoutMs: "2500" } as never)).not.toThrow();
  });

  it.each([0, -1, 1.5, "soon"])("rejects %s", (timeoutMs) => {
    expect(() => createStorageFromUrl("gs://b/p", { timeoutMs } as never)).toThrow(
      /^gcs: invalid --timeout: "[^"]*" (is not a whole number|is below the minimum of 1)$/,
    );
  });
});
