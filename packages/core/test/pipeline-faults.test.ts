import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { gzipSync } from "node:zlib";
import { beforeEach, describe, expect, it } from "vitest";
import type { Driver } from "../src/driver.ts";
import { HoardError, isHoardError } from "../src/errors.ts";
import { backup } from "../src/pipelines/backup.ts";
import { restore } from "../src/pipelines/restore.ts";
import { toolOutput } from "../src/process.ts";
import type { Storage } from "../src/storage.ts";
import { freshDirectories, freshStorage } from "./helpers.ts";

// Faults from production: a connection cut during a restore's download, a full disk for the
// temporary files, an abort during a driver's restore. Real local storage, real files, a real
// tmpfs for the full disk; only the network cut is injected into the download stream.

const freshDirectory = freshDirectories("faults", { beforeRemoval: () => unmountAll() });

const mounted: string[] = [];
/** A tmpfs of `size` (e.g. "256k"): a real disk that fills up. Needs root, as CI and developers are here. */
async function smallDisk(size: string): Promise<string> {
  const directory = await freshDirectory("tmpfs");
  const result = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", directory], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`mounting a tmpfs failed (tests run as root here): ${result.stderr}`);
  mounted.push(directory);
  return directory;
}

function unmountAll(): void {
  for (const directory of mounted) spawnSync("umount", [directory]);
}

/** Incompressible bytes, so that gzip output is as large as its input. */
function noise(size: number): Buffer {
  return randomBytes(size);
}

/** A driver that dumps `size` bytes of noise through a real child process and collects restores. */
function noiseDriver(size: number, onRestore?: (input: Readable) => Promise<void>): Driver & { dumps: number } {
  const driver = {
    name: "fake",
    url: "fake://db",
    extension: "sql",
    dumps: 0,
    async dump(context: { signal?: AbortSignal }) {
      driver.dumps += 1;
      const script = `process.stdout.write(require("node:crypto").randomBytes(${size}))`;
      return {
        kind: "stream" as const,
        stream: toolOutput(process.execPath, { label: "fake-dump", args: ["-e", script], signal: context.signal }),
      };
    },
    async restore(input: { kind: string; stream?: Readable }) {
      if (input.kind !== "stream" || !input.stream) throw new Error("expected a stream");
      if (onRestore) return onRestore(input.stream);
      await pipeline(input.stream, createWriteStream("/dev/null"));
    },
  };
  return driver;
}

/** The local storage, with downloads that are cut after `afterBytes` like a lost TCP connection. */
function cuttingStorage(storage: Storage, afterBytes: number): Storage {
  return {
    ...storage,
    async download(key, options) {
      const source = await storage.download(key, options);
      let sent = 0;
      const cut = new Readable({
        read() {},
        destroy(error, callback) {
          source.destroy();
          callback(error);
        },
      });
      source.on("data", (chunk: Buffer) => {
        if (sent + chunk.length >= afterBytes) {
          cut.push(chunk.subarray(0, afterBytes - sent));
          source.destroy();
          const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
          setImmediate(() => cut.destroy(reset));
          return;
        }
        sent += chunk.length;
        cut.push(chunk);
      });
      source.on("end", () => cut.push(null));
      return cut;
    },
  };
}

let storageDirectory: string;
let temporaryDirectory: string;
let storage: Storage;

beforeEach(async () => {
  ({ storageDirectory, temporaryDirectory, storage } = await freshStorage(freshDirectory));
});

describe("restore blames the right thing", () => {
  it.each(["stream", "file"] as const)(
    "%s mode: a connection cut mid-download is UNREACHABLE naming the store, not a damaged archive",
    async (mode) => {
      const key = "backup-20260101000000.sql.gz";
      await storage.upload(key, Readable.from([gzipSync(noise(2 * 1024 * 1024))]));
      const error = await restore({
        driver: noiseDriver(0),
        storage: cuttingStorage(storage, 300_000),
        key,
        mode,
        temporaryDirectory,
      }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(isHoardError(error, "UNREACHABLE"), String(error instanceof Error ? error.stack : error)).toBe(true);
      expect((error as Error).message).toContain(storage.url);
      expect((error as Error).message).toContain("ECONNRESET");
      expect((error as Error).message).not.toContain("damaged");
      expect(await readdir(temporaryDirectory)).toEqual([]);
    },
  );

  it("a truncated archive is still CORRUPT_ARCHIVE", async () => {
    const key = "backup-20260101000000.sql.gz";
    const whole = gzipSync(noise(200_000));
    await storage.upload(key, Readable.from([whole.subarray(0, whole.length - 100)]));
    const error = await restore({ driver: noiseDriver(0), storage, key, temporaryDirectory }).catch((caught: unknown) => caught);
    expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
  });

  it("file mode: a full temporary disk is DISK_FULL naming the directory, and the backup is not blamed", async () => {
    const key = "backup-20260101000000.sql.gz";
    await storage.upload(key, Readable.from([gzipSync(noise(1024 * 1024))]));
    const disk = await smallDisk("256k");
    const error = await restore({ driver: noiseDriver(0), storage, key, mode: "file", temporaryDirectory: disk }).catch(
      (caught: unknown) => caught,
    );
    expect(isHoardError(error, "DISK_FULL"), String(error instanceof Error ? error.stack : JSON.stringify(error))).toBe(true);
    expect((error as Error).message).toContain(disk);
    expect((error as Error).message).not.toContain("damaged");
    expect(await readdir(disk)).toEqual([]);
  });

  it("a .tar.gz that fills the disk while unpacking is DISK_FULL, not CORRUPT_ARCHIVE", async () => {
    const source = await freshDirectory("tar-source");
    await mkdir(join(source, "data"));
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(source, "data", "big.bin"), noise(600_000));
    await writeFile(join(source, "data", "other.bin"), noise(10));
    const { create } = await import("tar");
    const archive = join(await freshDirectory("archive"), "a.tar.gz");
    await create({ gzip: true, file: archive, cwd: source, portable: true }, ["data"]);
    const { createReadStream } = await import("node:fs");
    const key = "backup-20260101000000.dump.tar.gz";
    await storage.upload(key, createReadStream(archive));
    const disk = await smallDisk("256k");
    const error = await restore({ driver: noiseDriver(0), storage, key, temporaryDirectory: disk }).catch((caught: unknown) => caught);
    expect(isHoardError(error, "DISK_FULL"), String(error instanceof Error ? error.stack : JSON.stringify(error))).toBe(true);
    expect(await readdir(disk)).toEqual([]);
  });

  it("an abort during the driver's restore keeps the driver's word on the database's state", async () => {
    const key = "backup-20260101000000.sql.gz";
    await storage.upload(key, Readable.from([gzipSync(noise(100_000))]));
    const controller = new AbortController();
    const driver = noiseDriver(0, async (input) => {
      input.resume();
      controller.abort();
      throw new HoardError("ABORTED", "fake: restore into db aborted; the database may be partially restored");
    });
    const error = await restore({ driver, storage, key, temporaryDirectory, signal: controller.signal }).catch((caught: unknown) => caught);
    expect(isHoardError(error, "ABORTED"), String(error)).toBe(true);
    expect((error as Error).message).toContain("may be partially restored");
  });
});

describe("backup", () => {
  it("file mode: a full temporary disk is DISK_FULL naming the directory, and nothing is stored", async () => {
    const disk = await smallDisk("256k");
    const error = await backup({ driver: noiseDriver(1024 * 1024), storage, mode: "file", temporaryDirectory: disk }).catch(
      (caught: unknown) => caught,
    );
    expect(isHoardError(error, "DISK_FULL"), String(error instanceof Error ? error.stack : JSON.stringify(error))).toBe(true);
    expect((error as Error).message).toContain(disk);
    expect(await readdir(storageDirectory)).toEqual([]);
    expect(await readdir(disk)).toEqual([]);
  });

  it.each([42, -1, 1.5, Number.NaN])("refuses compression level %s before dumping anything", async (level) => {
    const driver = noiseDriver(10);
    const error = await backup({ driver, storage, compressionLevel: level, temporaryDirectory }).catch((caught: unknown) => caught);
    expect(isHoardError(error, "INVALID_ARGUMENT"), String(error)).toBe(true);
    expect(driver.dumps).toBe(0);
  });

  it.each(["a/../../b", "nightly#1", "x?y"])("refuses prefix %s before dumping anything", async (prefix) => {
    const driver = noiseDriver(10);
    const error = await backup({ driver, storage, prefix, temporaryDirectory }).catch((caught: unknown) => caught);
    expect(isHoardError(error, "INVALID_ARGUMENT"), String(error)).toBe(true);
    expect(driver.dumps).toBe(0);
  });
});
