import { isHoardError } from "@hoard/core";
import { describe, expect, it } from "vitest";
import { createStorageFromUrl } from "../src/index.ts";

describe("createStorageFromUrl settings", () => {
  it("accepts a chunk size in bytes or with a unit, and a storage class", () => {
    for (const gcsChunkSize of ["16777216", "16MiB", "512KiB"]) {
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
    expect((caught as Error).message).toBe('gcs: invalid chunk size "lots": use bytes or KiB/MiB/GiB, e.g. 16MiB');
  });
});
