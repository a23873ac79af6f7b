import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as delay } from "node:timers/promises";
import { gzipSync } from "node:zlib";
import { create as createTar } from "tar";
import { beforeEach, describe, expect, it } from "vitest";
import { decompressor } from "../src/codecs.ts";
import type { Driver, DumpContext, RestoreContext, RestoreInput } from "../src/driver.ts";
import { HoardError, isHoardError } from "../src/errors.ts";
import type { HoardEvent, Logger } from "../src/logger.ts";
import { parseTimestamp } from "../src/naming.ts";
import { backup } from "../src/pipelines/backup.ts";
import { latestBackup, listBackups } from "../src/pipelines/list.ts";
import { prune } from "../src/pipelines/prune.ts";
import { restore } from "../src/pipelines/restore.ts";
import { schedule } from "../src/pipelines/schedule.ts";
import { toolOutput } from "../src/process.ts";
import type { Storage } from "../src/storage.ts";
import { freshDirectories, freshStorage, isAlive } from "./helpers.ts";

// ---------------------------------------------------------------------------------------------
// Fixtures: a fake driver whose dump is a real child process, and a fresh storage per test.

const freshDirectory = freshDirectories("pipelines");

/** The byte at offset `index` of every fake dump; the script below computes the same. */
function byteAt(index: number): number {
  return (index * 131 + (index >>> 10)) & 255;
}

function expectedDump(total: number): Buffer {
  const buffer = Buffer.alloc(total);
  for (let index = 0; index < total; index += 1) buffer[index] = byteAt(index);
  return buffer;
}

interface DumpConfig {
  /** Bytes to write before exiting 0. */
  total: number;
  /** Exit 1 with an error on stderr once this many bytes are written. */
  failAt?: number;
  /** Where the tool writes its pid. */
  pidFile?: string;
  /** Milliseconds to wait between 64 KiB chunks. */
  slowMs?: number;
}

const dumpScript = `
  const fs = require("node:fs");
  const config = JSON.parse(process.argv[1]);
  if (config.pidFile) fs.writeFileSync(config.pidFile, String(process.pid));
  let offset = 0;
  function pump() {
    while (offset < config.total) {
      if (config.failAt !== undefined && offset >= config.failAt) {
        process.stderr.write("fake-dump: error: connection to server lost\\n");
        process.exit(1);
      }
      const size = Math.min(65536, config.total - offset);
      const chunk = Buffer.allocUnsafe(size);
      for (let j = 0; j < size; j++) { const i = offset + j; chunk[j] = (i * 131 + (i >>> 10)) & 255; }
      offset += size;
      const ok = process.stdout.write(chunk);
      if (config.slowMs) return setTimeout(pump, config.slowMs);
      if (!ok) return process.stdout.once("drain", pump);
    }
  }
  pump();
`;

type Restored =
  | { kind: "stream"; content: Buffer; path: string | undefined; workDirectory: string }
  | { kind: "directory"; files: Record<string, string>; workDirectory: string }
  | { kind: "failed"; error: unknown; workDirectory: string };

interface FakeDriver extends Driver {
  restored: Restored[];
  dumpContexts: DumpContext[];
}

async function readTree(directory: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      files[relative(directory, path)] = await readFile(path, "utf8");
    }
  }
  return files;
}

/**
 * A driver for tests: `dump` runs a node script through `toolOutput` (or fills a directory), and
 * `restore` collects what it is given into a file outside the work directory.
 */
function fakeDriver(dump: DumpConfig | { directory: Record<string, string> }, restoredDirectory?: string): FakeDriver {
  const restored: Restored[] = [];
  const dumpContexts: DumpContext[] = [];
  return {
    name: "fake",
    url: "fake://user@host/db",
    extension: "sql",
    restored,
    dumpContexts,
    async dump(context) {
      dumpContexts.push(context);
      if ("directory" in dump) {
        const path = join(context.workDirectory, "dump");
        for (const [name, content] of Object.entries(dump.directory)) {
          await mkdir(join(path, name, ".."), { recursive: true });
          await writeFile(join(path, name), content);
        }
        return { kind: "directory", path };
      }
      return {
        kind: "stream",
        stream: toolOutput(process.execPath, {
          label: "fake-dump",
          args: ["-e", dumpScript, JSON.stringify(dump)],
          signal: context.signal,
        }),
      };
    },
    async restore(input: RestoreInput, context: RestoreContext) {
      try {
        if (input.kind === "directory") {
          restored.push({ kind: "directory", files: await readTree(input.path), workDirectory: context.workDirectory });
          return;
        }
        const file = join(restoredDirectory ?? context.workDirectory, `restored-${restored.length}`);
        await pipeline(input.stream, createWriteStream(file));
        restored.push({ kind: "stream", content: await readFile(file), path: input.path, workDirectory: context.workDirectory });
      } catch (error) {
        restored.push({ kind: "failed", error, workDirectory: context.workDirectory });
        throw error;
      }
    },
  };
}

function recorder(): Logger & { events: HoardEvent[] } {
  const events: HoardEvent[] = [];
  return { events, event: (event) => events.push(event) };
}

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(directory, join(entry.parentPath, entry.name)))
    .sort();
}

async function contentOf(storage: Storage, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.download(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function put(storage: Storage, key: string, content: Buffer | string): Promise<void> {
  await storage.upload(key, Readable.from([Buffer.from(content)]));
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error("expected a failure, but it succeeded"),
    (error: unknown) => error,
  );
}

async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function pidFrom(file: string): Promise<number> {
  await waitUntil(() => exists(file), "the pid file");
  return Number(await readFile(file, "utf8"));
}

/** Decompresses zstd data with hoard's own decoder (zlib's, frame by frame on Node.js 22). */
async function unzstd(compressed: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([compressed]), decompressor("zst"), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  return Buffer.concat(chunks);
}

function sameBytes(actual: Buffer, expected: Buffer): boolean {
  return actual.length === expected.length && actual.equals(expected);
}

let storageDirectory: string;
let temporaryDirectory: string;
let storage: Storage;

beforeEach(async () => {
  ({ storageDirectory, temporaryDirectory, storage } = await freshStorage(freshDirectory));
});

const now = new Date("2026-03-14T15:09:26.535Z");
const modes = ["stream", "file"] as const;

// ---------------------------------------------------------------------------------------------

describe("backup", () => {
  it.each(modes)("%s mode stores <prefix>-<yyyyMMddHHmmss>.<ext>.zst whose content is the dump", async (mode) => {
    const total = 3 * 1024 * 1024 + 7;
    const logger = recorder();
    const result = await backup({ driver: fakeDriver({ total }), storage, mode, now, temporaryDirectory, logger });
    expect(result.key).toBe("backup-20260314150926.sql.zst");
    // The manifest is stored beside the backup, once the backup is complete.
    expect(await filesUnder(storageDirectory)).toEqual(["backup-20260314150926.sql.zst", "backup-20260314150926.sql.zst.manifest.json"]);
    const stored = await contentOf(storage, result.key);
    expect(result.size).toBe(stored.length);
    expect(result.manifest.object).toEqual({ size: stored.length, sha256: createHash("sha256").update(stored).digest("hex") });
    expect(sameBytes(await unzstd(stored), expectedDump(total))).toBe(true);
    expect(await readdir(temporaryDirectory)).toEqual([]);

    const types = logger.events.map((event) => event.type);
    expect(types[0]).toBe("backup-started");
    expect(types.at(-1)).toBe("backup-finished");
    expect(logger.events[0]).toEqual({
      type: "backup-started",
      driver: "fake://user@host/db",
      storage: storage.url,
      key: result.key,
      mode,
    });
    const dumped = logger.events.flatMap((event) => (event.type === "progress" && event.phase === "dump" ? [event.bytes] : []));
    expect(dumped.at(-1)).toBe(total);
  });

  it("names the backup after the current UTC time when no time is given", async () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const result = await backup({ driver: fakeDriver({ total: 10 }), storage, temporaryDirectory });
    const after = Date.now();
    const stamp = /^backup-(\d{14})\.sql\.zst$/.exec(result.key)?.[1];
    const time = stamp === undefined ? undefined : parseTimestamp(stamp)?.getTime();
    expect(time, result.key).toBeDefined();
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(after);
  });

  it("puts a prefix with a slash in a sub-folder, and stores an empty dump", async () => {
    const result = await backup({ driver: fakeDriver({ total: 0 }), storage, prefix: "nightly/app", now, temporaryDirectory });
    expect(result.key).toBe("nightly/app-20260314150926.sql.zst");
    expect(await filesUnder(storageDirectory)).toEqual([
      join("nightly", "app-20260314150926.sql.zst"),
      join("nightly", "app-20260314150926.sql.zst.manifest.json"),
    ]);
    expect((await unzstd(await contentOf(storage, result.key))).length).toBe(0);
  });

  it.each(modes)("%s mode archives a directory dump as .tar.zst", async (mode) => {
    const files = { "toc.dat": "table of contents", "3001.dat": "rows", "nested/inner.bson": "{}" };
    const result = await backup({ driver: fakeDriver({ directory: files }), storage, mode, now, temporaryDirectory });
    expect(result.key).toBe("backup-20260314150926.sql.tar.zst");
    expect(await readdir(temporaryDirectory)).toEqual([]);
    const driver = fakeDriver({ total: 0 });
    await restore({ driver, storage, key: result.key, temporaryDirectory });
    expect(driver.restored).toEqual([{ kind: "directory", files, workDirectory: expect.any(String) }]);
  });

  it.each(modes)("%s mode: a dump that fails midway leaves no object and no temporary file", async (mode) => {
    const error = await caught(
      backup({ driver: fakeDriver({ total: 8 * 1024 * 1024, failAt: 1536 * 1024 }), storage, mode, now, temporaryDirectory }),
    );
    expect(isHoardError(error, "TOOL_FAILED"), String(error)).toBe(true);
    expect((error as Error).message).toContain("connection to server lost");
    expect(await filesUnder(storageDirectory)).toEqual([]);
    expect(await readdir(temporaryDirectory)).toEqual([]);
    expect(await listBackups(storage)).toEqual([]);
  });

  it.each(modes)("%s mode: aborting mid-dump gives ABORTED, stops the tool and stores nothing", async (mode) => {
    const pidFile = join(temporaryDirectory, "..", `${relative(tmpdir(), temporaryDirectory)}-abort.pid`);
    freshDirectory.removeAfterwards(pidFile);
    const controller = new AbortController();
    const logger: Logger = {
      event(event) {
        if (event.type === "progress" && event.phase === "dump") controller.abort();
      },
    };
    const running = backup({
      driver: fakeDriver({ total: 1e12, slowMs: 5, pidFile }),
      storage,
      mode,
      now,
      temporaryDirectory,
      logger,
      signal: controller.signal,
    });
    const error = await caught(running);
    expect(isHoardError(error, "ABORTED"), String(error)).toBe(true);
    expect(controller.signal.aborted).toBe(true);
    const pid = await pidFrom(pidFile);
    await waitUntil(() => !isAlive(pid), `the dump process ${pid} to stop`);
    expect(await filesUnder(storageDirectory)).toEqual([]);
    expect(await readdir(temporaryDirectory)).toEqual([]);
  });

  it("refuses to start with an already aborted signal", async () => {
    const driver = fakeDriver({ total: 10 });
    const error = await caught(backup({ driver, storage, now, temporaryDirectory, signal: AbortSignal.abort() }));
    expect(isHoardError(error, "ABORTED")).toBe(true);
    expect(driver.dumpContexts).toEqual([]);
    expect(await filesUnder(storageDirectory)).toEqual([]);
  });

  it.each(modes)("%s mode: an existing key gives ALREADY_EXISTS, leaves the old object alone and stops the dump", async (mode) => {
    await put(storage, "backup-20260314150926.sql.zst", "the old backup");
    const pidFile = join(storageDirectory, "..", `${relative(tmpdir(), storageDirectory)}-exists.pid`);
    freshDirectory.removeAfterwards(pidFile);
    const error = await caught(backup({ driver: fakeDriver({ total: 1e12, slowMs: 5, pidFile }), storage, mode, now, temporaryDirectory }));
    expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
    expect((await contentOf(storage, "backup-20260314150926.sql.zst")).toString()).toBe("the old backup");
    expect(await filesUnder(storageDirectory)).toEqual(["backup-20260314150926.sql.zst"]);
    expect(await readdir(temporaryDirectory)).toEqual([]);
    // The dump was started (its extension decides the name) and must have been stopped: it either
    // died before writing its pid, or the pid it wrote is gone. A live dump writes its pid within ms.
    await delay(1000);
    if (await exists(pidFile)) {
      const pid = await pidFrom(pidFile);
      await waitUntil(() => !isAlive(pid), `the dump process ${pid} to stop`);
    } else {
      expect(await exists(pidFile)).toBe(false);
    }
  });

  it("a failing upload stops the dump and is reported", async () => {
    const pidFile = join(storageDirectory, "..", `${relative(tmpdir(), storageDirectory)}-upload.pid`);
    freshDirectory.removeAfterwards(pidFile);
    const failingStorage: Storage = {
      ...storage,
      async upload(_key, body) {
        for await (const _chunk of body) throw new Error("bucket went away");
        throw new Error("unreachable");
      },
    };
    const error = await caught(
      backup({ driver: fakeDriver({ total: 1e12, slowMs: 5, pidFile }), storage: failingStorage, now, temporaryDirectory }),
    );
    expect((error as Error).message).toContain("bucket went away");
    expect(isHoardError(error)).toBe(true);
    const pid = await pidFrom(pidFile);
    await waitUntil(() => !isAlive(pid), `the dump process ${pid} to stop`);
    expect(await readdir(temporaryDirectory)).toEqual([]);
  });

  it("goes ahead when the store forbids the existence check (ACCESS_DENIED), and fails on other errors", async () => {
    const forbidding: Storage = {
      ...storage,
      async exists() {
        throw new HoardError("ACCESS_DENIED", "403 on HEAD");
      },
    };
    const result = await backup({ driver: fakeDriver({ total: 1000 }), storage: forbidding, now, temporaryDirectory });
    expect(await filesUnder(storageDirectory)).toEqual([result.key, result.manifestKey]);

    const unreachable: Storage = {
      ...storage,
      async exists() {
        throw new HoardError("UNREACHABLE", "no route to the bucket");
      },
    };
    const error = await caught(backup({ driver: fakeDriver({ total: 1000 }), storage: unreachable, now: new Date(), temporaryDirectory }));
    expect(isHoardError(error, "UNREACHABLE")).toBe(true);
    expect(await filesUnder(storageDirectory)).toEqual([result.key, result.manifestKey]);
    expect(await readdir(temporaryDirectory)).toEqual([]);
  });

  it("refuses an unknown mode", async () => {
    const error = await caught(backup({ driver: fakeDriver({ total: 1 }), storage, mode: "fast" as "stream", temporaryDirectory }));
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------

describe("restore", () => {
  const content = expectedDump(700_000);
  let restoredDirectory: string;

  beforeEach(async () => {
    restoredDirectory = await freshDirectory("restored");
  });

  async function bzip2(data: Buffer): Promise<Buffer> {
    const result = spawnSync("bzip2", ["-c"], { input: data, maxBuffer: 64 * 1024 * 1024 });
    if (result.status !== 0) throw new Error(`bzip2 failed: ${result.stderr}`);
    return result.stdout;
  }

  function zstd(data: Buffer): Buffer {
    const result = spawnSync("zstd", ["-c", "-q"], { input: data, maxBuffer: 64 * 1024 * 1024 });
    if (result.status !== 0) throw new Error(`zstd failed (is it installed?): ${result.stderr ?? result.error}`);
    return result.stdout;
  }

  async function tarGz(files: Record<string, string>, entries: string[] = ["."]): Promise<Buffer> {
    const source = await freshDirectory("tar-source");
    for (const [name, text] of Object.entries(files)) {
      await mkdir(join(source, name, ".."), { recursive: true });
      await writeFile(join(source, name), text);
    }
    const archive = join(await freshDirectory("tar-archive"), "archive.tar.gz");
    await createTar({ gzip: true, file: archive, cwd: source, portable: true }, entries);
    return readFile(archive);
  }

  async function expectCleanedUp(driver: FakeDriver): Promise<void> {
    expect(await readdir(temporaryDirectory)).toEqual([]);
    for (const record of driver.restored) await expect(stat(record.workDirectory)).rejects.toThrow();
  }

  function onlyStream(driver: FakeDriver): Extract<Restored, { kind: "stream" }> {
    expect(driver.restored).toHaveLength(1);
    const [record] = driver.restored;
    if (record?.kind !== "stream") throw new Error(`expected a stream restore, got ${JSON.stringify(record)}`);
    return record;
  }

  it.each(modes)("%s mode: gunzips a .gz backup and hands the driver a stream", async (mode) => {
    await put(storage, "backup-20260101000000.sql.gz", gzipSync(content));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    const logger = recorder();
    const result = await restore({ driver, storage, key: "backup-20260101000000.sql.gz", mode, temporaryDirectory, logger });
    expect(result.key).toBe("backup-20260101000000.sql.gz");
    expect(sameBytes(onlyStream(driver).content, content)).toBe(true);
    expect(logger.events[0]).toEqual({ type: "restore-started", storage: storage.url, key: result.key, driver: "fake://user@host/db" });
    expect(logger.events.at(-1)?.type).toBe("restore-finished");
    await expectCleanedUp(driver);
  });

  it.each(modes)("%s mode: decompresses a .bz2 backup", async (mode) => {
    // unbzip2-stream is pure JavaScript and slow (about 1-3 MB/s), so a smaller file.
    const small = content.subarray(0, 150_000);
    await put(storage, "backup-20260101000000.sql.bz2", await bzip2(small));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    await restore({ driver, storage, key: "backup-20260101000000.sql.bz2", mode, temporaryDirectory });
    expect(sameBytes(onlyStream(driver).content, small)).toBe(true);
    await expectCleanedUp(driver);
  });

  it.each(modes)("%s mode: a truncated .bz2 fails with CORRUPT_ARCHIVE", async (mode) => {
    const whole = await bzip2(content.subarray(0, 150_000));
    await put(storage, "backup-20260101000000.sql.bz2", whole.subarray(0, whole.length - 4));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    const error = await caught(restore({ driver, storage, key: "backup-20260101000000.sql.bz2", mode, temporaryDirectory }));
    expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
    expect(driver.restored.map((record) => record.kind)).toEqual(["failed"]);
    await expectCleanedUp(driver);
  });

  it.each(modes)("%s mode: decompresses a .zst backup", async (mode) => {
    await put(storage, "backup-20260101000000.archive.zst", zstd(content));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    await restore({ driver, storage, key: "backup-20260101000000.archive.zst", mode, temporaryDirectory });
    expect(sameBytes(onlyStream(driver).content, content)).toBe(true);
    await expectCleanedUp(driver);
  });

  it.each(modes)("%s mode: a truncated .zst fails with CORRUPT_ARCHIVE instead of restoring part of the data", async (mode) => {
    const whole = zstd(content);
    await put(storage, "backup-20260101000000.archive.zst", whole.subarray(0, whole.length - 5));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    const error = await caught(restore({ driver, storage, key: "backup-20260101000000.archive.zst", mode, temporaryDirectory }));
    expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
    expect(driver.restored.map((record) => record.kind)).toEqual(["failed"]);
    await expectCleanedUp(driver);
  });

  it.each(modes)("%s mode: hands a plain (uncompressed) backup over as it is", async (mode) => {
    await put(storage, "backup-20260101000000.sql", content);
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    await restore({ driver, storage, key: "backup-20260101000000.sql", mode, temporaryDirectory });
    expect(sameBytes(onlyStream(driver).content, content)).toBe(true);
    await expectCleanedUp(driver);
  });

  it.each(modes)("%s mode: unpacks a .tar.gz of several files into a directory for the driver", async (mode) => {
    const files = { "toc.dat": "toc", "3001.dat.gz": "data", "sub/dir/inner.bson": "bson" };
    await put(storage, "mongo-20260101000000.archive.tar.gz", await tarGz(files));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    await restore({ driver, storage, key: "mongo-20260101000000.archive.tar.gz", mode, temporaryDirectory });
    expect(driver.restored).toEqual([{ kind: "directory", files, workDirectory: expect.any(String) }]);
    await expectCleanedUp(driver);
  });

  it.each(modes)("%s mode: hands the single file of a one-file tar over as a stream with its path", async (mode) => {
    await put(storage, "backup-20260101000000.sql.tar.gz", await tarGz({ "dump.sql": "SELECT 1;\n" }));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    await restore({ driver, storage, key: "backup-20260101000000.sql.tar.gz", mode, temporaryDirectory });
    const record = onlyStream(driver);
    expect(record.content.toString()).toBe("SELECT 1;\n");
    expect(record.path).toMatch(/dump\.sql$/);
    expect(record.path?.startsWith(record.workDirectory)).toBe(true);
    await expectCleanedUp(driver);
  });

  it.each(modes)(
    "%s mode: a corrupt .gz fails with CORRUPT_ARCHIVE, the driver's restore fails, and the work directory goes",
    async (mode) => {
      const damaged = Buffer.from(gzipSync(content));
      for (let index = 100; index < 400; index += 1) damaged[index] = 0x55;
      await put(storage, "backup-20260101000000.sql.gz", damaged);
      const driver = fakeDriver({ total: 0 }, restoredDirectory);
      const error = await caught(restore({ driver, storage, key: "backup-20260101000000.sql.gz", mode, temporaryDirectory }));
      expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
      expect((error as Error).message).toContain("backup-20260101000000.sql.gz");
      expect(driver.restored.map((record) => record.kind)).toEqual(["failed"]);
      await expectCleanedUp(driver);
    },
  );

  it.each(modes)("%s mode: a truncated .gz fails with CORRUPT_ARCHIVE", async (mode) => {
    const whole = gzipSync(content);
    await put(storage, "backup-20260101000000.sql.gz", whole.subarray(0, Math.floor(whole.length * 0.6)));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    const error = await caught(restore({ driver, storage, key: "backup-20260101000000.sql.gz", mode, temporaryDirectory }));
    expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
    expect(driver.restored.map((record) => record.kind)).toEqual(["failed"]);
    await expectCleanedUp(driver);
  });

  it.each(modes)("%s mode: a truncated .tar.gz fails with CORRUPT_ARCHIVE before the driver is called", async (mode) => {
    const whole = await tarGz({ "a.dat": "a".repeat(200_000), "b.dat": "b".repeat(200_000) });
    await put(storage, "backup-20260101000000.sql.tar.gz", whole.subarray(0, whole.length >> 1));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    const error = await caught(restore({ driver, storage, key: "backup-20260101000000.sql.tar.gz", mode, temporaryDirectory }));
    expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
    expect(driver.restored).toEqual([]);
    expect(await readdir(temporaryDirectory)).toEqual([]);
  });

  it("a download that breaks midway fails the restore in stream mode (instead of leaving it waiting)", async () => {
    await put(storage, "backup-20260101000000.sql", content);
    const breakingStorage: Storage = {
      ...storage,
      async download() {
        let sent = 0;
        const stream = new Readable({
          read() {
            if (sent >= 3) {
              this.destroy(new Error("connection reset by peer"));
              return;
            }
            sent += 1;
            setTimeout(() => this.push(Buffer.alloc(16_384, 120)), 5);
          },
        });
        // Without this listener the unhandled 'error' event would crash the test runner itself:
        // restore pipes the download with .pipe(), which neither handles nor forwards its errors.
        stream.on("error", () => {});
        return stream;
      },
    };
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    const outcome = await Promise.race([
      caught(restore({ driver, storage: breakingStorage, key: "backup-20260101000000.sql", mode: "stream", temporaryDirectory })),
      delay(3000).then(() => "still waiting after 3 s"),
    ]);
    expect(outcome).toBeInstanceOf(Error);
    expect(String(outcome)).toContain("connection reset by peer");
  });

  it.each(modes)("%s mode: aborting during the download gives ABORTED and leaves no temporary file", async (mode) => {
    await put(storage, "backup-20260101000000.sql", content);
    const controller = new AbortController();
    const slowStorage: Storage = {
      ...storage,
      async download(_key, options) {
        // Like an object store's body: slow, and destroyed with an AbortError when the signal fires.
        const stream = new Readable({
          read() {
            setTimeout(() => this.push(Buffer.alloc(8192, 121)), 10);
          },
        });
        options?.signal?.addEventListener("abort", () => stream.destroy(new DOMException("This operation was aborted", "AbortError")));
        stream.on("error", () => {}); // see the "download that breaks midway" test
        return stream;
      },
    };
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    setTimeout(() => controller.abort(), 200);
    const outcome = await Promise.race([
      caught(
        restore({ driver, storage: slowStorage, key: "backup-20260101000000.sql", mode, temporaryDirectory, signal: controller.signal }),
      ),
      delay(3000).then(() => "still waiting 3 s after the abort"),
    ]);
    expect(isHoardError(outcome, "ABORTED"), String(outcome)).toBe(true);
    expect(await readdir(temporaryDirectory)).toEqual([]);
  });

  it("refuses to start with an already aborted signal, without touching the driver", async () => {
    await put(storage, "backup-20260101000000.sql", content);
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    const error = await caught(
      restore({ driver, storage, key: "backup-20260101000000.sql", signal: AbortSignal.abort(), temporaryDirectory }),
    );
    expect(isHoardError(error, "ABORTED")).toBe(true);
    expect(driver.restored).toEqual([]);
  });

  it.each(["backup-20260101000000.sql", "backup-20260101000000.sql.gz"])(
    "closes the download of %s when the driver stops reading early",
    async (key) => {
      await put(storage, key, key.endsWith(".gz") ? gzipSync(content) : content);
      const downloads: Readable[] = [];
      const tracking: Storage = {
        ...storage,
        async download(downloadKey, options) {
          const stream = await storage.download(downloadKey, options);
          downloads.push(stream);
          return stream;
        },
      };
      const driver: Driver = {
        ...fakeDriver({ total: 0 }),
        async restore(input) {
          if (input.kind !== "stream") throw new Error("expected a stream");
          await new Promise<void>((resolve) => input.stream.once("data", () => resolve()));
          input.stream.destroy(); // like a tool that exits 0 before reading everything
        },
      };
      await restore({ driver, storage: tracking, key, temporaryDirectory });
      expect(downloads).toHaveLength(1);
      await waitUntil(() => downloads[0]?.destroyed === true, "the download to be closed", 3000);
      expect(await readdir(temporaryDirectory)).toEqual([]);
    },
  );

  it("fails with NOT_FOUND for a missing key, and INVALID_ARGUMENT without key or latest", async () => {
    const driver = fakeDriver({ total: 0 });
    expect(isHoardError(await caught(restore({ driver, storage, key: "backup-20990101000000.sql.gz" })), "NOT_FOUND")).toBe(true);
    expect(isHoardError(await caught(restore({ driver, storage })), "INVALID_ARGUMENT")).toBe(true);
    expect(isHoardError(await caught(restore({ driver, storage, latest: { prefix: "backup" } })), "NOT_FOUND")).toBe(true);
    expect(driver.restored).toEqual([]);
  });

  it("latest picks the newest backup of the prefix and ignores other prefixes", async () => {
    await put(storage, "backup-20260101000000.sql.gz", gzipSync("january"));
    await put(storage, "backup-20260301000000.sql.gz", gzipSync("march"));
    await put(storage, "backup-20260201000000.sql.gz", gzipSync("february"));
    await put(storage, "backup-old-20270101000000.sql.gz", gzipSync("other prefix, newer"));
    await put(storage, "backups-20280101000000.sql.gz", gzipSync("other prefix, newest"));
    await put(storage, "backup-latest.sql.gz", gzipSync("not a backup name"));
    const driver = fakeDriver({ total: 0 }, restoredDirectory);
    const result = await restore({ driver, storage, latest: { prefix: "backup" }, temporaryDirectory });
    expect(result.key).toBe("backup-20260301000000.sql.gz");
    expect(onlyStream(driver).content.toString()).toBe("march");
  });
});

// ---------------------------------------------------------------------------------------------

describe("listBackups and latestBackup", () => {
  beforeEach(async () => {
    for (const key of [
      "backup-20260102000000.sql.gz",
      "backup-20260101000000.sql.gz",
      "backup-20260103000000.dump.gz",
      "backup-old-20260104000000.sql.gz",
      "db/backup-20260105000000.sql.gz",
      "notes.txt",
      "backup-latest.sql.gz",
      "backup-20260231000000.sql.gz",
      "backup-20260101000000",
      "backup-2026010100000.sql.gz",
    ]) {
      await put(storage, key, key);
    }
  });

  it("lists the backups of a prefix newest first, with sizes and times, ignoring everything else", async () => {
    const listed = await listBackups(storage, { prefix: "backup" });
    expect(listed.map((entry) => entry.key)).toEqual([
      "backup-20260103000000.dump.gz",
      "backup-20260102000000.sql.gz",
      "backup-20260101000000.sql.gz",
    ]);
    expect(listed[0]).toEqual({
      key: "backup-20260103000000.dump.gz",
      prefix: "backup",
      time: new Date("2026-01-03T00:00:00Z"),
      extension: "dump.gz",
      size: "backup-20260103000000.dump.gz".length,
    });
  });

  it("lists every backup-shaped name without a prefix", async () => {
    const listed = await listBackups(storage);
    expect(listed.map((entry) => entry.key)).toEqual([
      "db/backup-20260105000000.sql.gz",
      "backup-old-20260104000000.sql.gz",
      "backup-20260103000000.dump.gz",
      "backup-20260102000000.sql.gz",
      "backup-20260101000000.sql.gz",
    ]);
  });

  it("lists a prefix inside a folder", async () => {
    expect((await listBackups(storage, { prefix: "db/backup" })).map((entry) => entry.key)).toEqual(["db/backup-20260105000000.sql.gz"]);
  });

  it("latestBackup returns the newest of a prefix, or undefined", async () => {
    expect((await latestBackup(storage, "backup"))?.key).toBe("backup-20260103000000.dump.gz");
    expect((await latestBackup(storage, "backup-old"))?.key).toBe("backup-old-20260104000000.sql.gz");
    expect(await latestBackup(storage, "nothing")).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------

describe("prune", () => {
  const ours = Array.from({ length: 10 }, (_, index) => `backup-202601${String(index + 1).padStart(2, "0")}120000.sql.gz`);
  const others = [
    "backup-old-20250101000000.sql.gz",
    "backups-20250101000000.sql.gz",
    "other/backup-20250101000000.sql.gz",
    "notes.txt",
    "backup-latest.sql.gz",
  ];

  beforeEach(async () => {
    for (const key of [...ours, ...others]) await put(storage, key, key);
  });

  async function keys(): Promise<string[]> {
    const found: string[] = [];
    for await (const object of storage.list()) found.push(object.key);
    return found.sort();
  }

  it("with dry-run plans but deletes nothing", async () => {
    const logger = recorder();
    const result = await prune({ storage, policy: { keepLast: 3 }, dryRun: true, logger, now });
    expect(result.dryRun).toBe(true);
    expect(result.keep.map((item) => item.backup.key)).toEqual(ours.slice(7).reverse());
    expect(result.remove.map((item) => item.backup.key)).toEqual(ours.slice(0, 7).reverse());
    expect(await keys()).toEqual([...ours, ...others].sort());
    expect(logger.events.filter((event) => event.type === "deleted")).toEqual([]);
  });

  it("deletes exactly the planned backups and never touches other prefixes or other files", async () => {
    const logger = recorder();
    const result = await prune({ storage, policy: { keepLast: 2, keepWeekly: 2 }, logger, now });
    expect(result.dryRun).toBe(false);
    const removed = result.remove.map((item) => item.backup.key);
    // 2026-01-10 (Sat) and 01-09 by keep-last; weekly: 2026-W02 newest is 01-10, 2026-W01 newest is 01-04 (Sun).
    expect(result.keep.map((item) => item.backup.key)).toEqual([ours[9], ours[8], ours[3]]);
    expect(removed.sort()).toEqual(ours.filter((key) => ![ours[9], ours[8], ours[3]].includes(key)).sort());
    expect(await keys()).toEqual([ours[3], ours[8], ours[9], ...others].sort());
    expect(logger.events.flatMap((event) => (event.type === "deleted" ? [event.key] : [])).sort()).toEqual(removed.sort());
  });

  it("with only older-than keeps the window before the newest backup of the prefix, whatever the date", async () => {
    // Measured from the newest backup (2026-01-10 12:00), not from now: a month of silence deletes nothing more.
    for (const present of [new Date("2026-01-10T12:00:00Z"), new Date("2026-02-10T12:00:00Z")]) {
      const result = await prune({ storage, policy: { olderThanMs: 3 * 86_400_000 }, now: present });
      expect(result.keep.map((item) => item.backup.key)).toEqual([ours[9], ours[8], ours[7]]);
      expect(await keys()).toEqual([ours[7], ours[8], ours[9], ...others].sort());
    }
  });

  it("considers only the given prefix", async () => {
    const result = await prune({ storage, prefix: "backup-old", policy: { allowDeleteAll: true }, now });
    expect(result.remove.map((item) => item.backup.key)).toEqual(["backup-old-20250101000000.sql.gz"]);
    expect(await keys()).toEqual([...ours, ...others.filter((key) => key !== "backup-old-20250101000000.sql.gz")].sort());
  });

  it("refuses an empty policy or a bad prefix and deletes nothing", async () => {
    expect(isHoardError(await caught(prune({ storage, policy: {}, now })), "INVALID_ARGUMENT")).toBe(true);
    expect(isHoardError(await caught(prune({ storage, policy: { keepLast: 1 }, prefix: "/backup", now })), "INVALID_ARGUMENT")).toBe(true);
    expect(await keys()).toEqual([...ours, ...others].sort());
  });

  it("stops with STORAGE_FAILED naming the key when a delete fails", async () => {
    const failing: Storage = {
      ...storage,
      async delete(key) {
        throw new Error(`permission denied on ${key}`);
      },
    };
    const error = await caught(prune({ storage: failing, policy: { keepLast: 9 }, now }));
    expect(isHoardError(error, "STORAGE_FAILED")).toBe(true);
    expect((error as Error).message).toContain(ours[0]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("schedule", () => {
  const everySecond = "* * * * * *";

  it("runs on a 6-field every-second expression, and stops", async () => {
    const results: number[] = [];
    let runs = 0;
    const task = schedule({
      expression: everySecond,
      run: async () => {
        runs += 1;
        return runs;
      },
      onResult: (result) => results.push(result),
    });
    await waitUntil(() => runs >= 2, "two runs", 5000);
    await task.stop();
    await task.stopped;
    const runsAtStop = runs;
    await delay(1500);
    expect(runs).toBe(runsAtStop);
    expect(results.slice(0, 2)).toEqual([1, 2]);
  });

  it("never overlaps runs: ticks during a 2.5 s run are skipped and reported", async () => {
    const logger = recorder();
    let active = 0;
    let maxActive = 0;
    let started = 0;
    let finished = 0;
    const task = schedule({
      expression: everySecond,
      logger,
      run: async () => {
        started += 1;
        active += 1;
        maxActive = Math.max(maxActive, active);
        await delay(2500);
        active -= 1;
        finished += 1;
      },
    });
    await waitUntil(() => started >= 2, "a second run", 9000);
    await task.stop();
    expect(maxActive).toBe(1);
    expect(active).toBe(0);
    expect(finished).toBe(started);
    const skipped = logger.events.filter((event) => event.type === "schedule-skipped");
    expect(skipped.length).toBeGreaterThanOrEqual(1);
    expect(skipped[0]).toEqual({ type: "schedule-skipped", reason: "the previous run is still going (started less than a minute ago)" });
  });

  it("stop() waits for a running run to finish", async () => {
    let started = false;
    let finished = false;
    let signal: AbortSignal | undefined;
    const task = schedule({
      expression: everySecond,
      run: async (runSignal) => {
        started = true;
        signal = runSignal;
        await delay(1500);
        finished = true;
      },
    });
    await waitUntil(() => started, "the run to start", 5000);
    expect(finished).toBe(false);
    await task.stop();
    expect(finished).toBe(true);
    expect(signal?.aborted).toBe(false);
  });

  it("stop({ abort: true }) aborts the running run's signal and waits for it to stop", async () => {
    let signal: AbortSignal | undefined;
    const errors: unknown[] = [];
    const task = schedule({
      expression: everySecond,
      run: (runSignal) => {
        signal = runSignal;
        return new Promise<void>((_resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("not aborted in time")), 10_000);
          runSignal.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(new Error("aborted by stop"));
          });
        });
      },
      onError: (error) => errors.push(error),
    });
    await waitUntil(() => signal !== undefined, "the run to start", 5000);
    const started = Date.now();
    await task.stop({ abort: true });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(signal?.aborted).toBe(true);
    expect(errors.map((error) => (error as Error).message)).toEqual(["aborted by stop"]);
  });

  it("reports a failed run to onError, or as a warning without one, and keeps going", async () => {
    const logger = recorder();
    let runs = 0;
    const task = schedule({
      expression: everySecond,
      logger,
      run: async () => {
        runs += 1;
        throw new Error(`run ${runs} failed`);
      },
    });
    await waitUntil(() => runs >= 2, "two failing runs", 5000);
    await task.stop();
    const warnings = logger.events.filter((event) => event.type === "log" && event.level === "warn");
    expect(warnings[0]).toEqual({ type: "log", level: "warn", message: "scheduled run failed: run 1 failed" });
  });

  it("can be stopped before any run, and twice", async () => {
    let runs = 0;
    const task = schedule({
      expression: "0 0 1 1 *",
      run: async () => {
        runs += 1;
      },
    });
    await task.stop({ abort: true });
    await task.stop();
    await task.stopped;
    expect(runs).toBe(0);
  });

  it("refuses an invalid expression with INVALID_ARGUMENT", () => {
    let error: unknown;
    try {
      schedule({ expression: "every day at noon", run: async () => undefined });
    } catch (caughtError) {
      error = caughtError;
    }
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
  });
});
