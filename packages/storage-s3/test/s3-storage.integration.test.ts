import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { isHoardError, openStorage } from "@hoard/core";
import { randomStream, sha256Of } from "@hoard/core/testing";
import { freePort } from "@hoard/test-harness";
import { rejection as failureOf, listedKeys as keysOf } from "@hoard/test-harness/vitest";
import { afterEach, describe, expect, inject, it } from "vitest";
import { createS3Storage, createStorageFromUrl, type S3StorageOptions } from "../src/index.ts";
import {
  connection,
  createBucket,
  objectKeys,
  openMultipartUploads,
  type RecordedRequest,
  startRecordingProxy,
  testClient,
} from "./helpers.ts";

const mebibyte = 1024 * 1024;
const proxies: { stop(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()));
});

async function proxied(failWhen?: (request: RecordedRequest) => boolean) {
  const proxy = await startRecordingProxy(inject("s3").endpoint, failWhen);
  proxies.push(proxy);
  return proxy;
}

/** Sends `size` random bytes and then fails, like a dump that dies midway. */
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

function isCreateMultipartUpload(request: RecordedRequest): boolean {
  return request.method === "POST" && /[?&]uploads(=|&|$)/.test(request.url);
}

function isAbortMultipartUpload(request: RecordedRequest): boolean {
  return request.method === "DELETE" && request.url.includes("uploadId=");
}

function isPart(request: RecordedRequest, partNumber: number): boolean {
  return request.method === "PUT" && new URL(request.url, "http://proxy").searchParams.get("partNumber") === String(partNumber);
}

describe("multipart uploads that do not complete", () => {
  const small: Partial<S3StorageOptions> = { partSize: 5 * mebibyte, queueSize: 2, maxAttempts: 1 };

  it("aborts the multipart upload when the source fails midway, leaving no parts", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), ...small, endpoint: proxy.endpoint, bucket, prefix: "backups" });
    const error = await failureOf(storage.upload("broken.dump.gz", failingStream(17 * mebibyte)));
    expect(String((error as Error).message)).toContain("the dump died midway");
    expect(proxy.requests.some(isCreateMultipartUpload)).toBe(true);
    expect(proxy.requests.some(isAbortMultipartUpload)).toBe(true);
    expect(await openMultipartUploads(bucket)).toEqual([]);
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("aborts the multipart upload when the signal fires, leaving no parts", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), ...small, endpoint: proxy.endpoint, bucket });
    const controller = new AbortController();
    const source = randomStream(256 * mebibyte, 256 * 1024);
    let read = 0;
    source.stream.on("data", (chunk: Buffer) => {
      read += chunk.length;
      if (read >= 16 * mebibyte) controller.abort();
    });
    const error = await failureOf(storage.upload("aborted.bin", source.stream, { signal: controller.signal }));
    expect(isHoardError(error, "ABORTED")).toBe(true);
    expect(source.stream.destroyed).toBe(true);
    expect(proxy.requests.some(isAbortMultipartUpload)).toBe(true);
    expect(await openMultipartUploads(bucket)).toEqual([]);
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("aborts the multipart upload when the server fails a part, leaving no parts", async () => {
    const bucket = await createBucket();
    const proxy = await proxied((request) => isPart(request, 3));
    const storage = createS3Storage({ ...connection(), ...small, endpoint: proxy.endpoint, bucket });
    const source = randomStream(40 * mebibyte);
    const error = await failureOf(storage.upload("server-failed.bin", source.stream));
    expect(isHoardError(error, "STORAGE_FAILED")).toBe(true);
    expect((error as Error).message).toMatch(/^s3: .*InternalError/);
    expect(source.stream.destroyed).toBe(true);
    expect(proxy.requests.some(isAbortMultipartUpload)).toBe(true);
    expect(await openMultipartUploads(bucket)).toEqual([]);
    expect(await objectKeys(bucket)).toEqual([]);
  });

  it("rejects an upload whose signal has already fired without sending anything", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), endpoint: proxy.endpoint, bucket });
    const error = await failureOf(storage.upload("never.bin", Readable.from([Buffer.from("x")]), { signal: AbortSignal.abort() }));
    expect(isHoardError(error, "ABORTED")).toBe(true);
    expect(proxy.requests).toEqual([]);
  });
});

describe("uploads", () => {
  it("reports progress up to the full size and stores the bytes under the prefix", async () => {
    const bucket = await createBucket();
    const storage = createS3Storage({ ...connection(), bucket, prefix: "/nested/prefix/", partSize: 5 * mebibyte });
    const size = 12 * mebibyte + 123;
    const source = randomStream(size);
    const progress: number[] = [];
    const stored = await storage.upload("progress.bin", source.stream, { onProgress: (bytes) => progress.push(bytes) });
    expect(stored).toEqual({ key: "progress.bin", size });
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress).toEqual([...progress].sort((left, right) => left - right));
    expect(progress.at(-1)).toBe(size);
    expect(await objectKeys(bucket)).toEqual(["nested/prefix/progress.bin"]);
    expect((await sha256Of(await storage.download("progress.bin"))).digest).toBe(await source.sha256);
  });

  it("uses one PutObject for a body smaller than a part and honours contentLength", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), endpoint: proxy.endpoint, bucket });
    const body = Buffer.from("a small dump\n");
    const stored = await storage.upload("small.sql", Readable.from([body]), { contentLength: body.length });
    expect(stored.size).toBe(body.length);
    expect(proxy.requests.filter((request) => request.method !== "GET").map((request) => request.method)).toEqual(["PUT"]);
    expect((await storage.stat("small.sql"))?.size).toBe(body.length);
  });
});

describe("errors a user can act on", () => {
  it("reports a wrong secret key as UNAUTHENTICATED for every operation, without the secret", async () => {
    const bucket = await createBucket();
    const good = createS3Storage({ ...connection(), bucket });
    await good.upload("present.txt", Readable.from([Buffer.from("here")]));
    const secret = `wrong-${randomBytes(12).toString("hex")}`;
    const accessKeyId = inject("s3").accessKeyId;
    const storage = createS3Storage({ ...connection(), bucket, credentials: { accessKeyId, secretAccessKey: secret } });
    const failures = [
      await failureOf(storage.exists("present.txt")),
      await failureOf(storage.exists("absent.txt")),
      await failureOf(storage.download("present.txt")),
      await failureOf(storage.upload("new.txt", Readable.from([Buffer.from("x")]))),
      await failureOf(storage.delete("present.txt")),
      await failureOf(storage.copy("present.txt", "copy.txt")),
      await failureOf(keysOf(storage)),
    ];
    for (const error of failures) {
      expect(isHoardError(error, "UNAUTHENTICATED"), String(error)).toBe(true);
      const message = (error as Error).message;
      expect(message).toMatch(/^s3: .*rejected the credentials .*check the access key ID and secret access key/);
      expect(message).not.toContain(secret);
      expect(message).not.toContain(accessKeyId);
    }
    expect(await good.exists("present.txt")).toBe(true);
  });

  it("reports a missing bucket as NOT_FOUND naming the bucket, also from exists()", async () => {
    const bucket = `hoard-missing-${randomBytes(4).toString("hex")}`;
    const storage = createS3Storage({ ...connection(), bucket, prefix: "p", partSize: 5 * mebibyte });
    const failures = [
      await failureOf(storage.exists("a.txt")),
      await failureOf(storage.stat("a.txt")),
      await failureOf(storage.download("a.txt")),
      await failureOf(storage.upload("a.txt", Readable.from([Buffer.from("x")]))),
      // Multipart (CreateMultipartUpload fails). A single PutObject of 2 MiB or more is not tried:
      // versitygw closes the connection while the body is sent (the client sees ECONNRESET) instead
      // of answering the `Expect: 100-continue` with NoSuchBucket as S3 does.
      await failureOf(storage.upload("big.bin", randomStream(6 * mebibyte).stream)),
      await failureOf(keysOf(storage)),
    ];
    for (const [index, error] of failures.entries()) {
      expect(isHoardError(error, "NOT_FOUND"), `${index}: ${String(error)}`).toBe(true);
      expect((error as Error).message).toContain(`s3: bucket ${bucket} does not exist at ${inject("s3").endpoint}`);
    }
  });

  it("reports a missing key as NOT_FOUND naming the object", async () => {
    const storage = createS3Storage({ ...connection(), bucket: await createBucket(), prefix: "p" });
    const error = await failureOf(storage.download("nothing.gz"));
    expect(isHoardError(error, "NOT_FOUND")).toBe(true);
    expect((error as Error).message).toMatch(/^s3: s3:\/\/hoard-s3-\w+\/p\/nothing\.gz does not exist$/);
    expect(isHoardError(await failureOf(storage.copy("nothing.gz", "else.gz")), "NOT_FOUND")).toBe(true);
  });

  it("reports an unreachable endpoint as UNREACHABLE, quickly, naming the endpoint", async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const storage = createS3Storage({ ...connection(), endpoint, bucket: "any", maxAttempts: 1, connectionTimeoutMs: 1_000 });
    const started = Date.now();
    const failures = [
      await failureOf(storage.exists("a")),
      await failureOf(storage.upload("a", Readable.from([Buffer.from("x")]))),
      await failureOf(storage.download("a")),
    ];
    expect(Date.now() - started).toBeLessThan(5_000);
    for (const error of failures) {
      expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
      expect((error as Error).message).toBe(
        `s3: cannot reach ${endpoint} (ECONNREFUSED): check --s3-endpoint, --s3-region and the network`,
      );
    }
  });

  it("reports an endpoint host that does not resolve as UNREACHABLE", async () => {
    // .invalid never resolves (RFC 6761).
    const storage = createS3Storage({ ...connection(), endpoint: "http://hoard-test.invalid:9000", bucket: "any", maxAttempts: 1 });
    const error = await failureOf(keysOf(storage));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    expect((error as Error).message).toContain("cannot reach http://hoard-test.invalid:9000 (ENOTFOUND)");
  });

  it("gives up on an unreachable endpoint within seconds with the default retries", async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const storage = createS3Storage({ ...connection(), endpoint, bucket: "any" });
    const started = Date.now();
    expect(isHoardError(await failureOf(storage.exists("a")), "UNREACHABLE")).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("encryption and storage class", () => {
  // versitygw's posix backend accepts these headers but does not report them back (HeadObject
  // shows no ServerSideEncryption and StorageClass STANDARD), so a proxy shows they are sent.
  const headers = (requests: RecordedRequest[], name: string) =>
    requests.filter((request) => request.headers[name] !== undefined).map((request) => `${request.method} ${request.headers[name]}`);

  it("sends SSE-S3 and the storage class with PutObject, CreateMultipartUpload and CopyObject", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({
      ...connection(),
      endpoint: proxy.endpoint,
      bucket,
      partSize: 5 * mebibyte,
      serverSideEncryption: "AES256",
      storageClass: "STANDARD_IA",
    });
    await storage.upload("small.txt", Readable.from([Buffer.from("small")]));
    await storage.upload("large.bin", randomStream(6 * mebibyte).stream);
    await storage.copy("small.txt", "copied.txt");
    expect(headers(proxy.requests, "x-amz-server-side-encryption")).toEqual(["PUT AES256", "POST AES256", "PUT AES256"]);
    expect(headers(proxy.requests, "x-amz-storage-class")).toEqual(["PUT STANDARD_IA", "POST STANDARD_IA", "PUT STANDARD_IA"]);
    const head = await testClient().send(new HeadObjectCommand({ Bucket: bucket, Key: "large.bin" }));
    expect(head.ContentLength).toBe(6 * mebibyte);
  });

  it("sends SSE-KMS with the key ID", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), endpoint: proxy.endpoint, bucket, sseKmsKeyId: "alias/hoard-test" });
    // versitygw has no KMS: whether it accepts or refuses the upload, the headers must have gone out.
    await storage.upload("kms.txt", Readable.from([Buffer.from("secret data")])).catch((error: unknown) => {
      expect(isHoardError(error)).toBe(true);
    });
    expect(headers(proxy.requests, "x-amz-server-side-encryption")).toEqual(["PUT aws:kms"]);
    expect(headers(proxy.requests, "x-amz-server-side-encryption-aws-kms-key-id")).toEqual(["PUT alias/hoard-test"]);
  });
});

describe("server-side copies", () => {
  const multipart: Partial<S3StorageOptions> = { multipartCopyThreshold: 5 * mebibyte, copyPartSize: 5 * mebibyte, queueSize: 2 };

  it("copies part by part above the threshold (UploadPartCopy), byte for byte", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), ...multipart, endpoint: proxy.endpoint, bucket, prefix: "dir" });
    const size = 12 * mebibyte + 7;
    const source = randomStream(size);
    const key = "odd names/zaïre ✓ 備份 #1 +more.bin";
    await storage.upload(key, source.stream);
    proxy.requests.length = 0;
    await storage.copy(key, "copies/target.bin");
    const ranges = proxy.requests.map((request) => request.headers["x-amz-copy-source-range"]).filter(Boolean);
    expect(ranges).toEqual(
      expect.arrayContaining([
        `bytes=0-${5 * mebibyte - 1}`,
        `bytes=${5 * mebibyte}-${10 * mebibyte - 1}`,
        `bytes=${10 * mebibyte}-${size - 1}`,
      ]),
    );
    expect(ranges).toHaveLength(3);
    expect(
      proxy.requests.some(
        (request) => request.method === "PUT" && request.headers["x-amz-copy-source"] && !request.url.includes("partNumber"),
      ),
    ).toBe(false);
    const copied = await sha256Of(await storage.download("copies/target.bin"));
    expect(copied).toEqual({ digest: await source.sha256, size });
    expect(await openMultipartUploads(bucket)).toEqual([]);
  });

  it("uses one CopyObject at or below the threshold", async () => {
    const bucket = await createBucket();
    const proxy = await proxied();
    const storage = createS3Storage({ ...connection(), ...multipart, endpoint: proxy.endpoint, bucket });
    await storage.upload("five.bin", randomStream(5 * mebibyte).stream);
    proxy.requests.length = 0;
    await storage.copy("five.bin", "five-copy.bin");
    expect(proxy.requests.filter((request) => request.headers["x-amz-copy-source"]).map((request) => request.url.split("?")[0])).toEqual([
      `/${bucket}/five-copy.bin`,
    ]);
    expect((await storage.stat("five-copy.bin"))?.size).toBe(5 * mebibyte);
  });

  it("aborts a multipart copy that fails midway, leaving no parts and no object", async () => {
    const bucket = await createBucket();
    const proxy = await proxied((request) => isPart(request, 2) && request.headers["x-amz-copy-source"] !== undefined);
    const storage = createS3Storage({ ...connection(), ...multipart, endpoint: proxy.endpoint, bucket, maxAttempts: 1 });
    await storage.upload("source.bin", randomStream(16 * mebibyte).stream);
    const error = await failureOf(storage.copy("source.bin", "target.bin"));
    expect(isHoardError(error, "STORAGE_FAILED")).toBe(true);
    expect(proxy.requests.some(isAbortMultipartUpload)).toBe(true);
    expect(await openMultipartUploads(bucket)).toEqual([]);
    expect(await objectKeys(bucket)).toEqual(["source.bin"]);
  });
});

describe("createStorageFromUrl", () => {
  it("maps s3://bucket/prefix and the --s3-* settings, also through the core registry", async () => {
    const bucket = await createBucket();
    const s3 = inject("s3");
    const settings = {
      s3Endpoint: s3.endpoint,
      s3Region: s3.region,
      s3ForcePathStyle: "true",
      s3AccessKeyId: s3.accessKeyId,
      s3SecretAccessKey: s3.secretAccessKey,
      s3PartSize: "5MiB",
      s3QueueSize: "2",
      s3StorageClass: "standard",
      gcsProjectId: "ignored: another plugin's setting",
    };
    const storage = createStorageFromUrl(`s3://${bucket}/daily/db`, settings);
    expect(storage.url).toBe(`s3://${bucket}/daily/db`);
    expect(storage.scheme).toBe("s3");
    const body = randomBytes(11 * mebibyte);
    await storage.upload("backup-20260101000000.sql.gz", Readable.from([body]));
    expect(await objectKeys(bucket)).toEqual(["daily/db/backup-20260101000000.sql.gz"]);

    const opened = await openStorage(`s3://${bucket}/daily`, settings, async () => import("../src/index.ts"));
    const keys: string[] = [];
    for await (const object of opened.list()) keys.push(`${object.key} ${object.size}`);
    expect(keys).toEqual([`db/backup-20260101000000.sql.gz ${body.length}`]);
    const back = await sha256Of(await opened.download("db/backup-20260101000000.sql.gz"));
    expect(back.digest).toBe(createHash("sha256").update(body).digest("hex"));
  });
});
