import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { Readable } from "node:stream";
import { isHoardError, type Storage } from "@hoard/core";
import { randomStream, sha256Of } from "@hoard/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createGcsStorage, createStorageFromUrl, type GcsStorageOptions } from "../src/index.ts";
import { createBucket, emulator, objectNames } from "./emulator.ts";

const chunk = 256 * 1024;

async function storageIn(bucket: string, options: Partial<GcsStorageOptions> = {}): Promise<Storage> {
  return createGcsStorage({ bucket, prefix: "some/prefix", apiEndpoint: emulator().endpoint, ...options });
}

/** Sends `bytesBeforeFailure` bytes, then fails as a dump that dies midway would. */
function failingStream(bytesBeforeFailure: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytesBeforeFailure) {
        this.destroy(new Error("the dump died"));
        return;
      }
      const next = randomBytes(Math.min(64 * 1024, bytesBeforeFailure - sent));
      sent += next.length;
      this.push(next);
    },
  });
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected a rejection"),
    (error: unknown) => error,
  );
}

async function textOf(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

/** A port on loopback that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("gcs storage against fake-gcs-server", () => {
  it("stores keys under the prefix and lists them relative to it", async () => {
    const bucket = await createBucket();
    const storage = await storageIn(bucket);
    await storage.upload("dir/a.txt", Readable.from([Buffer.from("a")]));
    expect(await objectNames(bucket)).toEqual(["some/prefix/dir/a.txt"]);
    const listed = [];
    for await (const object of storage.list()) listed.push(object);
    expect(listed).toMatchObject([{ key: "dir/a.txt", size: 1 }]);
    expect(listed[0]?.lastModified).toBeInstanceOf(Date);
    expect(storage.url).toBe(`gs://${bucket}/some/prefix`);
    expect(storage.scheme).toBe("gs");
  });

  it("round-trips through several resumable chunks and reports progress", async () => {
    const storage = await storageIn(await createBucket(), { chunkSize: chunk });
    const size = 3 * 1024 * 1024 + 123;
    const source = randomStream(size, 100_000);
    const progress: number[] = [];
    const stored = await storage.upload("chunks.bin", source.stream, { onProgress: (bytes) => progress.push(bytes) });
    expect(stored.size).toBe(size);
    expect(progress.at(-1)).toBe(size);
    const back = await sha256Of(await storage.download("chunks.bin"));
    expect(back).toEqual({ digest: await source.sha256, size });
  });

  it("uses contentLength: exact sizes succeed in either path, wrong ones fail and leave nothing", async () => {
    const bucket = await createBucket();
    const storage = await storageIn(bucket, { chunkSize: chunk });
    const small = randomBytes(1000);
    await storage.upload("exact-small.bin", Readable.from([small]), { contentLength: small.length });
    const large = randomBytes(chunk * 2 + 5);
    await storage.upload("exact-large.bin", Readable.from([large]), { contentLength: large.length });
    expect(await storage.stat("exact-large.bin")).toMatchObject({ size: large.length });

    const short = await rejection(storage.upload("short.bin", Readable.from([large]), { contentLength: large.length + 1 }));
    expect(isHoardError(short, "STORAGE_FAILED")).toBe(true);
    const long = await rejection(storage.upload("long.bin", Readable.from([large]), { contentLength: large.length - 1 }));
    expect(isHoardError(long, "STORAGE_FAILED")).toBe(true);
    const shortSmall = await rejection(storage.upload("short-small.bin", Readable.from([small]), { contentLength: 2000 }));
    expect(isHoardError(shortSmall, "STORAGE_FAILED")).toBe(true);
    expect(await objectNames(bucket)).toEqual(["some/prefix/exact-large.bin", "some/prefix/exact-small.bin"]);
  });

  it("leaves no object anywhere in the bucket when an upload fails midway", async () => {
    const bucket = await createBucket();
    const storage = await storageIn(bucket, { chunkSize: chunk * 4 });
    // Several chunks reach the server before the failure, and a failure inside the first chunk.
    for (const [key, bytes] of [
      ["failed/large.bin", 5 * chunk * 4 + 1000],
      ["failed/small.bin", 1000],
    ] as const) {
      const error = await rejection(storage.upload(key, failingStream(bytes)));
      expect(isHoardError(error)).toBe(true);
      expect((error as Error).message).toMatch(/^gcs: uploading gs:\/\/.*the dump died/);
    }
    // Give chunk requests still in flight time to land: none of them may complete an object.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await objectNames(bucket)).toEqual([]);
  });

  it("keeps the previous object when an upload over it fails", async () => {
    const storage = await storageIn(await createBucket(), { chunkSize: chunk });
    await storage.upload("kept.txt", Readable.from([Buffer.from("previous")]));
    await expect(storage.upload("kept.txt", failingStream(chunk * 3))).rejects.toThrow();
    await expect(storage.upload("kept.txt", failingStream(10))).rejects.toThrow();
    expect(await textOf(await storage.download("kept.txt"))).toBe("previous");
  });

  it("deletes the finished object when the abort comes after the source ended", async () => {
    const bucket = await createBucket();
    const storage = await storageIn(bucket, { chunkSize: chunk * 4 });
    for (const [key, size] of [
      ["late-abort/large.bin", chunk * 4 * 3 + chunk],
      ["late-abort/small.bin", 1000],
    ] as const) {
      const controller = new AbortController();
      const source = Readable.from([randomBytes(size)]);
      // By the next turn of the event loop the final request is on its way and can no longer be stopped.
      source.on("end", () => setImmediate(() => controller.abort()));
      const error = await rejection(storage.upload(key, source, { signal: controller.signal, contentLength: size }));
      expect(isHoardError(error, "ABORTED")).toBe(true);
      expect(await storage.exists(key)).toBe(false);
    }
    expect(await objectNames(bucket)).toEqual([]);
  });

  it("rejects an upload whose signal is already aborted without writing", async () => {
    const bucket = await createBucket();
    const storage = await storageIn(bucket);
    const error = await rejection(storage.upload("never.txt", Readable.from([Buffer.from("x")]), { signal: AbortSignal.abort() }));
    expect(isHoardError(error, "ABORTED")).toBe(true);
    expect(await objectNames(bucket)).toEqual([]);
  });

  it("aborts a download", async () => {
    const storage = await storageIn(await createBucket());
    await storage.upload("big.bin", randomStream(8 * 1024 * 1024).stream);
    const controller = new AbortController();
    const stream = await storage.download("big.bin", { signal: controller.signal });
    controller.abort();
    await expect(sha256Of(stream)).rejects.toThrow();
  });

  it("names a missing bucket in a NOT_FOUND error, for every operation", async () => {
    const storage = await storageIn("hoard-no-such-bucket", { chunkSize: chunk });
    const operations: Array<[string, () => Promise<unknown>]> = [
      ["exists", () => storage.exists("a")],
      ["stat", () => storage.stat("a")],
      ["list", async () => storage.list()[Symbol.asyncIterator]().next()],
      ["small upload", () => storage.upload("a", Readable.from([Buffer.from("a")]))],
      ["resumable upload", () => storage.upload("a", Readable.from([randomBytes(chunk * 2)]))],
      ["download", () => storage.download("a")],
      ["delete", () => storage.delete("a")],
      ["copy", () => storage.copy("a", "b")],
    ];
    for (const [name, operation] of operations) {
      const error = await rejection(operation());
      expect(isHoardError(error, "NOT_FOUND"), `${name}: ${String(error)}`).toBe(true);
      expect((error as Error).message, name).toContain("bucket hoard-no-such-bucket does not exist");
    }
  });

  it("reports a missing object as NOT_FOUND naming it", async () => {
    const bucket = await createBucket();
    const storage = await storageIn(bucket);
    const download = await rejection(storage.download("nothing.bin"));
    expect(isHoardError(download, "NOT_FOUND")).toBe(true);
    expect((download as Error).message).toBe(`gcs: gs://${bucket}/some/prefix/nothing.bin does not exist`);
    const copy = await rejection(storage.copy("nothing.bin", "copy.bin"));
    expect(isHoardError(copy, "NOT_FOUND")).toBe(true);
  });

  it("fails fast with UNREACHABLE when the endpoint does not answer", async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const storage = createGcsStorage({ bucket: "any", apiEndpoint: endpoint, maxRetries: 0, chunkSize: chunk });
    const started = Date.now();
    const operations: Array<() => Promise<unknown>> = [
      () => storage.exists("a"),
      async () => storage.list()[Symbol.asyncIterator]().next(),
      () => storage.upload("a", Readable.from([Buffer.from("a")])),
      () => storage.upload("a", Readable.from([randomBytes(chunk * 2)])),
      () => storage.download("a"),
    ];
    for (const operation of operations) {
      const error = await rejection(operation());
      expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
      expect((error as Error).message).toContain(`cannot reach ${endpoint}`);
    }
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("prints no process warning while it uploads and downloads, with one signal for every call", async () => {
    // @google-cloud/storage 8.4.0's File.createReadStream() printed a MaxListenersExceededWarning on every download
    // (11 close listeners on one response stream); a listener left on a shared signal would print one past ten calls.
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on("warning", onWarning);
    try {
      const storage = await storageIn(await createBucket(), { chunkSize: chunk });
      const { signal } = new AbortController();
      const large = randomStream(3 * chunk + 17);
      await storage.upload("small.txt", Readable.from([Buffer.from("small")]), { signal });
      await storage.upload("large.bin", large.stream, { signal });
      for (let round = 0; round < 6; round++) {
        expect(await textOf(await storage.download("small.txt", { signal }))).toBe("small");
        expect(await sha256Of(await storage.download("large.bin", { signal }))).toEqual({
          digest: await large.sha256,
          size: 3 * chunk + 17,
        });
      }
      // process.emitWarning emits on a later turn of the event loop.
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it("sets the storage class of new objects", async () => {
    const bucket = await createBucket();
    const storage = await storageIn(bucket, { storageClass: "NEARLINE", chunkSize: chunk });
    await storage.upload("cold-small.bin", Readable.from([Buffer.from("x")]));
    await storage.upload("cold-large.bin", Readable.from([randomBytes(chunk * 2)]));
    for (const name of ["cold-small.bin", "cold-large.bin"]) {
      const response = await fetch(`${emulator().endpoint}/storage/v1/b/${bucket}/o/${encodeURIComponent(`some/prefix/${name}`)}`);
      expect(((await response.json()) as { storageClass?: string }).storageClass, name).toBe("NEARLINE");
    }
  });

  it("checks its options", () => {
    for (const chunkSize of [0, 1000, chunk + 1, -chunk]) {
      expect(() => createGcsStorage({ bucket: "b", chunkSize }), String(chunkSize)).toThrow(/256 KiB/);
    }
    expect(() => createGcsStorage({ bucket: "b", maxRetries: -1 })).toThrow(/retries/);
    expect(() => createGcsStorage({ bucket: "" })).toThrow(/bucket/);
    expect(() => createGcsStorage({ bucket: "b", keyFilename: "/k.json", credentials: { client_email: "e", private_key: "k" } })).toThrow(
      /either a key file or inline credentials/,
    );
  });

  describe("from a URL", () => {
    it("opens gs://bucket/prefix with settings", async () => {
      const bucket = await createBucket();
      const storage = createStorageFromUrl(`gs://${bucket}/from/url/`, { gcsEndpoint: emulator().endpoint, gcsProject: "hoard-test" });
      expect(storage.url).toBe(`gs://${bucket}/from/url`);
      await storage.upload("x.txt", Readable.from([Buffer.from("from a URL")]));
      expect(await objectNames(bucket)).toEqual(["from/url/x.txt"]);
      expect(await textOf(await storage.download("x.txt"))).toBe("from a URL");
    });

    it("rejects half of the inline credentials and other schemes", () => {
      expect(() => createStorageFromUrl("gs://b/p", { gcsClientEmail: "a@b.c" })).toThrow(/both a client email and a private key/);
      expect(() => createStorageFromUrl("gs://b/p", { gcsPrivateKey: "k" })).toThrow(/both a client email and a private key/);
      expect(() => createStorageFromUrl("s3://b/p", {})).toThrow(/gs:\/\/bucket\/prefix/);
    });

    it("refuses credentials or a query in the URL before any request, without repeating them", async () => {
      const bucket = await createBucket();
      for (const url of [`gs://user:hunter2@${bucket}/p`, `gs://hunter2@${bucket}/p`, `gs://${bucket}/p?project=hunter2`]) {
        let caught: unknown;
        try {
          // The emulator would take any request: before the fix, this storage opened and wrote.
          const storage = createStorageFromUrl(url, { gcsEndpoint: emulator().endpoint });
          await storage.upload("x.txt", Readable.from([Buffer.from("x")]));
        } catch (error) {
          caught = error;
        }
        expect(isHoardError(caught, "INVALID_ARGUMENT"), url).toBe(true);
        expect((caught as Error).message).toMatch(
          /^gcs: gs:\/\/.*: use gs:\/\/bucket\/prefix and pass credentials and options as --gcs-\* flags/,
        );
        expect((caught as Error).message).not.toContain("hunter2");
      }
      expect(await objectNames(bucket)).toEqual([]);
    });
  });

  describe("with STORAGE_EMULATOR_HOST", () => {
    const saved = process.env.STORAGE_EMULATOR_HOST;
    afterEach(() => {
      if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = saved;
    });

    for (const form of ["http://host", "host", "http://host/storage/v1/"]) {
      it(`honours it in the form ${form}`, async () => {
        const { endpoint } = emulator();
        process.env.STORAGE_EMULATOR_HOST = form.replace("http://host", endpoint).replace("host", endpoint.replace("http://", ""));
        const bucket = await createBucket();
        const storage = createGcsStorage({ bucket, chunkSize: chunk });
        await storage.upload("small.txt", Readable.from([Buffer.from("emulated")]));
        await storage.upload("large.bin", Readable.from([randomBytes(chunk * 2)]));
        expect(await textOf(await storage.download("small.txt"))).toBe("emulated");
        expect(await objectNames(bucket)).toEqual(["large.bin", "small.txt"]);
      });
    }
  });
});
