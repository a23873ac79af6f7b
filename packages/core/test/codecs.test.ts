import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Duplex, Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { archiveError, decompressor, type Layer, layersOf, zstdDecompressorKind } from "../src/codecs.ts";
import { HoardError, isHoardError } from "../src/errors.ts";
import { findExecutable } from "../src/process.ts";
import { ZstdFrameWalker, zstdPerFrameDecoder } from "../src/zstd-frames.ts";

/** Runs a compression program with `input` on stdin and returns its stdout. */
function runProgram(program: string, args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${program} exited ${code}: ${stderr}`))));
    child.stdin.end(input);
  });
}

function chunked(content: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < content.length; offset += size) chunks.push(content.subarray(offset, offset + size));
  return chunks;
}

/** Pushes `chunks` through `stream` and collects what comes out. */
async function through(stream: NodeJS.ReadWriteStream, chunks: Buffer[]): Promise<Buffer> {
  const output: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        output.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(output);
}

/** Pushes `input` through the decompressor for `layer` and collects what comes out. */
function decompress(layer: Exclude<Layer, "tar" | "age">, input: Buffer, chunkSize = 64 * 1024): Promise<Buffer> {
  return through(decompressor(layer), chunked(input, chunkSize));
}

/** Compressible but not trivial: repeated text with random bytes mixed in. */
function sampleData(size: number): Buffer {
  const text = Buffer.from("INSERT INTO everything VALUES (1, 'hoard', '\\x00ff', NULL);\n".repeat(Math.ceil(size / 120)));
  return Buffer.concat([text, randomBytes(size - Math.min(size, text.length))]).subarray(0, size);
}

/** Compares bytes without vitest's element-by-element diff, which is very slow on megabytes. */
function expectSameBytes(actual: unknown, expected: Buffer): void {
  expect(Buffer.isBuffer(actual), String(actual)).toBe(true);
  const bytes = actual as Buffer;
  expect(bytes.length).toBe(expected.length);
  expect(bytes.equals(expected), "content differs").toBe(true);
}

/** Whether the decompressor uses zlib's zstd (one stream on Node.js 24, a decoder per frame on 22) rather than the zstd program. */
const nativeZstd = zstdDecompressorKind() !== "program";

describe("layersOf", () => {
  it.each<[string, Layer[]]>([
    ["backup-20260101000000.sql.gz", ["gz"]],
    ["backup-20260101000000.sql.gzip", ["gz"]],
    ["backup-20260101000000.dump.bz2", ["bz2"]],
    ["backup-20260101000000.archive.zst", ["zst"]],
    ["x.tar.gz", ["tar", "gz"]],
    ["x.tgz", ["tar", "gz"]],
    ["x.tar.bz2", ["tar", "bz2"]],
    ["x.tbz2", ["tar", "bz2"]],
    ["x.tbz", ["tar", "bz2"]],
    ["x.tar", ["tar"]],
    ["x.tar.zst", ["tar", "zst"]],
    ["x.sql", []],
    ["x", []],
    ["gz", []],
    ["x.SQL.GZ", ["gz"]],
    ["x.TAR.GZ", ["tar", "gz"]],
    ["backup-1.2.3.sql.gz", ["gz"]],
    ["my.db.v2.tar.gz", ["tar", "gz"]],
    ["x.gz.sql", []],
    ["x.sql.gz.gz", ["gz", "gz"]],
    ["dir.gz/backup-20260101000000.sql", []],
    ["dir.v2/backup-20260101000000.sql.gz", ["gz"]],
  ])("%s -> %j", (name, layers) => {
    expect(layersOf(name)).toEqual(layers);
  });
});

describe("decompressor: gz", () => {
  it("round-trips data compressed by node:zlib, in small and large chunks", async () => {
    const data = sampleData(4 * 1024 * 1024 + 17);
    expectSameBytes(await decompress("gz", zlib.gzipSync(data, { level: 6 })), data);
    const small = data.subarray(0, 100_000);
    expectSameBytes(await decompress("gz", zlib.gzipSync(small), 7), small);
  });

  it("round-trips an empty file", async () => {
    expect(await decompress("gz", zlib.gzipSync(Buffer.alloc(0)))).toEqual(Buffer.alloc(0));
  });

  it("reads concatenated gzip members as one stream", async () => {
    const compressed = Buffer.concat([zlib.gzipSync(Buffer.from("first ")), zlib.gzipSync(Buffer.from("second"))]);
    expect((await decompress("gz", compressed)).toString()).toBe("first second");
  });

  it("fails on truncated gzip", async () => {
    const compressed = zlib.gzipSync(sampleData(256 * 1024));
    await expect(decompress("gz", compressed.subarray(0, compressed.length - 100))).rejects.toThrow(/unexpected end/i);
    await expect(decompress("gz", compressed.subarray(0, compressed.length - 4))).rejects.toThrow();
  });

  it("fails on data that is not gzip", async () => {
    await expect(decompress("gz", Buffer.from("this is plain SQL, not gzip"))).rejects.toThrow(/header/i);
  });

  it("fails on gzip with a flipped byte in the middle", async () => {
    const compressed = Buffer.from(zlib.gzipSync(sampleData(64 * 1024)));
    compressed[Math.floor(compressed.length / 2)] = (compressed[Math.floor(compressed.length / 2)] as number) ^ 0xff;
    await expect(decompress("gz", compressed)).rejects.toThrow();
  });
});

describe("decompressor: bz2", () => {
  it("has the bzip2 program to make test data", async () => {
    expect(await findExecutable(["bzip2"]), "install bzip2 (apt-get install bzip2) to run the bz2 tests").toBeDefined();
  });

  it("round-trips data compressed by the bzip2 program", async () => {
    const data = sampleData(400 * 1024 + 5);
    const compressed = await runProgram("bzip2", ["-c", "-9"], data);
    expect(compressed.subarray(0, 3).toString()).toBe("BZh");
    expectSameBytes(await decompress("bz2", compressed), data);
    expectSameBytes(await decompress("bz2", compressed, 1000), data);
  });

  it("round-trips a file of several bzip2 blocks (100 kB blocks with -1)", async () => {
    const data = randomBytes(350 * 1024);
    expectSameBytes(await decompress("bz2", await runProgram("bzip2", ["-c", "-1"], data)), data);
  });

  it("fails on truncated bz2", async () => {
    const compressed = await runProgram("bzip2", ["-c"], sampleData(200 * 1024));
    await expect(decompress("bz2", compressed.subarray(0, compressed.length >> 1))).rejects.toThrow();
    await expect(decompress("bz2", compressed.subarray(0, compressed.length - 10))).rejects.toThrow();
  });

  it("fails on data that is not bz2", async () => {
    await expect(decompress("bz2", Buffer.from("plain text, no magic"))).rejects.toThrow(/magic/i);
  });
});

describe("decompressor: zst", () => {
  async function zstdCompress(data: Buffer): Promise<Buffer> {
    if (await findExecutable(["zstd"])) return runProgram("zstd", ["-c", "-q", "-3"], data);
    const native = (zlib as unknown as { zstdCompressSync?: (data: Buffer) => Buffer }).zstdCompressSync;
    if (!native) throw new Error("neither the zstd program nor zlib zstd is available to make test data");
    return native(data);
  }

  it("round-trips zstd data (zlib's zstd where this Node.js has it, the zstd program otherwise)", async () => {
    const data = sampleData(2 * 1024 * 1024 + 3);
    const compressed = await zstdCompress(data);
    expect(compressed.readUInt32LE(0)).toBe(0xfd2fb528);
    expectSameBytes(await decompress("zst", compressed), data);
  });

  it("fails on truncated zstd data instead of returning a shorter result", async () => {
    const compressed = await zstdCompress(sampleData(1024 * 1024));
    // 4 bytes is exactly the frame's checksum: Node.js 22's zlib accepted that cut silently.
    for (const cut of [4, 5, 1000, compressed.length >> 1]) {
      const outcome = await decompress("zst", compressed.subarray(0, compressed.length - cut)).then(
        (output) => `accepted a zstd file cut by ${cut} bytes and returned ${output.length} bytes`,
        (error: unknown) => error,
      );
      expect(outcome, `cut by ${cut}`).toBeInstanceOf(Error);
      // zlib's path: the frame check finds the cut (Node.js 22's zlib alone ended such data silently).
      expect(isHoardError(outcome, "CORRUPT_ARCHIVE"), String(outcome)).toBe(true);
    }
  });

  it("reads concatenated and skippable frames, and refuses bytes after the last frame or a damaged frame", async () => {
    const first = sampleData(300_000);
    const second = sampleData(200_001);
    const frames = Buffer.concat([await zstdCompress(first), await zstdCompress(second)]);
    const skippable = Buffer.alloc(8 + 5);
    skippable.writeUInt32LE(0x184d2a5e, 0);
    skippable.writeUInt32LE(5, 4);
    expectSameBytes(await decompress("zst", Buffer.concat([frames, skippable])), Buffer.concat([first, second]));
    const trailing = await decompress("zst", Buffer.concat([frames, Buffer.from("not a frame")])).then(
      (output) => `accepted bytes after the last frame and returned ${output.length} bytes`,
      (error: unknown) => error,
    );
    expect(isHoardError(trailing, "CORRUPT_ARCHIVE"), String(trailing)).toBe(true);
    const flipped = Buffer.from(frames);
    flipped[flipped.length >> 2] = (flipped[flipped.length >> 2] as number) ^ 0x5a;
    await expect(decompress("zst", flipped)).rejects.toThrow();
    await expect(decompress("zst", Buffer.alloc(0))).rejects.toThrow(/empty|zstd/i);
  });

  it("hands the decoded data on in 64 KiB pieces, not zlib's 16 KiB (each a thread-pool round trip and a write to the tool)", async () => {
    const input = sampleData(4 * 1024 * 1024);
    const compressed = await runProgram("zstd", ["-c", "-q", "-3"], input);
    const pieces: Buffer[] = [];
    await pipeline(
      Readable.from(chunked(compressed, 64 * 1024)),
      decompressor("zst"),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          pieces.push(chunk);
          callback();
        },
      }),
    );
    expect(Buffer.concat(pieces).equals(input)).toBe(true);
    // An input write can end a piece early; 16 KiB pieces would be 256 of them.
    expect(pieces.length).toBeLessThanOrEqual((2 * input.length) / (64 * 1024));
  });

  it("fails on data that is not zstd", async () => {
    await expect(decompress("zst", Buffer.from("definitely not zstd data"))).rejects.toThrow();
  });

  it("without zlib zstd and without the zstd program, fails with UNSUPPORTED_FORMAT (with zlib zstd, still decompresses every frame)", async () => {
    // Several frames, as hoard's parallel compressor writes them: Node.js 22's zlib alone returns
    // the first one only, so before the per-frame decoder Node.js 22 needed the zstd program here.
    const parts = ["zstd ", "without ", "a ", "program"].map((text) => Buffer.from(text));
    const data = Buffer.concat(parts);
    const compressed = Buffer.concat(await Promise.all(parts.map((part) => zstdCompress(part))));
    const path = process.env.PATH;
    process.env.PATH = "";
    try {
      const result = await decompress("zst", compressed).then(
        (output) => output,
        (error: unknown) => error,
      );
      if (nativeZstd) {
        expectSameBytes(result, data);
      } else {
        expect(isHoardError(result, "UNSUPPORTED_FORMAT"), String(result)).toBe(true);
        expect((result as Error).message).toMatch(/install zstd/);
      }
    } finally {
      process.env.PATH = path;
    }
  });
});

const zlibZstd = zlib as unknown as {
  createZstdDecompress?: () => import("node:stream").Transform;
  zstdCompressSync?: (data: Buffer, options?: { params: Record<number, number> }) => Buffer;
  constants: Record<string, number>;
};

describe.runIf(zlibZstd.createZstdDecompress)("zstdPerFrameDecoder (zlib's zstd decoder, one per frame)", () => {
  const createDecoder = () => (zlibZstd.createZstdDecompress as () => import("node:stream").Transform)();
  const frame = (data: Buffer, checksum = true) =>
    (zlibZstd.zstdCompressSync as NonNullable<typeof zlibZstd.zstdCompressSync>)(data, {
      params: { [zlibZstd.constants.ZSTD_c_checksumFlag as number]: checksum ? 1 : 0 },
    });
  const skippable = (size: number) => {
    const bytes = Buffer.alloc(8 + size, 0x11);
    bytes.writeUInt32LE(0x184d2a53, 0);
    bytes.writeUInt32LE(size, 4);
    return bytes;
  };

  function decodePerFrame(input: Buffer, chunkSize: number | number[], decoders: () => Duplex = createDecoder): Promise<Buffer> {
    const sizes = Array.isArray(chunkSize) ? chunkSize : [chunkSize];
    const chunks: Buffer[] = [];
    for (let offset = 0, turn = 0; offset < input.length; turn += 1) {
      const size = sizes[turn % sizes.length] as number;
      chunks.push(input.subarray(offset, offset + size));
      offset += size;
    }
    return through(zstdPerFrameDecoder(decoders), chunks);
  }

  const parts = [sampleData(300_000), Buffer.alloc(0), sampleData(1), sampleData(700_003), Buffer.alloc(5 << 20, "a")];
  const content = Buffer.concat(parts);
  const multiFrame = Buffer.concat([
    frame(parts[0] as Buffer),
    skippable(0),
    frame(parts[1] as Buffer),
    frame(parts[2] as Buffer, false),
    skippable(17),
    frame(parts[3] as Buffer),
    frame(parts[4] as Buffer, false),
    skippable(3),
  ]);

  it("decodes every frame of a multi-frame input, skippable frames between, whatever the chunk boundaries", async () => {
    for (const sizes of [64 * 1024, [5, 4093, 1, 65_536, 2], multiFrame.length]) {
      expectSameBytes(await decodePerFrame(multiFrame, sizes), content);
    }
    // Every boundary, byte by byte, on a smaller input of the same shape.
    const small = [sampleData(3000), Buffer.alloc(0), sampleData(1), Buffer.alloc(9000, "b")];
    const smallFrames = Buffer.concat([
      frame(small[0] as Buffer),
      skippable(2),
      frame(small[1] as Buffer),
      frame(small[2] as Buffer, false),
      frame(small[3] as Buffer),
    ]);
    for (const size of [1, 3]) expectSameBytes(await decodePerFrame(smallFrames, size), Buffer.concat(small));
  });

  it("decodes every frame with one decoder reset between frames: one zstd context, not one per frame", async () => {
    // A decoder per frame made Node.js 22 restores of hoard's 1 MiB frames 1.16x of pg_restore with
    // a 128 MiB peak (docs/benchmarks.md); the reset keeps one decoder's context for the whole.
    let made = 0;
    const output = await decodePerFrame(multiFrame, 4093, () => {
      made += 1;
      return createDecoder();
    });
    expectSameBytes(output, content);
    expect(made).toBe(1);
  });

  it("with a decoder that cannot be reset, ends it at each frame's end and starts a new one", async () => {
    let made = 0;
    const output = await decodePerFrame(multiFrame, 65_536, () => {
      made += 1;
      const decoder = createDecoder();
      return Duplex.from({ writable: decoder, readable: decoder });
    });
    expectSameBytes(output, content);
    expect(made).toBe(5);
  });

  it("splits the input at exactly the frames' boundaries", () => {
    const frames = [frame(parts[0] as Buffer), frame(parts[3] as Buffer, false), frame(Buffer.alloc(0))];
    const input = Buffer.concat([frames[0] as Buffer, skippable(9), frames[1] as Buffer, frames[2] as Buffer]);
    for (const size of [1, 7, 1000, input.length]) {
      const walker = new ZstdFrameWalker();
      const found: Buffer[] = [];
      let current: Buffer[] = [];
      for (let offset = 0; offset < input.length; offset += size) {
        for (const piece of walker.split(input.subarray(offset, offset + size))) {
          current.push(piece.bytes);
          if (piece.frameEnd) {
            found.push(Buffer.concat(current));
            current = [];
          }
        }
      }
      walker.finish();
      expect(current, `chunks of ${size}`).toEqual([]);
      expect(found.length, `chunks of ${size}`).toBe(3);
      for (const [index, bytes] of found.entries()) expectSameBytes(bytes, frames[index] as Buffer);
    }
  });

  it("fails with CORRUPT_ARCHIVE on a cut anywhere, bytes after the last frame, a damaged frame, an empty input", async () => {
    const boundary = frame(parts[0] as Buffer).length;
    for (const cut of [1, 4, 5, 100, multiFrame.length - boundary - 1, multiFrame.length - 8]) {
      const outcome = await decodePerFrame(multiFrame.subarray(0, multiFrame.length - 3 - cut), 4096).then(
        (output) => `accepted an input cut by ${cut} bytes and returned ${output.length} bytes`,
        (error: unknown) => error,
      );
      expect(isHoardError(outcome, "CORRUPT_ARCHIVE"), `cut by ${cut}: ${String(outcome)}`).toBe(true);
    }
    const trailing = await decodePerFrame(Buffer.concat([multiFrame, Buffer.from("garbage")]), 4096).then(
      (output) => `accepted trailing bytes and returned ${output.length} bytes`,
      (error: unknown) => error,
    );
    expect(isHoardError(trailing, "CORRUPT_ARCHIVE"), String(trailing)).toBe(true);
    const damaged = Buffer.from(multiFrame);
    damaged[boundary + 20_000] = (damaged[boundary + 20_000] as number) ^ 0x5a;
    await expect(decodePerFrame(damaged, 4096)).rejects.toThrow();
    await expect(decodePerFrame(Buffer.alloc(0), 4096)).rejects.toThrow(/empty/);
  });

  it("holds back its input while its output is not read: memory stays bounded however far the data expands", async () => {
    // 256 MiB of zeros are a few kilobytes of zstd: without back-pressure the whole would be decoded into memory.
    const expanded = 256 << 20;
    const bomb = Buffer.concat([frame(Buffer.alloc(expanded)), frame(Buffer.alloc(expanded))]);
    const decoder = zstdPerFrameDecoder(createDecoder);
    let consumed = false;
    decoder.write(bomb, () => {
      consumed = true;
    });
    decoder.end();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(consumed, "the whole input was taken without its output being read").toBe(false);
    expect(decoder.readableLength).toBeLessThan(4 << 20);
    let total = 0;
    for await (const chunk of decoder) total += (chunk as Buffer).length;
    expect(total).toBe(2 * expanded);
    expect(consumed).toBe(true);
  });
});

describe("archiveError", () => {
  it("turns decompression errors into CORRUPT_ARCHIVE naming the object", () => {
    const cause = new Error("unexpected end of file");
    const error = archiveError(cause, "backup-20260101000000.sql.gz");
    expect(error.code).toBe("CORRUPT_ARCHIVE");
    expect(error.message).toContain("backup-20260101000000.sql.gz");
    expect(error.message).toContain("unexpected end of file");
    expect(error.cause).toBe(cause);
    expect(archiveError("text", "x.gz").message).toContain("text");
  });

  it("keeps meaningful HoardErrors and rewraps INTERNAL ones", () => {
    const unsupported = new HoardError("UNSUPPORTED_FORMAT", "no zstd");
    expect(archiveError(unsupported, "x.zst")).toBe(unsupported);
    const internal = new HoardError("INTERNAL", "oops");
    const wrapped = archiveError(internal, "x.gz");
    expect(wrapped.code).toBe("CORRUPT_ARCHIVE");
    expect(wrapped.cause).toBe(internal);
  });

  it("names the object in a CORRUPT_ARCHIVE that does not name it (a cut .zst), and leaves one that does as it is", async () => {
    const cut = await decompress("zst", Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x24])).then(
      () => new Error("a cut zstd frame was accepted"),
      (error: unknown) => error,
    );
    const named = archiveError(cut, "backup-20260101000000.sql.zst");
    expect(named.code).toBe("CORRUPT_ARCHIVE");
    expect(named.message).toMatch(/^backup-20260101000000\.sql\.zst is damaged or truncated \(the zstd data ends inside a frame/);
    const already = new HoardError("CORRUPT_ARCHIVE", "backup-1.sql.zst: bad");
    expect(archiveError(already, "backup-1.sql.zst")).toBe(already);
  });
});
