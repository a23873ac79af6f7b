// Backups compressed with gzip, zstd or not at all, and .bz2 archives decoded by the bzip2 program
// or the JS fallback, through the real pipelines with local storage, a driver whose dump is a
// stream of known bytes, and the real gzip, zstd and bzip2 programs to make and read archives.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { compressor, decompressor, findProgram, zstdCompressorKind } from "../src/codecs.ts";
import type { Driver, RestoreInput } from "../src/driver.ts";
import { isHoardError } from "../src/errors.ts";
import { manifestKey, parseManifest } from "../src/manifest.ts";
import { backup } from "../src/pipelines/backup.ts";
import { listBackups } from "../src/pipelines/list.ts";
import { restore } from "../src/pipelines/restore.ts";
import { verify } from "../src/pipelines/verify.ts";
import type { Storage } from "../src/storage.ts";
import { freshDirectories, freshStorage } from "./helpers.ts";

const freshDirectory = freshDirectories("compression");
const now = new Date("2026-06-01T02:03:04Z");

/** Runs a program with `input` on stdin; resolves with its stdout, exit code and stderr. */
function run(program: string, args: string[], input: Buffer): Promise<{ stdout: Buffer; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ stdout: Buffer.concat(chunks), code, stderr }));
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
}

async function programOutput(program: string, args: string[], input: Buffer): Promise<Buffer> {
  const result = await run(program, args, input);
  if (result.code !== 0) throw new Error(`${program} ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** A dump that compresses like a real one (text with some incompressible bytes) and ends with a trailer the fake check wants. */
function dumpBytes(rows: number): Buffer {
  const lines = Array.from({ length: rows }, (_, index) => `INSERT INTO t VALUES (${index}, 'row ${index % 97}');\n`);
  return Buffer.concat([Buffer.from(lines.join("")), Buffer.from(randomBytes(4096).toString("hex")), Buffer.from("\n-- end\n")]);
}

const dump = dumpBytes(40_000);
/** Resolved before any test empties PATH to make the JS decoder the only one. */
const bzip2 = findProgram(["bzip2"], process.env.PATH ?? "") ?? "bzip2";

async function readAll(input: RestoreInput): Promise<Buffer> {
  if (input.kind !== "stream") throw new Error("stream expected");
  const chunks: Buffer[] = [];
  for await (const chunk of input.stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A driver whose dump is `dump` (as a stream, or a directory holding it as one file) and whose restore keeps what it was given. */
function fakeDriver(options: { directory?: string } = {}): Driver & { restored: Buffer[] } {
  const restored: Buffer[] = [];
  return {
    name: "fake",
    url: "fake://user@host/db",
    extension: "sql",
    restored,
    atomicRestore: true,
    async dump() {
      if (options.directory === undefined)
        return { kind: "stream", stream: Readable.from([dump.subarray(0, 100_000), dump.subarray(100_000)]) };
      await writeFile(join(options.directory, "all.sql"), dump);
      return { kind: "directory", path: options.directory };
    },
    async restore(input) {
      restored.push(await readAll(input));
    },
    async checkArchive(input) {
      const bytes = await readAll(input);
      if (!bytes.toString("latin1").endsWith("-- end\n")) throw new Error("no trailer");
      return { summary: `${bytes.length} bytes` };
    },
  };
}

let storageDirectory: string;
let temporaryDirectory: string;
let storage: Storage;

beforeEach(async () => {
  ({ storageDirectory, temporaryDirectory, storage } = await freshStorage(freshDirectory));
});

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a failure");
}

describe("backup compression", () => {
  it.each([
    ["gzip", undefined, "stream", "sql.gz", { format: "gzip", level: 6 }],
    ["gzip", 1, "file", "sql.gz", { format: "gzip", level: 1 }],
    // No level: zstd's default setting, level 3 with a minimum match of 6.
    ["zstd", undefined, "stream", "sql.zst", { format: "zstd", level: 3, minMatch: 6 }],
    ["zstd", 19, "file", "sql.zst", { format: "zstd", level: 19 }],
    ["zstd", 3, "stream", "sql.zst", { format: "zstd", level: 3 }],
    [undefined, undefined, "file", "sql.zst", { format: "zstd", level: 3, minMatch: 6 }],
    [undefined, 9, "stream", "sql.zst", { format: "zstd", level: 9 }],
    ["none", undefined, "stream", "sql", { format: "none" }],
    ["none", undefined, "file", "sql", { format: "none" }],
  ] as const)(
    "%s level %s (%s mode): named .%s, the level in the manifest, lists, verifies and restores",
    async (compression, level, mode, extension, recorded) => {
      const driver = fakeDriver();
      const made = await backup({ driver, storage, mode, compression, compressionLevel: level, now, temporaryDirectory });
      expect(made.key).toBe(`backup-20260601020304.${extension}`);
      expect(made.manifest.compression).toEqual(recorded);
      const stored = await readFile(join(storageDirectory, made.key));
      const manifest = parseManifest(await readFile(join(storageDirectory, manifestKey(made.key)), "utf8"), "manifest");
      expect(manifest.compression).toEqual(made.manifest.compression);
      // The standard programs read what hoard wrote.
      const plain =
        made.manifest.compression.format === "gzip"
          ? await programOutput("gzip", ["-d", "-c"], stored)
          : made.manifest.compression.format === "zstd"
            ? await programOutput("zstd", ["-d", "-c", "-q"], stored)
            : stored;
      expect(plain.equals(dump)).toBe(true);
      expect((await listBackups(storage)).map((entry) => entry.key)).toEqual([made.key]);
      const verified = await verify({ storage, key: made.key, driver, temporaryDirectory });
      expect(verified.archive?.summary).toBe(`${dump.length} bytes`);
      await restore({ driver, storage, key: made.key, temporaryDirectory });
      expect(driver.restored).toHaveLength(1);
      expect(driver.restored[0]?.equals(dump)).toBe(true);
    },
  );

  it.each([
    ["zstd", "sql.tar.zst"],
    ["none", "sql.tar"],
  ] as const)("a dump directory with %s is stored as .%s and restores", async (compression, extension) => {
    const driver = fakeDriver({ directory: await freshDirectory("dump") });
    const made = await backup({ driver, storage, compression, now, temporaryDirectory });
    expect(made.key).toBe(`backup-20260601020304.${extension}`);
    const tarBytes = await readFile(join(storageDirectory, made.key));
    const tar = compression === "zstd" ? await programOutput("zstd", ["-d", "-c", "-q"], tarBytes) : tarBytes;
    const listing = await programOutput("tar", ["-t"], tar);
    expect(listing.toString()).toContain("all.sql");
    await restore({ driver, storage, key: made.key, temporaryDirectory });
    expect(driver.restored[0]?.equals(dump)).toBe(true);
  });

  it("zstd and age: .sql.zst.age restores with the passphrase", async () => {
    const driver = fakeDriver();
    const made = await backup({
      driver,
      storage,
      compression: "zstd",
      encryption: { passphrase: "correct horse" },
      now,
      temporaryDirectory,
    });
    expect(made.key).toBe("backup-20260601020304.sql.zst.age");
    await restore({ driver, storage, key: made.key, temporaryDirectory, decryption: { passphrase: "correct horse" } });
    expect(driver.restored[0]?.equals(dump)).toBe(true);
  });

  it.each([
    [{ compression: "gzip", compressionLevel: 10 }, "invalid gzip level 10: use a whole number from 0 to 9"],
    [{ compression: "zstd", compressionLevel: 0 }, "invalid zstd level 0: use a whole number from 1 to 19"],
    [{ compression: "zstd", compressionLevel: 20 }, "invalid zstd level 20: use a whole number from 1 to 19"],
    [{ compression: "zstd", compressionLevel: 2.5 }, "invalid zstd level 2.5: use a whole number from 1 to 19"],
    [{ compression: "none", compressionLevel: 1 }, "a compression level needs a compression: none stores the dump as it is"],
    [{ compression: "brotli" }, 'unknown compression "brotli": use gzip, zstd or none'],
    [{ compression: "toString" }, 'unknown compression "toString": use gzip, zstd or none'],
  ])("refuses %o before dumping: %s", async (options, message) => {
    let dumped = false;
    const driver: Driver = {
      ...fakeDriver(),
      async dump() {
        dumped = true;
        return { kind: "stream", stream: Readable.from([dump]) };
      },
    };
    const error = await caught(backup({ driver, storage, now, temporaryDirectory, ...(options as object) }));
    expect(isHoardError(error, "INVALID_ARGUMENT"), String(error)).toBe(true);
    expect((error as Error).message).toBe(message);
    expect(dumped).toBe(false);
    expect(await listBackups(storage)).toEqual([]);
  });
});

describe("the zstd compressor", () => {
  it(`(${zstdCompressorKind()} here) writes frames with a content checksum that zstd -d and -t accept`, async () => {
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([dump.subarray(0, 1000), dump.subarray(1000)]),
      compressor("zstd", 3),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(chunk);
          done();
        },
      }),
    );
    const frame = Buffer.concat(chunks);
    const directory = await freshDirectory("frame");
    await writeFile(join(directory, "x.zst"), frame);
    const listing = await programOutput("zstd", ["-lv", join(directory, "x.zst")], Buffer.alloc(0));
    expect(listing.toString()).toMatch(/Check: XXH64/);
    expect((await programOutput("zstd", ["-d", "-c", "-q"], frame)).equals(dump)).toBe(true);
    // The frame's last bytes are its checksum: cut them and zstd refuses it.
    expect((await run("zstd", ["-t", "-q"], frame.subarray(0, frame.length - 2))).code).not.toBe(0);
  });
});

/** bzip2 files made by the real program: whole, cut short, and with one byte flipped in the middle. */
async function bzip2Files(): Promise<{ whole: Buffer; truncated: Buffer; flipped: Buffer }> {
  const whole = await programOutput(bzip2, ["-c", "-9"], dump);
  const truncated = whole.subarray(0, Math.floor(whole.length * 0.7));
  const flipped = Buffer.from(whole);
  const middle = Math.floor(flipped.length / 2);
  flipped[middle] = (flipped[middle] as number) ^ 0x10;
  return { whole, truncated, flipped };
}

describe.each([
  ["the bzip2 program", undefined],
  ["the JS decoder (no bzip2 on PATH)", ""],
])(".bz2 restores through %s", (_label, path) => {
  const savedPath = process.env.PATH;
  beforeEach(() => {
    if (path !== undefined) process.env.PATH = path;
  });
  afterEach(() => {
    process.env.PATH = savedPath;
  });

  async function store(name: string, bytes: Buffer): Promise<void> {
    await mkdir(storageDirectory, { recursive: true });
    await writeFile(join(storageDirectory, name), bytes);
  }

  it("restores a whole .sql.bz2 exactly", async () => {
    const { whole } = await bzip2Files();
    await store("dump-20260101000000.sql.bz2", whole);
    const driver = fakeDriver();
    await restore({ driver, storage, key: "dump-20260101000000.sql.bz2", temporaryDirectory });
    expect(driver.restored[0]?.equals(dump)).toBe(true);
  });

  it.each(["truncated", "flipped"] as const)(
    "fails a %s .sql.bz2 as CORRUPT_ARCHIVE, and the driver never sees a clean end",
    async (kind) => {
      const files = await bzip2Files();
      await store("dump-20260101000000.sql.bz2", files[kind]);
      let endedCleanly = false;
      const driver: Driver = {
        ...fakeDriver(),
        async restore(input) {
          await readAll(input);
          endedCleanly = true;
        },
      };
      const error = await caught(restore({ driver, storage, key: "dump-20260101000000.sql.bz2", temporaryDirectory }));
      expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
      expect(endedCleanly).toBe(false);
    },
  );

  it("names the damage, not the broken pipe, when the input is damaged early and the decoder stops reading", async () => {
    const large = Buffer.concat(Array.from({ length: 4 }, () => dumpBytes(40_000)));
    const compressed = Buffer.from(await programOutput(bzip2, ["-c", "-1"], large));
    const early = Math.floor(compressed.length / 10);
    compressed[early] = (compressed[early] as number) ^ 0x10;
    await store("early-20260101000000.sql.bz2", compressed);
    const error = await caught(restore({ driver: fakeDriver(), storage, key: "early-20260101000000.sql.bz2", temporaryDirectory }));
    expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
    expect((error as Error).message).not.toMatch(/EPIPE/);
    if (path === undefined) expect((error as Error).message).toMatch(/bzip2: data integrity error/);
  });

  it("decodes concatenated streams (pbzip2 and lbzip2 write them)", async () => {
    const half = Math.floor(dump.length / 2);
    const joined = Buffer.concat([
      await programOutput(bzip2, ["-c"], dump.subarray(0, half)),
      await programOutput(bzip2, ["-c"], dump.subarray(half)),
    ]);
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([joined]),
      decompressor("bz2"),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(chunk);
          done();
        },
      }),
    );
    expect(Buffer.concat(chunks).equals(dump)).toBe(true);
  });
});
