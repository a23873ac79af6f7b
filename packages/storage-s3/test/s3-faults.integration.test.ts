import { createHash, randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { CreateMultipartUploadCommand } from "@aws-sdk/client-s3";
import { isHoardError, prune } from "@hoard/core";
import { randomStream, sha256Of } from "@hoard/core/testing";
import * as fault from "@hoard/test-harness/vitest";
import { describe, expect, inject, it } from "vitest";
import { createS3Storage, createStorageFromUrl, type S3StorageOptions } from "../src/index.ts";
import { connection, createBucket, objectKeys, openMultipartUploads, type RecordedRequest, testClient } from "./helpers.ts";

const { abortedMidway, abortedRejections, badKeys, badPrefixes, callsWithKey, elapsedMs, faultPeers } = fault;
const { listedKeys, readWithPause, rejection, textOf, timedRejection, timedRejections } = fault;
const mebibyte = 1024 * 1024;
const { silentServer, recordingProxy, tcpProxy, proxyThat } = faultPeers(() => inject("s3").endpoint);
const failureOf = rejection;
const timedFailure = timedRejection;

const keysOf = listedKeys;

const headerOf = (requests: RecordedRequest[], name: string) =>
  requests.filter((request) => request.headers[name] !== undefined).map((request) => `${request.method} ${request.headers[name]}`);

describe("no overwrite", () => {
  const small: Partial<S3StorageOptions> = { partSize: 5 * mebibyte, queueSize: 2 };

  it("refuses to upload over an existing key, small or multipart, and keeps the original bytes", async () => {
    const bucket = await createBucket();
    const proxy = await recordingProxy();
    const storage = createS3Storage({ ...connection(), ...small, endpoint: proxy.endpoint, bucket, prefix: "p" });
    await storage.upload("k.gz", Readable.from([Buffer.from("the original")]));
    for (const body of [Buffer.from("a replacement"), randomBytes(11 * mebibyte)]) {
      const error = await failureOf(storage.upload("k.gz", Readable.from([body])));
      expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
      expect((error as Error).message).toBe(`s3: s3://${bucket}/p/k.gz already exists; not overwriting it`);
      expect(await textOf(await storage.download("k.gz"))).toBe("the original");
    }
    // The refused multipart upload was aborted on the server.
    expect(await openMultipartUploads(bucket)).toEqual([]);
    // The condition travels with PutObject and CompleteMultipartUpload: the store decides.
    expect(headerOf(proxy.requests, "if-none-match")).toEqual(["PUT *", "PUT *", "POST *"]);
  });

  it("refuses a multipart upload when the key appears while it runs (the store decides at completion)", async () => {
    const bucket = await createBucket();
    const storage = createS3Storage({ ...connection(), ...small, bucket });
    const slow = new PassThrough();
    const running = storage.upload("race.bin", slow);
    slow.write(randomBytes(6 * mebibyte));
    // Let the first part reach the server before another writer takes the key.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await storage.upload("race.bin", Readable.from([Buffer.from("the winner")]));
    slow.end(randomBytes(6 * mebibyte));
    const error = await failureOf(running);
    expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
    expect(await textOf(await storage.download("race.bin"))).toBe("the winner");
    expect(await openMultipartUploads(bucket)).toEqual([]);
  });

  it("refuses to copy onto an existing key, and sends the copies conditionally", async () => {
    const bucket = await createBucket();
    const proxy = await recordingProxy();
    const storage = createS3Storage({
      ...connection(),
      endpoint: proxy.endpoint,
      bucket,
      multipartCopyThreshold: 5 * mebibyte,
      copyPartSize: 5 * mebibyte,
    });
    await storage.upload("source.txt", Readable.from([Buffer.from("source")]));
    await storage.upload("target.txt", Readable.from([Buffer.from("target")]));
    const error = await failureOf(storage.copy("source.txt", "target.txt"));
    expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`s3: s3://${bucket}/target.txt already exists; not overwriting it`);
    expect(await textOf(await storage.download("target.txt"))).toBe("target");

    proxy.requests.length = 0;
    await storage.copy("source.txt", "fresh.txt");
    await storage.upload("big.bin", randomStream(6 * mebibyte).stream);
    await storage.copy("big.bin", "big-copy.bin");
    // CopyObject, and CompleteMultipartUpload of the multipart copy.
    expect(headerOf(proxy.requests, "if-none-match")).toEqual(["PUT *", "PUT *", "POST *"]);
    expect(await textOf(await storage.download("fresh.txt"))).toBe("source");
  });
});

describe("a silent endpoint", () => {
  it("fails every call with UNREACHABLE naming the endpoint and the operation, within the timeout and its retries", async () => {
    const silent = await silentServer();
    const timeoutMs = 1_000;
    // Many attempts allowed: those that end in silence are still limited to three.
    const storage = createS3Storage({ ...connection(), endpoint: silent.url, bucket: "hung", prefix: "p", timeoutMs, maxAttempts: 20 });
    const operations: Array<[string, () => Promise<unknown>]> = [
      ["ListObjectsV2 s3://hung/p/daily", () => keysOf(storage, "daily")],
      ["HeadObject s3://hung/p/a.gz", () => storage.stat("a.gz")],
      ["HeadObject s3://hung/p/a.gz", () => storage.exists("a.gz")],
      ["DeleteObject s3://hung/p/a.gz", () => storage.delete("a.gz")],
      ["upload s3://hung/p/a.gz", () => storage.upload("a.gz", Readable.from([Buffer.from("x")]))],
      ["upload s3://hung/p/big.bin", () => storage.upload("big.bin", randomStream(9 * mebibyte).stream)],
      ["GetObject s3://hung/p/a.gz", () => storage.download("a.gz")],
      ["HeadObject s3://hung/p/a.gz", () => storage.copy("a.gz", "b.gz")],
    ];
    for (const { what, error, elapsed } of await timedRejections(operations)) {
      expect(isHoardError(error, "UNREACHABLE"), `${what}: ${String(error)}`).toBe(true);
      expect((error as Error).message).toBe(`s3: no answer from ${silent.url} within 1 s (${what})`);
      // Three attempts of one second of silence each, plus the back-off between them.
      expect(elapsed, what).toBeLessThan(4 * timeoutMs + 2_000);
    }
    expect(silent.connections()).toBeGreaterThanOrEqual(operations.length);
  });

  it("takes timeoutMs from the settings of createStorageFromUrl", async () => {
    const silent = await silentServer();
    const s3 = inject("s3");
    const storage = createStorageFromUrl("s3://hung/p", {
      s3Endpoint: silent.url,
      s3AccessKeyId: s3.accessKeyId,
      s3SecretAccessKey: s3.secretAccessKey,
      s3Region: s3.region,
      timeoutMs: 1500,
    });
    const { error, elapsed } = await timedFailure(() => storage.stat("a.gz"));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`s3: no answer from ${silent.url} within 1.5 s (HeadObject s3://hung/p/a.gz)`);
    expect(elapsed).toBeLessThan(4 * 1_500 + 2_000);
  });

  it("keeps a slow transfer that never goes silent for as long as the timeout", async () => {
    const bucket = await createBucket();
    // At most one 64 KiB read every 8 ms each way, a few MiB/s: 32 MiB take several seconds, more
    // than twice the timeout, in one PutObject and one GetObject.
    const proxy = await tcpProxy({ bytesPerTick: 64 * 1024, tickMs: 8 });
    const timeoutMs = 2_000;
    const storage = createS3Storage({
      ...connection(),
      endpoint: proxy.endpoint,
      bucket,
      timeoutMs,
      maxAttempts: 1,
      partSize: 64 * mebibyte,
    });
    const source = randomStream(32 * mebibyte);
    expect(await elapsedMs(() => storage.upload("slow.bin", source.stream))).toBeGreaterThan(2 * timeoutMs);
    let back: Awaited<ReturnType<typeof sha256Of>> | undefined;
    expect(await elapsedMs(async () => (back = await sha256Of(await storage.download("slow.bin"))))).toBeGreaterThan(2 * timeoutMs);
    expect(back).toEqual({ digest: await source.sha256, size: 32 * mebibyte });
  });
});

describe("a download", () => {
  it("is not cut while its reader is slower than the timeout", async () => {
    const bucket = await createBucket();
    const storage = createS3Storage({ ...connection(), bucket, timeoutMs: 1_000 });
    const source = randomStream(32 * mebibyte);
    await storage.upload("big.bin", source.stream);
    // A restore busy elsewhere: the stream waits three times the timeout for its reader.
    const read = await readWithPause(await storage.download("big.bin"), 3_000);
    expect(createHash("sha256").update(read).digest("hex")).toBe(await source.sha256);
  });

  it("fails its stream with UNREACHABLE when the endpoint goes silent midway", async () => {
    const bucket = await createBucket();
    await createS3Storage({ ...connection(), bucket }).upload("big.bin", randomStream(32 * mebibyte).stream);
    const proxy = await proxyThat("freeze", { down: 2 * mebibyte });
    const storage = createS3Storage({ ...connection(), endpoint: proxy.endpoint, bucket, timeoutMs: 1_000 });
    const stream = await storage.download("big.bin");
    const { error, elapsed } = await timedFailure(() => sha256Of(stream));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`s3: no answer from ${proxy.endpoint} within 1 s (GetObject s3://${bucket}/big.bin)`);
    expect(elapsed).toBeLessThan(1_000 + 2_000);
  });
});

describe("abort signals", () => {
  it("stops every call against a silent endpoint promptly with ABORTED", async () => {
    const silent = await silentServer();
    const storage = createS3Storage({ ...connection(), endpoint: silent.url, bucket: "hung", timeoutMs: 60_000 });
    const operations: Array<[string, (signal: AbortSignal) => Promise<unknown>]> = [
      ["stat", (signal) => storage.stat("a", { signal })],
      ["exists", (signal) => storage.exists("a", { signal })],
      ["delete", (signal) => storage.delete("a", { signal })],
      ["copy", (signal) => storage.copy("a", "b", { signal })],
      ["list", (signal) => keysOf(storage, "", signal)],
      ["upload", (signal) => storage.upload("a", Readable.from([Buffer.from("x")]), { signal })],
      ["multipart upload", (signal) => storage.upload("a", randomStream(12 * mebibyte).stream, { signal })],
      ["download", (signal) => storage.download("a", { signal })],
      ["sweep", (signal) => storage.sweep?.({ before: new Date(), signal }) ?? Promise.resolve()],
    ];
    for (const { what, error, elapsed } of await abortedRejections(operations)) {
      expect(isHoardError(error, "ABORTED"), `${what}: ${String(error)}`).toBe(true);
      expect(elapsed, what).toBeLessThan(1_500);
    }
  });

  it("fails a download stream with ABORTED when the signal fires midway", async () => {
    const bucket = await createBucket();
    const storage = createS3Storage({ ...connection(), bucket });
    await storage.upload("big.bin", randomStream(16 * mebibyte).stream);
    const error = await abortedMidway((signal) => storage.download("big.bin", { signal }));
    expect(isHoardError(error, "ABORTED"), String(error)).toBe(true);
  });
});

describe("a connection lost midway", () => {
  it("fails an upload with UNREACHABLE naming the endpoint, not as an abort", async () => {
    const bucket = await createBucket();
    const proxy = await proxyThat("cut", { up: 7 * mebibyte });
    const storage = createS3Storage({ ...connection(), endpoint: proxy.endpoint, bucket, partSize: 5 * mebibyte, queueSize: 1 });
    const error = await failureOf(storage.upload("lost.bin", randomStream(20 * mebibyte).stream));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`s3: connection to ${proxy.endpoint} lost while uploading s3://${bucket}/lost.bin (ECONNRESET)`);
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("fails a download stream with a HoardError naming the endpoint", async () => {
    const bucket = await createBucket();
    await createS3Storage({ ...connection(), bucket }).upload("big.bin", randomStream(16 * mebibyte).stream);
    const proxy = await proxyThat("cut", { down: 2 * mebibyte });
    const storage = createS3Storage({ ...connection(), endpoint: proxy.endpoint, bucket });
    const error = await failureOf(sha256Of(await storage.download("big.bin")));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`s3: connection to ${proxy.endpoint} lost while downloading s3://${bucket}/big.bin (ECONNRESET)`);
  });
});

describe("keys", () => {
  it("rejects keys that escape or alias, on every call, before any request", async () => {
    const proxy = await recordingProxy();
    const storage = createS3Storage({ ...connection(), endpoint: proxy.endpoint, bucket: await createBucket(), prefix: "p" });
    for (const key of badKeys) {
      for (const [what, call] of callsWithKey(storage, key)) {
        const error = await failureOf(call());
        expect(isHoardError(error, "INVALID_ARGUMENT"), `${what} ${JSON.stringify(key)}: ${String(error)}`).toBe(true);
        expect((error as Error).message).toMatch(/^s3: invalid key/);
      }
    }
    for (const prefix of badPrefixes) {
      expect(isHoardError(await failureOf(keysOf(storage, prefix)), "INVALID_ARGUMENT"), prefix).toBe(true);
    }
    expect(proxy.requests).toEqual([]);
  });
});

describe("sweep", () => {
  /** A new bucket, a storage under its prefix `p`, and `start(key)`, which leaves a multipart upload open as a killed upload does. */
  async function bucketWithStorage() {
    const bucket = await createBucket();
    const storage = createS3Storage({ ...connection(), bucket, prefix: "p" });
    const start = (key: string) => testClient().send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    return { bucket, storage, start };
  }

  it("aborts the multipart uploads under the prefix started before `before`, and keeps younger ones", async () => {
    const { bucket, storage, start } = await bucketWithStorage();
    await start("p/daily/killed.bin");
    await start("elsewhere/killed.bin");
    const before = new Date(Date.now() + 1_000);
    // Past `before`, with a margin for the server's clock resolution.
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    await start("p/daily/running.bin");

    expect(await storage.sweep?.({ prefix: "weekly/", before })).toEqual([]);
    const swept = await storage.sweep?.({ before });
    expect(swept).toEqual([{ key: "daily/killed.bin", kind: "multipart upload", startedAt: expect.any(Date) }]);
    expect(swept?.[0]?.startedAt?.getTime()).toBeLessThan(before.getTime());
    const open = (await openMultipartUploads(bucket)).map((upload) => upload.split(" ")[0]);
    expect(open.sort()).toEqual(["elsewhere/killed.bin", "p/daily/running.bin"]);
    // Leftovers never became objects.
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("prune aborts only its own prefix's uploads, not those of a prefix that begins with its name", async () => {
    const { bucket, storage, start } = await bucketWithStorage();
    await start("p/db-20260101000000.dump.zst");
    await start("p/db-20260101000000.dump.zst.manifest.json");
    // Another job's backup, still being uploaded after more than a day (a very large database).
    await start("p/db-old-20260101000000.dump.zst");
    // Two days on, every upload above is past prune's one day.
    const result = await prune({ storage, prefix: "db", policy: { keepLast: 1 }, now: new Date(Date.now() + 2 * 86_400_000) });
    expect(result.swept.map(({ key }) => key).sort()).toEqual(["db-20260101000000.dump.zst", "db-20260101000000.dump.zst.manifest.json"]);
    expect((await openMultipartUploads(bucket)).map((upload) => upload.split(" ")[0])).toEqual(["p/db-old-20260101000000.dump.zst"]);
  });
});
