import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isHoardError } from "../errors.js";
import { createLocalStorage } from "../storage/local.js";
import type { Storage } from "../storage.js";
import { downloadFile, transfer, uploadFile } from "../transfer.js";

export interface StorageContractOptions {
  /** Creates a storage rooted at a fresh, empty location. Called once per suite. */
  create(): Promise<Storage>;
  /** Creates another storage of the same kind at another empty location, for remote-to-remote copies. */
  createAnother?(): Promise<Storage>;
  /** Size of the large round trip. @default 200 MiB */
  largeObjectBytes?: number;
  /** How many keys the listing test writes. @default 1500 */
  manyKeys?: number;
  /**
   * Whether the server decides racing conditional writes atomically, as AWS S3, Google Cloud
   * Storage and local directories do. A test server that does not (versitygw v1.7.0 lets both of
   * two racing `If-None-Match: *` PutObjects succeed about a third of the time) sets false: the race
   * test then checks only what such a server guarantees, that the stored object is one writer's
   * whole bytes and never a mix. @default true
   */
  atomicConditionalWrites?: boolean;
}

/** A deterministic-enough stream of `size` random bytes and a promise for its SHA-256. */
export function randomStream(size: number, chunkSize = 1024 * 1024): { stream: Readable; sha256: Promise<string> } {
  const hash = createHash("sha256");
  let remaining = size;
  let resolveDigest: (digest: string) => void = () => {};
  const sha256 = new Promise<string>((resolve) => {
    resolveDigest = resolve;
  });
  const stream = new Readable({
    read() {
      if (remaining <= 0) {
        resolveDigest(hash.digest("hex"));
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(chunkSize, remaining));
      remaining -= chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, sha256 };
}

export async function sha256Of(stream: Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: hash.digest("hex"), size };
}

async function textOf(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function keysOf(storage: Storage, prefix?: string, signal?: AbortSignal): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storage.list(prefix, { signal })) keys.push(object.key);
  return keys.sort();
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** A stream that sends some bytes and then fails, as a dump that dies midway would. */
function failingStream(bytesBeforeFailure: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytesBeforeFailure) {
        this.destroy(new Error("the source failed midway"));
        return;
      }
      const chunk = randomBytes(Math.min(256 * 1024, bytesBeforeFailure - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

/**
 * The behaviour every Storage must have. Each storage package runs this against a real server:
 * `describeStorageContract("s3", { create: ... })`.
 */
export function describeStorageContract(name: string, options: StorageContractOptions): void {
  describe(`${name} storage contract`, () => {
    let storage: Storage;
    let local: Storage;
    let localDirectory: string;

    beforeAll(async () => {
      storage = await options.create();
      localDirectory = await mkdtemp(join(tmpdir(), "hoard-contract-"));
      local = createLocalStorage({ directory: localDirectory });
    });

    afterAll(async () => {
      await rm(localDirectory, { recursive: true, force: true });
    });

    it("round-trips an empty object", async () => {
      const stored = await storage.upload("empty.bin", Readable.from([]));
      expect(stored.size).toBe(0);
      expect(await storage.exists("empty.bin")).toBe(true);
      expect((await sha256Of(await storage.download("empty.bin"))).size).toBe(0);
    });

    it("round-trips a small object and reports its size", async () => {
      const stored = await storage.upload("small.txt", Readable.from([Buffer.from("hello, hoard\n")]));
      expect(stored.size).toBe(13);
      expect(await textOf(await storage.download("small.txt"))).toBe("hello, hoard\n");
      expect((await storage.stat("small.txt"))?.size).toBe(13);
    });

    it("round-trips a large object byte for byte", async () => {
      const size = options.largeObjectBytes ?? 200 * 1024 * 1024;
      const source = randomStream(size);
      const stored = await storage.upload("large/object.bin", source.stream);
      expect(stored.size).toBe(size);
      const back = await sha256Of(await storage.download("large/object.bin"));
      expect(back.size).toBe(size);
      expect(back.digest).toBe(await source.sha256);
    }, 600_000);

    it("lists every key under a prefix across pages", async () => {
      const count = options.manyKeys ?? 1500;
      const keys = Array.from({ length: count }, (_, index) => `many/key-${String(index).padStart(5, "0")}`);
      const queue = [...keys];
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let key = queue.shift(); key; key = queue.shift()) await storage.upload(key, Readable.from([Buffer.from(key)]));
        }),
      );
      expect(await keysOf(storage, "many/")).toEqual(keys);
    }, 300_000);

    it("keeps prefixes that look alike apart", async () => {
      for (const key of ["alike/backup-1", "alike/backup-10", "alike/backups-1", "alike/backup/1"]) {
        await storage.upload(key, Readable.from([Buffer.from(key)]));
      }
      expect(await keysOf(storage, "alike/backup-")).toEqual(["alike/backup-1", "alike/backup-10"]);
      expect(await keysOf(storage, "alike/backup/")).toEqual(["alike/backup/1"]);
      expect(await keysOf(storage, "alike/")).toHaveLength(4);
    });

    it("handles keys with spaces and unicode", async () => {
      const key = "odd names/zaïre ✓ 備份 #1 +more.txt";
      await storage.upload(key, Readable.from([Buffer.from("unicode")]));
      expect(await storage.exists(key)).toBe(true);
      expect(await textOf(await storage.download(key))).toBe("unicode");
      expect(await keysOf(storage, "odd names/")).toEqual([key]);
      await storage.delete(key);
      expect(await storage.exists(key)).toBe(false);
    });

    it("copies inside the storage", async () => {
      await storage.upload("copy/source.txt", Readable.from([Buffer.from("copied")]));
      await storage.copy("copy/source.txt", "copy/target.txt");
      expect(await textOf(await storage.download("copy/target.txt"))).toBe("copied");
      expect(await storage.exists("copy/source.txt")).toBe(true);
    });

    it("copies local to remote and remote to local", async () => {
      const file = join(localDirectory, "to-upload.txt");
      await writeFile(file, "from disk");
      await uploadFile(storage, "transfer/from-disk.txt", file);
      expect(await textOf(await storage.download("transfer/from-disk.txt"))).toBe("from disk");
      const back = join(localDirectory, "downloaded.txt");
      await downloadFile(storage, "transfer/from-disk.txt", back);
      expect(await readFile(back, "utf8")).toBe("from disk");

      await local.upload("local-object.txt", Readable.from([Buffer.from("local")]));
      await transfer(local, "local-object.txt", storage, "transfer/from-local.txt");
      expect(await textOf(await storage.download("transfer/from-local.txt"))).toBe("local");
      await transfer(storage, "transfer/from-local.txt", local, "back-again.txt");
      expect(await textOf(await local.download("back-again.txt"))).toBe("local");
    });

    it("copies remote to remote", async () => {
      const other = options.createAnother ? await options.createAnother() : local;
      await storage.upload("transfer/remote.txt", Readable.from([Buffer.from("remote")]));
      await transfer(storage, "transfer/remote.txt", other, "remote-copy.txt");
      expect(await textOf(await other.download("remote-copy.txt"))).toBe("remote");
    });

    it("leaves nothing behind when an upload fails midway", async () => {
      await expect(storage.upload("failed/partial.bin", failingStream(12 * 1024 * 1024))).rejects.toThrow();
      expect(await storage.exists("failed/partial.bin")).toBe(false);
      expect(await keysOf(storage, "failed/")).toEqual([]);
    }, 120_000);

    it("leaves nothing behind when an upload is aborted", async () => {
      const controller = new AbortController();
      const source = randomStream(64 * 1024 * 1024, 256 * 1024);
      let sent = 0;
      source.stream.on("data", (chunk: Buffer) => {
        sent += chunk.length;
        if (sent > 8 * 1024 * 1024) controller.abort();
      });
      await expect(storage.upload("aborted/partial.bin", source.stream, { signal: controller.signal })).rejects.toThrow();
      expect(await keysOf(storage, "aborted/")).toEqual([]);
    }, 120_000);

    it("treats missing keys plainly", async () => {
      expect(await storage.exists("missing/nothing.txt")).toBe(false);
      expect(await storage.stat("missing/nothing.txt")).toBeUndefined();
      await expect(storage.delete("missing/nothing.txt")).resolves.toBeUndefined();
      const error = await storage
        .download("missing/nothing.txt")
        .then(
          async (stream) => {
            // Some stores only report a missing object once the body is read.
            await sha256Of(stream);
            return undefined;
          },
          (caught: unknown) => caught,
        )
        .catch((caught: unknown) => caught);
      expect(isHoardError(error, "NOT_FOUND")).toBe(true);
      expect(await keysOf(storage, "missing/")).toEqual([]);
    });

    it("never replaces an existing object: a second upload of the key fails with ALREADY_EXISTS", async () => {
      await storage.upload("no-overwrite/backup.bin", Readable.from([Buffer.from("the original")]));
      const error = await caught(storage.upload("no-overwrite/backup.bin", Readable.from([Buffer.from("a replacement")])));
      expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
      expect(await textOf(await storage.download("no-overwrite/backup.bin"))).toBe("the original");
      expect(await keysOf(storage, "no-overwrite/")).toEqual(["no-overwrite/backup.bin"]);
    });

    it("lets exactly one of two concurrent uploads of a key win, and keeps the winner's bytes", async () => {
      const bodies = ["first writer ".repeat(20_000), "second writer ".repeat(20_000)];
      const outcomes = await Promise.allSettled(
        bodies.map((body) =>
          storage.upload("race/backup.bin", Readable.from([Buffer.from(body.slice(0, 100_000)), Buffer.from(body.slice(100_000))])),
        ),
      );
      const winners = outcomes.flatMap((outcome, index) => (outcome.status === "fulfilled" ? [index] : []));
      const stored = await textOf(await storage.download("race/backup.bin"));
      expect(await keysOf(storage, "race/")).toEqual(["race/backup.bin"]);
      if (options.atomicConditionalWrites === false) {
        expect(winners.length, JSON.stringify(outcomes.map((outcome) => outcome.status))).toBeGreaterThanOrEqual(1);
        expect(bodies).toContain(stored);
        return;
      }
      expect(winners, JSON.stringify(outcomes.map((outcome) => outcome.status))).toHaveLength(1);
      const loser = outcomes.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult;
      expect(isHoardError(loser.reason, "ALREADY_EXISTS"), String(loser.reason)).toBe(true);
      expect(stored).toBe(bodies[winners[0] as number]);
    });

    it("fails a copy onto an existing key with ALREADY_EXISTS and leaves the target as it was", async () => {
      await storage.upload("copy-onto/source.txt", Readable.from([Buffer.from("source")]));
      await storage.upload("copy-onto/target.txt", Readable.from([Buffer.from("target")]));
      const error = await caught(storage.copy("copy-onto/source.txt", "copy-onto/target.txt"));
      expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
      expect(await textOf(await storage.download("copy-onto/target.txt"))).toBe("target");
      expect(await keysOf(storage, "copy-onto/")).toEqual(["copy-onto/source.txt", "copy-onto/target.txt"]);
    });

    it("fails every call given an already-aborted signal with ABORTED, changing nothing", async () => {
      await storage.upload("signal/object.txt", Readable.from([Buffer.from("still here")]));
      const signal = AbortSignal.abort();
      const calls: Array<[string, () => Promise<unknown>]> = [
        ["stat", () => storage.stat("signal/object.txt", { signal })],
        ["exists", () => storage.exists("signal/object.txt", { signal })],
        ["list", () => keysOf(storage, "signal/", signal)],
        ["delete", () => storage.delete("signal/object.txt", { signal })],
        ["copy", () => storage.copy("signal/object.txt", "signal/copy.txt", { signal })],
        ["upload", () => storage.upload("signal/uploaded.txt", Readable.from([Buffer.from("x")]), { signal })],
        // Some stores only notice once the body is read.
        ["download", async () => sha256Of(await storage.download("signal/object.txt", { signal }))],
      ];
      for (const [name, call] of calls) {
        const error = await caught(call());
        expect(isHoardError(error, "ABORTED"), `${name}: ${String(error)}`).toBe(true);
      }
      expect(await keysOf(storage, "signal/")).toEqual(["signal/object.txt"]);
      expect(await textOf(await storage.download("signal/object.txt"))).toBe("still here");
    });

    it("deletes objects", async () => {
      await storage.upload("delete/me.txt", Readable.from([Buffer.from("x")]));
      await storage.delete("delete/me.txt");
      expect(await storage.exists("delete/me.txt")).toBe(false);
    });
  });
}
