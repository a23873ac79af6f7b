import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { isHoardError } from "@hoard/core";
import { randomStream, sha256Of } from "@hoard/core/testing";
import { rejection as failureOf } from "@hoard/test-harness/vitest";
import { afterEach, describe, expect, inject, it } from "vitest";
import { createS3Storage, type S3StorageOptions } from "../src/index.ts";
import { nextPartSize } from "../src/upload.ts";
import { connection, createBucket, objectKeys, openMultipartUploads, type RecordedRequest, startRecordingProxy } from "./helpers.ts";

const mebibyte = 1024 * 1024;
const proxies: { stop(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()));
});

async function proxied() {
  const proxy = await startRecordingProxy(inject("s3").endpoint);
  proxies.push(proxy);
  return proxy;
}

/** Parts grow after 2 parts instead of 800, so a 50 MiB stream shows the growth. */
const growing: Partial<S3StorageOptions> = { partSize: 5 * mebibyte, partGrowth: 2, queueSize: 2, maxAttempts: 1 };

/** The bytes of each UploadPart request, by part number. */
function partSizes(requests: RecordedRequest[]): number[] {
  return requests
    .filter((request) => request.method === "PUT" && new URL(request.url, "http://proxy").searchParams.has("partNumber"))
    .map((request) => ({
      part: Number(new URL(request.url, "http://proxy").searchParams.get("partNumber")),
      size: Number(request.headers["content-length"]),
    }))
    .sort((left, right) => left.part - right.part)
    .map((entry) => entry.size);
}

/** Sends `size` random bytes in 1 MiB chunks and then fails, like a dump that dies midway. */
function failingStream(size: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) {
        this.destroy(new Error("the dump died midway"));
        return;
      }
      const chunk = randomBytes(Math.min(mebibyte, size - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

describe("stream uploads with growing parts", () => {
  it("cuts a stream into growing parts and stores it byte for byte, conditionally", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), ...growing, endpoint: proxy.endpoint, bucket });
    const size = 50 * mebibyte + 12_345;
    const source = randomStream(size, 256 * 1024);
    const progress: number[] = [];
    const stored = await storage.upload("growing.bin", source.stream, { onProgress: (bytes) => progress.push(bytes) });
    expect(stored).toEqual({ key: "growing.bin", size });

    const sizes = partSizes(proxy.requests);
    // 5, 5, 5, 8, 12 MiB, then the rest (15 MiB and 12,345 bytes) in a last part of up to 18 MiB.
    expect(sizes.slice(0, -1).map((bytes) => bytes / mebibyte)).toEqual([5, 5, 5, 8, 12]);
    expect(sizes.at(-1)).toBe(size - 35 * mebibyte);
    expect(sizes.at(-1)).toBeLessThanOrEqual(nextPartSize(35 * mebibyte, 5 * mebibyte, 2));
    expect(new Set(sizes).size).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)).toBe(size);
    expect(progress).toEqual([...progress].sort((left, right) => left - right));
    // Only the completion carries the condition (UploadPart has none); it is what S3 decides on.
    const conditional = proxy.requests.filter((request) => request.headers["if-none-match"] !== undefined);
    expect(conditional.map((request) => `${request.method} ${request.headers["if-none-match"]}`)).toEqual(["POST *"]);
    expect(conditional[0]?.url).toContain("uploadId=");

    expect((await sha256Of(await storage.download("growing.bin"))).digest).toBe(await source.sha256);
    expect((await storage.stat("growing.bin"))?.size).toBe(size);
    expect(await openMultipartUploads(bucket)).toEqual([]);
  });

  it("stores a stream that ends on a part boundary without an empty last part", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), ...growing, endpoint: proxy.endpoint, bucket });
    const size = 23 * mebibyte;
    const source = randomStream(size);
    await storage.upload("boundary.bin", source.stream);
    expect(partSizes(proxy.requests).map((bytes) => bytes / mebibyte)).toEqual([5, 5, 5, 8]);
    expect((await sha256Of(await storage.download("boundary.bin"))).digest).toBe(await source.sha256);
  });

  it("aborts the multipart upload when the signal fires after the parts grew, leaving nothing", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), ...growing, endpoint: proxy.endpoint, bucket });
    const controller = new AbortController();
    const source = randomStream(256 * mebibyte, 256 * 1024);
    let read = 0;
    source.stream.on("data", (chunk: Buffer) => {
      read += chunk.length;
      if (read >= 40 * mebibyte) controller.abort();
    });
    const error = await failureOf(storage.upload("aborted.bin", source.stream, { signal: controller.signal }));
    expect(isHoardError(error, "ABORTED"), String(error)).toBe(true);
    expect(source.stream.destroyed).toBe(true);
    expect(new Set(partSizes(proxy.requests)).size).toBeGreaterThanOrEqual(2);
    expect(proxy.requests.some((request) => request.method === "DELETE" && request.url.includes("uploadId="))).toBe(true);
    expect(await openMultipartUploads(bucket)).toEqual([]);
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("aborts the multipart upload when the source fails after the parts grew, leaving nothing", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), ...growing, endpoint: proxy.endpoint, bucket });
    const error = await failureOf(storage.upload("broken.bin", failingStream(45 * mebibyte)));
    expect(isHoardError(error, "STORAGE_FAILED"), String(error)).toBe(true);
    expect((error as Error).message).toContain("the dump died midway");
    expect(new Set(partSizes(proxy.requests)).size).toBeGreaterThanOrEqual(2);
    expect(await openMultipartUploads(bucket)).toEqual([]);
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("refuses a body whose length differs from contentLength, leaving nothing", async () => {
    const bucket = await createBucket();
    const storage = createS3Storage({ ...connection(), ...growing, bucket });
    for (const size of [100, 12 * mebibyte]) {
      const error = await failureOf(storage.upload(`short-${size}.bin`, randomStream(size).stream, { contentLength: size + 1 }));
      expect(isHoardError(error, "STORAGE_FAILED"), String(error)).toBe(true);
      expect((error as Error).message).toContain(`the body had ${size} bytes, not the ${size + 1} announced`);
    }
    expect(await openMultipartUploads(bucket)).toEqual([]);
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("refuses a body announced larger than 5 TiB before sending anything", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), endpoint: proxy.endpoint, bucket });
    const error = await failureOf(storage.upload("huge.bin", Readable.from([Buffer.from("x")]), { contentLength: 6 * 1024 ** 4 }));
    expect(isHoardError(error, "STORAGE_FAILED"), String(error)).toBe(true);
    expect((error as Error).message).toContain("larger than S3 allows (5 TiB");
    expect(proxy.requests).toEqual([]);
  });
});
