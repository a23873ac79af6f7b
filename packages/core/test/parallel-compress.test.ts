// The parallel compressors (pigz-style gzip, framed zstd): the real gzip and zstd programs read
// what they write, byte for byte; gzip stays one member the size of a one-thread gzip; memory stays
// bounded when the reader stops; a failing block fails the stream.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { compressor, decompressor } from "../src/codecs.ts";
import {
  defaultCompressionJobs,
  type ParallelCompressionOptions,
  type ParallelZstdCompressor,
  parallelGzip,
  parallelZstd,
  type ZstdTuning,
} from "../src/parallel-compress.ts";

/** Runs a program with `input` on stdin; resolves with stdout, or rejects with its stderr. */
function programOutput(program: string, args: string[], input: Buffer): Promise<Buffer> {
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
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
}

/** Text that repeats across block boundaries (so the primed window matters), with random runs. */
function sample(bytes: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (let row = 0; size < bytes; row++) {
    const part =
      row % 50 === 49
        ? randomBytes(700)
        : Buffer.from(`INSERT INTO orders VALUES (${row}, 'customer ${row % 313}', '{"items": ${row % 17}}');\n`);
    parts.push(part);
    size += part.length;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

/** Compresses `input`, written in `chunkSize` pieces, through `stream`. */
async function compressWith(stream: NodeJS.ReadWriteStream, input: Buffer, chunkSize: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const pieces = function* () {
    for (let offset = 0; offset < input.length; offset += chunkSize) yield input.subarray(offset, offset + chunkSize);
  };
  await pipeline(
    Readable.from(pieces()),
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(chunks);
}

/** The zstd compressor, which every Node.js that runs these tests has (22.15+). */
function zstdStream(level: number, options: ParallelCompressionOptions & ZstdTuning): ParallelZstdCompressor {
  const stream = parallelZstd(level, options);
  if (!stream) throw new Error("this Node.js has no zstd in zlib");
  return stream;
}

describe("parallel gzip", () => {
  const input = sample(3 * 1024 * 1024 + 12_345);

  it("writes one gzip member that the gzip program and zlib read back exactly", async () => {
    const blockSize = 64 * 1024;
    const output = await compressWith(parallelGzip(6, { jobs: 3, blockSize }), input, 10_000);
    expect((await programOutput("gzip", ["-dc"], output)).equals(input)).toBe(true);
    expect(zlib.gunzipSync(output).equals(input)).toBe(true);
    await programOutput("gzip", ["-t"], output);
    // One member, the size of a one-thread gzip but for a few bytes a block: blocks that started
    // without the previous block's window would each lose their first matches (kilobytes here).
    expect(output.subarray(0, 3)).toEqual(Buffer.from([0x1f, 0x8b, 0x08]));
    const blocks = Math.ceil(input.length / blockSize);
    const single = zlib.gzipSync(input, { level: 6 }).length;
    expect(Math.abs(output.length - single)).toBeLessThan(blocks * 16);
  });

  it("cuts large writes into blocks and keeps the tail of a write for the next block", async () => {
    const output = await compressWith(parallelGzip(1, { jobs: 2, blockSize: 100_000 }), input, 1024 * 1024);
    expect((await programOutput("gzip", ["-dc"], output)).equals(input)).toBe(true);
  });

  it("writes a valid empty gzip for an empty input, and a whole one for input of exactly one block", async () => {
    const empty = await compressWith(parallelGzip(6, { jobs: 2 }), Buffer.alloc(0), 1);
    expect((await programOutput("gzip", ["-dc"], empty)).length).toBe(0);
    const exact = input.subarray(0, 128 * 1024);
    const one = await compressWith(parallelGzip(6, { jobs: 2, blockSize: 64 * 1024 }), exact, 64 * 1024);
    expect((await programOutput("gzip", ["-dc"], one)).equals(exact)).toBe(true);
  });

  it("keeps the CRC and length trailer right, so a flipped byte is found", async () => {
    const output = await compressWith(parallelGzip(6, { jobs: 2, blockSize: 64 * 1024 }), input, 50_000);
    const trailer = output.subarray(-8);
    expect(trailer.readUInt32LE(4)).toBe(input.length);
    const damaged = Buffer.from(output);
    damaged[damaged.length - 6] = (damaged[damaged.length - 6] as number) ^ 0xff;
    await expect(programOutput("gzip", ["-t"], damaged)).rejects.toThrow(/crc|length|invalid/i);
  });

  it("stops taking input when its reader stops: at most the blocks in flight and one being filled", async () => {
    const blockSize = 64 * 1024;
    const jobs = 2;
    let produced = 0;
    const source = new Readable({
      read() {
        produced += 16 * 1024;
        this.push(randomBytes(16 * 1024));
      },
    });
    const stream = parallelGzip(6, { jobs, blockSize });
    source.pipe(stream);
    // Nobody reads the compressed side: random data does not shrink, so it fills up at once.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    source.unpipe(stream);
    source.destroy();
    stream.destroy();
    // jobs in flight + the block filling + the readable and writable buffers (16 KiB each) + one
    // block's output that was pushed before the pause was seen.
    expect(produced).toBeGreaterThan(blockSize);
    expect(produced).toBeLessThan((jobs + 3) * blockSize + 4 * 16 * 1024);
  });

  it("reuses jobs + 1 block buffers for any number of blocks", async () => {
    const stream = parallelGzip(6, { jobs: 2, blockSize: 64 * 1024 });
    const output = await compressWith(stream, input, 30_000);
    expect(zlib.gunzipSync(output).equals(input)).toBe(true);
    expect(stream.blockBuffers).toBeGreaterThan(0);
    expect(stream.blockBuffers).toBeLessThanOrEqual(3);
  });

  it("fails the stream when a block fails to compress", async () => {
    await expect(compressWith(parallelGzip(42, { jobs: 2, blockSize: 64 * 1024 }), input, 64 * 1024)).rejects.toThrow(/level/i);
  });
});

describe("parallel zstd", () => {
  const input = sample(9 * 1024 * 1024 + 777);

  it("writes frames with checksums that the zstd program reads back exactly", async () => {
    const stream = parallelZstd(3, { jobs: 2, blockSize: 1024 * 1024 });
    expect(stream).toBeDefined();
    const output = await compressWith(stream as NodeJS.ReadWriteStream, input, 300_000);
    expect((await programOutput("zstd", ["-dc"], output)).equals(input)).toBe(true);
    await programOutput("zstd", ["-t"], output);
    // A frame cut short is found: every frame carries its content checksum.
    await expect(programOutput("zstd", ["-t"], output.subarray(0, output.length - 3))).rejects.toThrow();
  });

  it("writes the same frames as zlib's one-shot zstdCompress of each block, with encoders reused", async () => {
    const blockSize = 256 * 1024;
    const stream = zstdStream(6, { jobs: 3, blockSize });
    const output = await compressWith(stream, input, 100_000);
    const zstd = zlib as unknown as {
      zstdCompress(input: Buffer, options: object, callback: (error: Error | null, output: Buffer) => void): void;
      constants: Record<string, number>;
    };
    const params = { [zstd.constants.ZSTD_c_compressionLevel as number]: 6, [zstd.constants.ZSTD_c_checksumFlag as number]: 1 };
    const frames: Buffer[] = [];
    for (let offset = 0; offset < input.length; offset += blockSize) {
      const block = input.subarray(offset, offset + blockSize);
      frames.push(
        await new Promise<Buffer>((resolve, reject) =>
          zstd.zstdCompress(block, { params }, (error, frame) => (error ? reject(error) : resolve(frame))),
        ),
      );
    }
    expect(output.equals(Buffer.concat(frames))).toBe(true);
    // The encoders' contexts are freed once the stream is done.
    expect(stream.encoders).toBe(0);
  });

  it("applies the tuning: the same frames as zlib's one-shot zstdCompress with ZSTD_c_minMatch, and not those without it", async () => {
    const blockSize = 256 * 1024;
    const zstd = zlib as unknown as {
      zstdCompress(input: Buffer, options: object, callback: (error: Error | null, output: Buffer) => void): void;
      constants: Record<string, number>;
    };
    const text = Buffer.from(
      Array.from({ length: 40_000 }, (_, row) => `${row}\tcustomer-${(row * 7919) % 5003}@example.org\t${(row % 97) * 13}.25\tgold\n`).join(
        "",
      ),
    );
    const tuned = await compressWith(zstdStream(3, { jobs: 2, blockSize, minMatch: 6 }), text, 70_000);
    const params = {
      [zstd.constants.ZSTD_c_compressionLevel as number]: 3,
      [zstd.constants.ZSTD_c_checksumFlag as number]: 1,
      [zstd.constants.ZSTD_c_minMatch as number]: 6,
    };
    const frames: Buffer[] = [];
    for (let offset = 0; offset < text.length; offset += blockSize) {
      const block = text.subarray(offset, offset + blockSize);
      frames.push(
        await new Promise<Buffer>((resolve, reject) =>
          zstd.zstdCompress(block, { params }, (error, frame) => (error ? reject(error) : resolve(frame))),
        ),
      );
    }
    expect(tuned.equals(Buffer.concat(frames))).toBe(true);
    const plain = await compressWith(zstdStream(3, { jobs: 2, blockSize }), text, 70_000);
    expect(plain.equals(tuned)).toBe(false);
    expect((await programOutput("zstd", ["-dc"], tuned)).equals(text)).toBe(true);
  });

  it("passes a frame on in pieces of 64 KiB, not zlib's 16 KiB ones", async () => {
    // zlib's default output chunk of 16 KiB cut a 1 MiB block's frame into 64 pieces or more, each
    // a round trip to the thread pool and a write for every later stage (the store, the checksum).
    // Random input: each frame is as large as its block, 16 pieces and maybe a short one.
    const blockSize = 1024 * 1024;
    const stream = zstdStream(1, { jobs: 2, blockSize });
    const pieces: Buffer[] = [];
    stream.on("data", (piece: Buffer) => pieces.push(piece));
    const random = randomBytes(4 * blockSize);
    await pipeline(Readable.from([random]), stream);
    expect(pieces.length).toBeGreaterThanOrEqual(64);
    expect(pieces.length).toBeLessThanOrEqual(17 * 4 + 4);
    expect((await programOutput("zstd", ["-dc"], Buffer.concat(pieces))).equals(random)).toBe(true);
  });

  it("holds jobs + 1 block buffers and jobs encoders, however many blocks go through", async () => {
    // A fresh block and a fresh zstd context per block made the peak RSS of a backup grow by tens
    // of MiB with the jobs: garbage that V8 frees late, and malloc arenas on the pool's threads.
    for (const [jobs, chunkSize] of [
      [2, 10_000],
      [3, 200_000],
    ] as const) {
      const blockSize = 64 * 1024;
      const stream = zstdStream(3, { jobs, blockSize });
      let mostEncoders = 0;
      const watch = setInterval(() => {
        mostEncoders = Math.max(mostEncoders, stream.encoders);
      }, 1);
      stream.on("data", () => {
        mostEncoders = Math.max(mostEncoders, stream.encoders);
      });
      const output = await compressWith(stream, input, chunkSize).finally(() => clearInterval(watch));
      expect((await programOutput("zstd", ["-dc"], output)).equals(input)).toBe(true);
      expect(Math.ceil(input.length / blockSize)).toBeGreaterThan(100);
      expect(stream.blockBuffers).toBeGreaterThan(0);
      expect(stream.blockBuffers).toBeLessThanOrEqual(jobs + 1);
      expect(mostEncoders).toBeGreaterThan(0);
      expect(mostEncoders).toBeLessThanOrEqual(jobs);
    }
  });

  it("reads back exactly when one write fills several blocks while all jobs are busy", async () => {
    // The input is copied into reused buffers: a buffer must not be refilled while its block is
    // still being compressed.
    const stream = zstdStream(1, { jobs: 2, blockSize: 50_000 });
    const output = await compressWith(stream, input, 1024 * 1024 + 3);
    expect((await programOutput("zstd", ["-dc"], output)).equals(input)).toBe(true);
  });

  it("frees its encoders when destroyed halfway", async () => {
    const stream = zstdStream(6, { jobs: 2, blockSize: 64 * 1024 });
    stream.write(input.subarray(0, 200_000));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stream.encoders).toBeGreaterThan(0);
    stream.destroy();
    expect(stream.encoders).toBe(0);
  });

  it("writes one empty frame for an empty input, which zstd and hoard's own decoder read as empty", async () => {
    // Zero bytes are not zstd data: an empty dump (an empty SQLite file, a database with nothing in
    // it) was stored as a zero-byte .zst that every reader refuses.
    for (const jobs of [2, 3]) {
      const empty = await compressWith(parallelZstd(6, { jobs }) as NodeJS.ReadWriteStream, Buffer.alloc(0), 1);
      expect(empty.length).toBeGreaterThan(0);
      expect((await programOutput("zstd", ["-dc"], empty)).length).toBe(0);
      const decoded: Buffer[] = [];
      await pipeline(Readable.from([empty]), decompressor("zst"), async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) decoded.push(chunk);
      });
      expect(Buffer.concat(decoded).length).toBe(0);
    }
  });
});

describe("compressor", () => {
  it("spreads gzip over the cores by default and stays readable by gunzip", async () => {
    expect(defaultCompressionJobs()).toBeGreaterThanOrEqual(1);
    const input = sample(2 * 1024 * 1024);
    for (const jobs of [1, 2]) {
      const output = await compressWith(compressor("gzip", 6, jobs), input, 65_536);
      expect((await programOutput("gzip", ["-dc"], output)).equals(input)).toBe(true);
    }
  });

  it("leaves a thread of libuv's pool for file system calls", () => {
    const saved = process.env.UV_THREADPOOL_SIZE;
    try {
      process.env.UV_THREADPOOL_SIZE = "2";
      expect(defaultCompressionJobs()).toBe(1);
      process.env.UV_THREADPOOL_SIZE = "64";
      expect(defaultCompressionJobs()).toBeLessThanOrEqual(63);
    } finally {
      if (saved === undefined) delete process.env.UV_THREADPOOL_SIZE;
      else process.env.UV_THREADPOOL_SIZE = saved;
    }
  });
});
