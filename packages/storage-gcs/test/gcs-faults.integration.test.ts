import { createHash, randomBytes } from "node:crypto";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { PassThrough, Readable } from "node:stream";
import { isHoardError, type Storage } from "@hoard/core";
import { randomStream, sha256Of } from "@hoard/core/testing";
import { jsonErrorAnswer, type RecordedRequest } from "@hoard/test-harness";
import * as fault from "@hoard/test-harness/vitest";
import { describe, expect, it, onTestFinished } from "vitest";
import { createGcsStorage, createStorageFromUrl, type GcsStorageOptions } from "../src/index.ts";
import { createBucket, emulator, objectNames } from "./emulator.ts";

const { abortedMidway, abortedRejections, badKeys, badPrefixes, callsWithKey, elapsedMs, faultPeers } = fault;
const { listedKeys, readWithPause, rejection, textOf, timedRejection, timedRejections } = fault;
const chunk = 256 * 1024;
const mebibyte = 1024 * 1024;
const peers = faultPeers(() => emulator().endpoint);
const { silentServer, tcpProxy, proxyThat } = peers;

async function recordingProxy(answer?: (request: RecordedRequest) => number | undefined) {
  return peers.recordingProxy((request) => {
    const status = answer?.(request);
    return status === undefined ? undefined : jsonErrorAnswer(status);
  });
}

function storageIn(bucket: string, options: Partial<GcsStorageOptions> = {}): Storage {
  return createGcsStorage({ bucket, prefix: "p", apiEndpoint: emulator().endpoint, chunkSize: chunk, ...options });
}

const keysOf = listedKeys;

/** A loopback peer that accepts connections and never answers, and tells how many of them the client still holds. */
async function countingSilentPeer() {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on("data", () => {});
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted: () => accepted,
    open: () => sockets.size,
  };
}

describe("no overwrite", () => {
  it("refuses to upload over an existing key, in one request or resumable, and keeps the original bytes", async () => {
    const bucket = await createBucket();
    const storage = storageIn(bucket);
    await storage.upload("k.gz", Readable.from([Buffer.from("the original")]));
    for (const body of [Buffer.from("a replacement"), randomBytes(chunk * 3 + 5)]) {
      const error = await rejection(storage.upload("k.gz", Readable.from([body])));
      expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
      expect((error as Error).message).toBe(`gcs: gs://${bucket}/p/k.gz already exists; not overwriting it`);
      expect(await textOf(await storage.download("k.gz"))).toBe("the original");
    }
    expect(await objectNames(bucket)).toEqual(["p/k.gz"]);
  });

  it("refuses a resumable upload when the key appears while it runs (the store decides when it finalises)", async () => {
    const bucket = await createBucket();
    const storage = storageIn(bucket);
    const slow = new PassThrough();
    const running = storage.upload("race.bin", slow);
    slow.write(randomBytes(chunk * 2));
    // Let the session start and take its first chunk before another writer takes the key.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await storage.upload("race.bin", Readable.from([Buffer.from("the winner")]));
    slow.end(randomBytes(chunk * 2));
    const error = await rejection(running);
    expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
    expect(await textOf(await storage.download("race.bin"))).toBe("the winner");
  });

  it("lets exactly one of two concurrent uploads of the same key succeed", async () => {
    const bucket = await createBucket();
    const storage = storageIn(bucket);
    for (const [round, size] of [
      [1, 10],
      [2, 100_000],
      [3, chunk * 3],
    ] as const) {
      const bodies = [randomBytes(size), randomBytes(size)];
      const results = await Promise.allSettled(bodies.map((body) => storage.upload(`same-${round}.bin`, Readable.from([body]))));
      expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(1);
      const refused = results.find((result) => result.status === "rejected");
      expect(isHoardError(refused?.reason, "ALREADY_EXISTS"), String(refused?.reason)).toBe(true);
      const winner = bodies[results.findIndex((result) => result.status === "fulfilled")] as Buffer;
      const stored = Buffer.concat(await (await storage.download(`same-${round}.bin`)).toArray());
      expect(stored.equals(winner)).toBe(true);
    }
    expect(await objectNames(bucket)).toEqual(["p/same-1.bin", "p/same-2.bin", "p/same-3.bin"]);
  });

  it("refuses to copy onto an existing key, and sends the copy conditionally", async () => {
    const bucket = await createBucket();
    const proxy = await recordingProxy();
    const storage = storageIn(bucket, { apiEndpoint: proxy.endpoint });
    await storage.upload("source.txt", Readable.from([Buffer.from("source")]));
    await storage.upload("target.txt", Readable.from([Buffer.from("target")]));
    const error = await rejection(storage.copy("source.txt", "target.txt"));
    expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`gcs: gs://${bucket}/p/target.txt already exists; not overwriting it`);
    expect(await textOf(await storage.download("target.txt"))).toBe("target");

    await storage.copy("source.txt", "fresh.txt");
    const rewrites = proxy.requests.filter((request) => request.url.includes("/rewriteTo/"));
    expect(rewrites).toHaveLength(1);
    expect(new URL(rewrites[0]?.url ?? "", "http://proxy").searchParams.get("ifGenerationMatch")).toBe("0");
    expect(await textOf(await storage.download("fresh.txt"))).toBe("source");
  });

  it("reports the store's refusal of a copy (412) as ALREADY_EXISTS", async () => {
    // fake-gcs-server ignores ifGenerationMatch on copies: the proxy answers as GCS does for a target that appeared
    // after the look-up.
    const bucket = await createBucket();
    const proxy = await recordingProxy((request) => (request.url.includes("/rewriteTo/") ? 412 : undefined));
    const storage = storageIn(bucket, { apiEndpoint: proxy.endpoint });
    await storage.upload("source.txt", Readable.from([Buffer.from("source")]));
    const error = await rejection(storage.copy("source.txt", "late.txt"));
    expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`gcs: gs://${bucket}/p/late.txt already exists; not overwriting it`);
  });
});

describe("a silent endpoint", () => {
  it("fails every call with UNREACHABLE naming the endpoint and what was done, within the timeout and its retries", async () => {
    const silent = await silentServer();
    const timeoutMs = 1_000;
    const storage = createGcsStorage({ bucket: "hung", prefix: "p", apiEndpoint: silent.url, chunkSize: chunk, timeoutMs });
    const operations: Array<[string, () => Promise<unknown>]> = [
      ["listing gs://hung/p/daily/", () => keysOf(storage, "daily/")],
      ["reading gs://hung/p/a.gz", () => storage.stat("a.gz")],
      ["reading gs://hung/p/a.gz", () => storage.exists("a.gz")],
      ["deleting gs://hung/p/a.gz", () => storage.delete("a.gz")],
      ["uploading gs://hung/p/a.gz", () => storage.upload("a.gz", Readable.from([Buffer.from("x")]))],
      ["uploading gs://hung/p/big.bin", () => storage.upload("big.bin", randomStream(chunk * 3).stream)],
      ["reading gs://hung/p/a.gz", () => storage.download("a.gz")],
      ["reading gs://hung/p/b.gz", () => storage.copy("a.gz", "b.gz")],
    ];
    for (const { what, error, elapsed } of await timedRejections(operations)) {
      expect(isHoardError(error, "UNREACHABLE"), `${what}: ${String(error)}`).toBe(true);
      expect((error as Error).message).toBe(`gcs: no answer from ${silent.url} within 1 s (${what})`);
      // Three attempts of a second each and the back-off between them, or a second of silence and a bounded clean-up.
      expect(elapsed, what).toBeLessThan(4 * timeoutMs + 3_000);
    }
  });

  it("ends each request to it once the request times out, leaving no connection open", async () => {
    // @google-cloud/storage 8.4.0 (teeny-request 11 on node-fetch 3) drops the client's per-request timeout: the calls
    // still fail at their deadline, but the requests stay open for good, and so does the process that made them.
    const peer = await countingSilentPeer();
    const storage = createGcsStorage({
      bucket: "hung",
      prefix: "p",
      apiEndpoint: peer.url,
      chunkSize: chunk,
      timeoutMs: 500,
      maxRetries: 0,
    });
    const operations: Array<[string, () => Promise<unknown>]> = [
      ["stat", () => storage.stat("a.gz")],
      ["list", () => keysOf(storage, "")],
      ["delete", () => storage.delete("a.gz")],
      ["copy", () => storage.copy("a.gz", "b.gz")],
      ["download", () => storage.download("a.gz")],
    ];
    for (const [what, operation] of operations) {
      const error = await rejection(operation());
      expect(isHoardError(error, "UNREACHABLE"), `${what}: ${String(error)}`).toBe(true);
    }
    expect(peer.accepted()).toBeGreaterThanOrEqual(operations.length);
    const deadline = Date.now() + 5_000;
    while (peer.open() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(peer.open()).toBe(0);
  });

  it("takes timeoutMs from the settings of createStorageFromUrl", async () => {
    const silent = await silentServer();
    const storage = createStorageFromUrl("gs://hung/p", { gcsEndpoint: silent.url, timeoutMs: 1_500 });
    const { error, elapsed } = await timedRejection(() => storage.upload("a.gz", Readable.from([Buffer.from("x")])));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`gcs: no answer from ${silent.url} within 1.5 s (uploading gs://hung/p/a.gz)`);
    expect(elapsed).toBeLessThan(4 * 1_500 + 3_000);
  });

  it("keeps a slow transfer that never goes silent for as long as the timeout", async () => {
    const bucket = await createBucket();
    // At most one 64 KiB read every 8 ms each way (8 MiB/s): 56 MiB take about seven seconds, in one upload request
    // (the chunk is larger than the body) and one download, each longer than the timeout.
    const proxy = await tcpProxy({ bytesPerTick: 64 * 1024, tickMs: 8 });
    // Six seconds: once the client has written the whole body, what the sockets buffer (several MB) still drains
    // through the proxy, then the emulator stores the object before it answers. That silence is part of any upload;
    // on a loaded 2-core machine it took more than the two seconds this test allowed before (a failure with nothing
    // wrong), so the timeout now leaves it room while the transfer still outlasts it.
    const timeoutMs = 6_000;
    const size = 56 * mebibyte;
    const storage = storageIn(bucket, { apiEndpoint: proxy.endpoint, chunkSize: 64 * mebibyte, timeoutMs, maxRetries: 0 });
    const source = randomStream(size);
    expect(await elapsedMs(() => storage.upload("slow.bin", source.stream))).toBeGreaterThan(timeoutMs);
    let back: Awaited<ReturnType<typeof sha256Of>> | undefined;
    expect(await elapsedMs(async () => (back = await sha256Of(await storage.download("slow.bin"))))).toBeGreaterThan(timeoutMs);
    expect(back).toEqual({ digest: await source.sha256, size });
  }, 90_000);

  it("does not count the time an upload waits for its source", async () => {
    const bucket = await createBucket();
    const storage = storageIn(bucket, { timeoutMs: 1_000 });
    const slow = new PassThrough();
    const running = storage.upload("patient.bin", slow);
    slow.write(randomBytes(chunk * 2));
    // A dump that thinks for three times the timeout between two writes.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    slow.end(randomBytes(chunk * 2));
    expect((await running).size).toBe(chunk * 4);
  });
});

describe("a download", () => {
  it("is not cut while its reader is slower than the timeout", async () => {
    const bucket = await createBucket();
    const storage = storageIn(bucket, { timeoutMs: 1_000 });
    const source = randomStream(16 * mebibyte);
    // Stored with the default timeout: what is tested is the download; a loaded machine's emulator can take over a
    // second to answer the upload of 16 MiB, which failed this test in its set-up.
    await storageIn(bucket).upload("big.bin", source.stream);
    const read = await readWithPause(await storage.download("big.bin"), 3_000);
    expect(createHash("sha256").update(read).digest("hex")).toBe(await source.sha256);
  });

  it("fails its stream with UNREACHABLE when the endpoint goes silent midway", async () => {
    const bucket = await createBucket();
    await storageIn(bucket).upload("big.bin", randomStream(32 * mebibyte).stream);
    const proxy = await proxyThat("freeze", { down: 2 * mebibyte });
    const storage = storageIn(bucket, { apiEndpoint: proxy.endpoint, timeoutMs: 1_000 });
    const stream = await storage.download("big.bin");
    const { error, elapsed } = await timedRejection(() => sha256Of(stream));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`gcs: no answer from ${proxy.endpoint} within 1 s (downloading gs://${bucket}/p/big.bin)`);
    expect(elapsed).toBeLessThan(1_000 + 2_000);
  });
});

describe("abort signals", () => {
  it("stop every call against a silent endpoint promptly with ABORTED", async () => {
    const silent = await silentServer();
    const storage = createGcsStorage({ bucket: "hung", apiEndpoint: silent.url, chunkSize: chunk, timeoutMs: 60_000 });
    const operations: Array<[string, (signal: AbortSignal) => Promise<unknown>]> = [
      ["stat", (signal) => storage.stat("a", { signal })],
      ["exists", (signal) => storage.exists("a", { signal })],
      ["delete", (signal) => storage.delete("a", { signal })],
      ["copy", (signal) => storage.copy("a", "b", { signal })],
      ["list", (signal) => keysOf(storage, "", signal)],
      ["upload", (signal) => storage.upload("a", Readable.from([Buffer.from("x")]), { signal })],
      ["resumable upload", (signal) => storage.upload("a", randomStream(chunk * 3).stream, { signal })],
      ["download", (signal) => storage.download("a", { signal })],
    ];
    for (const { what, error, elapsed } of await abortedRejections(operations)) {
      expect(isHoardError(error, "ABORTED"), `${what}: ${String(error)}`).toBe(true);
      expect(elapsed, what).toBeLessThan(1_500);
    }
  });

  it("fails a download stream with ABORTED when the signal fires midway", async () => {
    const bucket = await createBucket();
    const storage = storageIn(bucket);
    await storage.upload("big.bin", randomStream(16 * mebibyte).stream);
    const error = await abortedMidway((signal) => storage.download("big.bin", { signal }));
    expect(isHoardError(error, "ABORTED"), String(error)).toBe(true);
  });
});

describe("a connection lost midway", () => {
  it("fails an upload with UNREACHABLE naming the endpoint, not as an abort", async () => {
    const bucket = await createBucket();
    const proxy = await proxyThat("cut", { up: 4 * mebibyte });
    const storage = storageIn(bucket, { apiEndpoint: proxy.endpoint, chunkSize: 32 * mebibyte, maxRetries: 1 });
    const error = await rejection(storage.upload("lost.bin", randomStream(16 * mebibyte).stream));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^gcs: connection to ${proxy.endpoint} lost while uploading gs://${bucket}/p/lost\\.bin \\((ECONNRESET|socket hang up)\\)$`,
      ),
    );
    expect(await objectNames(bucket)).toEqual([]);
  });

  it("fails a download stream with a HoardError naming the endpoint", async () => {
    const bucket = await createBucket();
    await storageIn(bucket).upload("big.bin", randomStream(16 * mebibyte).stream);
    const proxy = await proxyThat("cut", { down: 2 * mebibyte });
    const storage = storageIn(bucket, { apiEndpoint: proxy.endpoint, timeoutMs: 1_000 });
    const error = await rejection(sha256Of(await storage.download("big.bin")));
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    // The client reports the reset, or (in some timings) swallows it and its stream just stops: then the silence
    // timer fails it.
    const target = `gs://${bucket}/p/big\\.bin`;
    expect((error as Error).message).toMatch(
      new RegExp(
        `^gcs: (connection to ${proxy.endpoint} lost while downloading ${target} \\(|no answer from ${proxy.endpoint} within 1 s \\(downloading ${target}\\)$)`,
      ),
    );
  });
});

describe("keys", () => {
  it("rejects keys that escape or alias, on every call, before any request", async () => {
    const proxy = await recordingProxy();
    const storage = storageIn(await createBucket(), { apiEndpoint: proxy.endpoint });
    for (const key of badKeys) {
      for (const [what, call] of callsWithKey(storage, key)) {
        const error = await rejection(call());
        expect(isHoardError(error, "INVALID_ARGUMENT"), `${what} ${JSON.stringify(key)}: ${String(error)}`).toBe(true);
        expect((error as Error).message).toMatch(/^gcs: invalid key/);
      }
    }
    for (const prefix of badPrefixes) {
      expect(isHoardError(await rejection(keysOf(storage, prefix)), "INVALID_ARGUMENT"), prefix).toBe(true);
    }
    expect(proxy.requests).toEqual([]);
  });
});
