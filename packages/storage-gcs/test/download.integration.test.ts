import { randomBytes } from "node:crypto";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { Storage as GoogleStorage } from "@google-cloud/storage";
import { isHoardError } from "@hoard/core";
import { sha256Of } from "@hoard/core/testing";
import * as fault from "@hoard/test-harness/vitest";
import { afterEach, describe, expect, it, vi } from "vitest";
import { openObject } from "../src/download.ts";
import { createGcsStorage, type GcsStorageOptions } from "../src/index.ts";
import { createBucket, emulator } from "./emulator.ts";
import { startRecordingProxy } from "./recording-proxy.ts";

const { rejection, textOf } = fault;
const peers = fault.faultPeers(() => emulator().endpoint);
const stoppers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(stoppers.splice(0).map((stop) => stop()));
});

async function recordingProxy(answer?: Parameters<typeof startRecordingProxy>[1]) {
  const proxy = await startRecordingProxy(emulator().endpoint, answer);
  stoppers.push(() => proxy.stop());
  return proxy;
}

/**
 * An HTTP proxy in front of the emulator that passes everything through, except that the body of every media
 * download (`alt=media`) arrives with its first byte changed: the emulator's checksum headers still describe the
 * stored bytes.
 */
async function corruptingProxy(): Promise<string> {
  const target = new URL(emulator().endpoint);
  const server = createServer((incoming, outgoing) => {
    const media = (incoming.url ?? "").includes("alt=media");
    const forwarded = httpRequest(
      { host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (response) => {
        outgoing.writeHead(response.statusCode ?? 502, response.headers);
        let first = media;
        response.on("data", (data: Buffer) => {
          if (first && data.length > 0) {
            data[0] = (data[0] ?? 0) ^ 0xff;
            first = false;
          }
          outgoing.write(data);
        });
        response.on("end", () => outgoing.end());
      },
    );
    forwarded.on("error", () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  stoppers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function storageIn(bucket: string, options: Partial<GcsStorageOptions> = {}) {
  return createGcsStorage({ bucket, prefix: "d", apiEndpoint: emulator().endpoint, ...options });
}

const isMedia = (url: string) => url.includes("alt=media");

describe("a download's request", () => {
  it("is retried after a transient answer, and not after a lasting one", async () => {
    const bucket = await createBucket();
    await storageIn(bucket).upload("a.bin", Readable.from([Buffer.from("the bytes")]));
    let media = 0;
    const flaky = await recordingProxy((request) => (isMedia(request.url) && media++ === 0 ? 503 : undefined));
    expect(await textOf(await storageIn(bucket, { apiEndpoint: flaky.endpoint }).download("a.bin"))).toBe("the bytes");
    expect(flaky.requests.filter((request) => isMedia(request.url))).toHaveLength(2);

    const refusing = await recordingProxy((request) => (isMedia(request.url) ? 403 : undefined));
    const denied = await rejection(storageIn(bucket, { apiEndpoint: refusing.endpoint }).download("a.bin"));
    expect(isHoardError(denied, "ACCESS_DENIED"), String(denied)).toBe(true);
    expect((denied as Error).message).toMatch(
      new RegExp(`^gcs: downloading gs://${bucket}/d/a\\.bin failed: access denied \\(answered 403`),
    );
    expect(refusing.requests.filter((request) => isMedia(request.url))).toHaveLength(1);

    const failing = await recordingProxy((request) => (isMedia(request.url) ? 503 : undefined));
    const failed = await rejection(storageIn(bucket, { apiEndpoint: failing.endpoint, maxRetries: 0 }).download("a.bin"));
    expect(isHoardError(failed, "STORAGE_FAILED"), String(failed)).toBe(true);
    expect((failed as Error).message).toBe(`gcs: downloading gs://${bucket}/d/a.bin failed: answered 503 by the test proxy`);
    expect(failing.requests.filter((request) => isMedia(request.url))).toHaveLength(1);
  });

  it("carries the client's credentials to Google, and none to an emulator", async () => {
    // fake-gcs-server takes any request, and no token can be had from Google here: the client's auth layer is asked
    // for its headers as for a real request, and answers with a made-up token.
    const bucket = await createBucket();
    await storageIn(bucket).upload("a.txt", Readable.from([Buffer.from("authenticated")]));
    const proxy = await recordingProxy();
    const client = new GoogleStorage({ apiEndpoint: proxy.endpoint, projectId: "hoard-test" });
    const asked = vi.spyOn(client.authClient, "getRequestHeaders").mockResolvedValue(new Headers({ authorization: "Bearer made-up" }));
    const file = client.bucket(bucket).file("d/a.txt");
    const { signal } = new AbortController();
    for (const authenticated of [true, false]) {
      const body = await openObject({ file, authenticated, timeoutMs: 5_000, maxRetries: 0, signal });
      expect(await textOf(body)).toBe("authenticated");
    }
    const media = proxy.requests.filter((request) => isMedia(request.url));
    expect(media.map((request) => request.headers.authorization)).toEqual(["Bearer made-up", undefined]);
    expect(asked).toHaveBeenCalledTimes(1);
    expect(String(asked.mock.calls[0]?.[0])).toBe(`${proxy.endpoint}/storage/v1/b/${bucket}/o/d%2Fa.txt?alt=media`);
  });

  it("fails the stream with STORAGE_FAILED when the bytes do not match the stored CRC32C", async () => {
    const bucket = await createBucket();
    const bytes = randomBytes(3 * 1024 * 1024);
    await storageIn(bucket).upload("c.bin", Readable.from([bytes]));
    const storage = storageIn(bucket, { apiEndpoint: await corruptingProxy() });
    const error = await rejection(sha256Of(await storage.download("c.bin")));
    expect(isHoardError(error, "STORAGE_FAILED"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(
      new RegExp(`^gcs: downloading gs://${bucket}/d/c\\.bin failed: The downloaded data did not match`),
    );
    // The same object through the emulator itself passes the check.
    expect((await sha256Of(await storageIn(bucket).download("c.bin"))).size).toBe(bytes.length);
  });

  it("stops reading from the store when the reader stops early", async () => {
    const bucket = await createBucket();
    const size = 32 * 1024 * 1024;
    await storageIn(bucket).upload("big.bin", Readable.from([randomBytes(size)]));
    const proxy = await peers.tcpProxy();
    const stream = await storageIn(bucket, { apiEndpoint: proxy.endpoint }).download("big.bin");
    for await (const _ of stream) break;
    // On loopback the whole object would pass in well under this.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(stream.destroyed).toBe(true);
    expect(proxy.bytesDown()).toBeLessThan(size);
  });
});
