import { createHash, randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { CreateMultipartUploadCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { isHoardError, type Storage } from "@hoard/core";
import { randomStream, sha256Of } from "@hoard/core/testing";
import { type SilentServer, startSilentServer, startTcpProxy, type TcpProxy } from "@hoard/test-harness";
import { afterEach, describe, expect, inject, it } from "vitest";
import { createS3Storage, createStorageFromUrl, type S3StorageOptions } from "../src/index.ts";
import { connection, createBucket, openMultipartUploads, type RecordedRequest, startRecordingProxy, testClient } from "./helpers.ts";

const mebibyte = 1024 * 1024;
const stoppers: Array<() => Promise<void>> = [];

afterEach(async () => {
  await Promise.all(stoppers.splice(0).map((stop) => stop()));
});

async function silentServer(): Promise<SilentServer> {
  const server = await startSilentServer();
  stoppers.push(() => server.close());
  return server;
}

async function recordingProxy() {
  const proxy = await startRecordingProxy(inject("s3").endpoint);
  stoppers.push(() => proxy.stop());
  return proxy;
}

async function tcpProxy(options: Parameters<typeof startTcpProxy>[1] = {}): Promise<TcpProxy> {
  const proxy = await startTcpProxy(inject("s3").endpoint, options);
  stoppers.push(() => proxy.stop());
  return proxy;
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (error: unknown) => error,
  );
}

/** The error and how long the call took to fail. */
async function timedFailure(operation: () => Promise<unknown>): Promise<{ error: unknown; elapsed: number }> {
  const started = Date.now();
  const error = await failureOf(operation());
  return { error, elapsed: Date.now() - started };
}

async function textOf(stream: Readable): Promise<string> {
  return Buffer.concat(await stream.toArray()).toString("utf8");
}

async function objectKeys(bucket: string): Promise<string[]> {
  const response = await testClient().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (response.Contents ?? []).map((object) => object.Key ?? "");
}

async function keysOf(storage: Storage, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storage.list(prefix)) keys.push(object.key);
  return keys;
}

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
    const outcomes = await Promise.all(operations.map(([, operation]) => timedFailure(operation)));
    for (const [index, { error, elapsed }] of outcomes.entries()) {
      const [what] = operations[index] as [string, unknown];
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
    let started = Date.now();
    await storage.upload("slow.bin", source.stream);
    expect(Date.now() - started).toBeGreaterThan(2 * timeoutMs);
    started = Date.now();
    const back = await sha256Of(await storage.download("slow.bin"));
    expect(Date.now() - started).toBeGreaterThan(2 * timeoutMs);
    expect(back).toEqual({ digest: await source.sha256, size: 32 * mebibyte });
  });
});

describe("a download", () => {
  it("is not cut while its reader is slower than the timeout", async () => {
    const bucket = await createBucket();
    const storage = createS3Storage({ ...connection(), bucket, timeoutMs: 1_000 });
    const source = randomStream(32 * mebibyte);
    await storage.upload("big.bin", source.stream);
    const stream = await storage.download("big.bin");
    const chunks: Buffer[] = [];
    for await (const chunk of stream) {
      // A restore busy elsewhere: the stream waits three times the timeout for its reader.
      if (chunks.length === 1) await new Promise((resolve) => setTimeout(resolve, 3_000));
      chunks.push(chunk as Buffer);
    }
    expect(createHash("sha256").update(Buffer.concat(chunks)).digest("hex")).toBe(await source.sha256);
  });

  it("fails its stream with UNREACHABLE when the endpoint goes silent midway", async () => {
    const bucket = await createBucket();
    await createS3Storage({ ...connection(), bucket }).upload("big.bin", randomStream(32 * mebibyte).stream);
    const proxy = await tcpProxy({
      onBytes: (_up, down) => {
        if (down > 2 * mebibyte) proxy.freeze();
      },
    });
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
      [
        "list",
        async (signal) => {
          for await (const _ of storage.list("", { signal })) break;
        },
      ],
      ["upload", (signal) => storage.upload("a", Readable.from([Buffer.from("x")]), { signal })],
      ["multipart upload", (signal) => storage.upload("a", randomStream(12 * mebibyte).stream, { signal })],
      ["download", (signal) => storage.download("a", { signal })],
      ["sweep", (signal) => storage.sweep?.({ before: new Date(), signal }) ?? Promise.resolve()],
    ];
    const outcomes = await Promise.all(
      operations.map(([, operation]) =>
        timedFailure(() => {
          const controller = new AbortController();
          setTimeout(() => controller.abort(), 200);
          return operation(controller.signal);
        }),
      ),
    );
    for (const [index, { error, elapsed }] of outcomes.entries()) {
      const [what] = operations[index] as [string, unknown];
      expect(isHoardError(error, "ABORTED"), `${what}: ${String(error)}`).toBe(true);
      expect(elapsed, what).toBeLessThan(1_500);
    }
  });

  it("fails a download stream with ABORTED when the signal fires midway", async () => {
    const bucket = await createBucket();
    const storage = createS3Storage({ ...connection(), bucket });
    await storage.upload("big.bin", randomStream(16 * mebibyte).stream);
    const controller = new AbortController();
    const stream = await storage.download("big.bin", { signal: controller.signal });
    stream.once("data", () => controller.abort());
    const error = await failureOf(sha256Of(stream));
    expect(isHoardError(error, "ABORTED"), String(error)).toBe(true);
  });
});

describe("a connection lost midway", () => {
  it("fails an upload with UNREACHABLE naming the endpoint, not as an abort", async () => {
    const bucket = await createBucket();
    const proxy = await tcpProxy({
      onBytes: (up) => {
        if (up > 7 * mebibyte) proxy.cut();
      },
    });
    const storage = createS3Storage({ ...connection(), endpoint: proxy.endpoint, bucket, partSize: 5 * mebibyte, queueSize: 1 });
    const error = await failureOf(storage.upload("lost.bin", randomStream(20 * mebibyte).stream));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`s3: connection to ${proxy.endpoint} lost while uploading s3://${bucket}/lost.bin (ECONNRESET)`);
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("fails a download stream with a HoardError naming the endpoint", async () => {
    const bucket = await createBucket();
    await createS3Storage({ ...connection(), bucket }).upload("big.bin", randomStream(16 * mebibyte).stream);
    const proxy = await tcpProxy({
      onBytes: (_up, down) => {
        if (down > 2 * mebibyte) proxy.cut();
      },
    });
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
    for (const key of ["a/../../b", "../b", "a/./b", "a//b", "/a", "a/", "a\\b", "a\nb", ""]) {
      const calls: Array<[string, () => Promise<unknown>]> = [
        ["stat", () => storage.stat(key)],
        ["exists", () => storage.exists(key)],
        ["upload", () => storage.upload(key, Readable.from([Buffer.from("x")]))],
        ["download", () => storage.download(key)],
        ["delete", () => storage.delete(key)],
        ["copy from", () => storage.copy(key, "ok")],
        ["copy to", () => storage.copy("ok", key)],
      ];
      for (const [what, call] of calls) {
        const error = await failureOf(call());
        expect(isHoardError(error, "INVALID_ARGUMENT"), `${what} ${JSON.stringify(key)}: ${String(error)}`).toBe(true);
        expect((error as Error).message).toMatch(/^s3: invalid key/);
      }
    }
    for (const prefix of ["../", "a/../../b/", "a//"]) {
      expect(isHoardError(await failureOf(keysOf(storage, prefix)), "INVALID_ARGUMENT"), prefix).toBe(true);
    }
    expect(proxy.requests).toEqual([]);
  });
});

describe("sweep", () => {
  it("aborts the multipart uploads under the prefix started before `before`, and keeps younger ones", async () => {
    const bucket = await createBucket();
    const storage = createS3Storage({ ...connection(), bucket, prefix: "p" });
    const start = async (key: string) => testClient().send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
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
});
