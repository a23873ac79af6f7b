import { availableParallelism } from "node:os";
import { Transform, type TransformCallback } from "node:stream";
import * as zlib from "node:zlib";

/**
 * Compression spread over several cores, as pigz does for gzip: the input is cut into blocks that
 * zlib compresses at the same time on libuv's thread pool, and the outputs are written in order.
 *
 * gzip: ONE gzip member, readable by every gunzip. Each block is raw deflate primed with the last
 * 32 KiB of the block before it (deflate's whole window, so no match is lost at a block boundary)
 * and ended with a sync flush, which leaves it on a byte boundary without the final-block bit; an
 * empty final block, the CRC-32 of all the input and its length mod 2^32 close the member. The
 * output is the size of a one-thread gzip at the same level give or take a few bytes per block.
 *
 * zstd: one frame per block (zstd reads concatenated frames as one stream; each carries its content
 * checksum). Blocks of 4 MiB cost about as much ratio as zstd's own window at the default levels.
 *
 * Memory: at most `jobs` blocks in flight plus the one being filled, whatever the input's size.
 */

/** The deflate window: the most a block's matches can reach back into the one before. */
const windowBytes = 32 * 1024;

/** gzip's 10-byte header: deflate, no name, no time, unknown flags, Unix. */
const gzipHeader = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03]);

/** A final deflate block with no data (fixed Huffman, end of block): `raw deflate("", Z_FINISH)`. */
const emptyFinalBlock = Buffer.from([0x03, 0x00]);

export interface ParallelCompressionOptions {
  /** Blocks compressed at once; at least 2 (one thread is what `createGzip` already is). */
  jobs: number;
  /** Input bytes per block (default 1 MiB for gzip, 4 MiB for zstd). */
  blockSize?: number;
}

/**
 * How many blocks to compress at once by default: the cores, but never all of libuv's thread pool
 * (4 threads unless UV_THREADPOOL_SIZE says otherwise), which file system calls share: reading
 * and writing the dump must not wait behind compression.
 */
export function defaultCompressionJobs(): number {
  const pool = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? "", 10);
  const poolSize = Number.isInteger(pool) && pool > 0 ? pool : 4;
  return Math.max(1, Math.min(availableParallelism(), poolSize - 1));
}

type Outcome = { ok: true; value: Buffer } | { ok: false; error: Error };

/** A stream that compresses blocks on the thread pool and emits them in order. */
abstract class BlockCompressor extends Transform {
  readonly #jobs: number;
  readonly #blockSize: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  readonly #inFlight: Promise<Outcome>[] = [];

  constructor(options: ParallelCompressionOptions, defaultBlockSize: number) {
    super();
    if (!Number.isInteger(options.jobs) || options.jobs < 1) throw new RangeError(`jobs must be a whole number >= 1, got ${options.jobs}`);
    this.#jobs = options.jobs;
    this.#blockSize = options.blockSize ?? defaultBlockSize;
  }

  /** Compresses one block, in input order (called synchronously, one block after the other). */
  protected abstract compressBlock(block: Buffer): Promise<Buffer>;
  /** What comes before the first block. */
  protected abstract header(): Buffer | undefined;
  /** What comes after the last block. */
  protected abstract trailer(): Buffer | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#start();
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes < this.#blockSize) {
      callback();
      return;
    }
    const input = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending, this.#pendingBytes);
    const blocks: Buffer[] = [];
    let offset = 0;
    for (; input.length - offset >= this.#blockSize; offset += this.#blockSize)
      blocks.push(input.subarray(offset, offset + this.#blockSize));
    this.#pending = offset < input.length ? [input.subarray(offset)] : [];
    this.#pendingBytes = input.length - offset;
    this.#submitAll(blocks).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#start();
    const rest = this.#pendingBytes > 0 ? [Buffer.concat(this.#pending, this.#pendingBytes)] : [];
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#submitAll(rest)
      .then(() => this.#drainTo(0))
      .then(() => {
        const trailer = this.trailer();
        if (trailer) this.push(trailer);
        callback();
      }, callback);
  }

  #started = false;

  /** Pushes the header once, before any block. */
  #start(): void {
    if (this.#started) return;
    this.#started = true;
    const header = this.header();
    if (header) this.push(header);
  }

  /** Submits blocks in order, each once fewer than `jobs` are in flight. */
  async #submitAll(blocks: Buffer[]): Promise<void> {
    for (const block of blocks) {
      await this.#drainTo(this.#jobs - 1);
      this.#submit(block);
    }
  }

  #submit(block: Buffer): void {
    this.#inFlight.push(
      this.compressBlock(block).then(
        (value): Outcome => ({ ok: true, value }),
        (error: unknown): Outcome => ({ ok: false, error: error instanceof Error ? error : new Error(String(error)) }),
      ),
    );
  }

  /** Writes finished blocks in order until at most `limit` are still being compressed. */
  async #drainTo(limit: number): Promise<void> {
    while (this.#inFlight.length > limit) {
      const outcome = await (this.#inFlight[0] as Promise<Outcome>);
      this.#inFlight.shift();
      if (!outcome.ok) throw outcome.error;
      if (this.destroyed) return;
      this.push(outcome.value);
    }
  }
}

const deflateRawAsync = (input: Buffer, options: zlib.ZlibOptions) =>
  new Promise<Buffer>((resolve, reject) => zlib.deflateRaw(input, options, (error, output) => (error ? reject(error) : resolve(output))));

/** One gzip member, compressed in parallel blocks (see the top of this file). */
class ParallelGzip extends BlockCompressor {
  readonly #level: number;
  #crc = 0;
  #length = 0;
  #window: Buffer | undefined;

  constructor(level: number, options: ParallelCompressionOptions) {
    super(options, 1024 * 1024);
    this.#level = level;
  }

  protected compressBlock(block: Buffer): Promise<Buffer> {
    this.#crc = zlib.crc32(block, this.#crc);
    this.#length += block.length;
    const dictionary = this.#window;
    // A copy: keeping a view would keep the whole previous block alive until the next one.
    this.#window = Buffer.from(block.subarray(Math.max(0, block.length - windowBytes)));
    return deflateRawAsync(block, {
      level: this.#level,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      ...(dictionary && { dictionary }),
    });
  }

  protected header(): Buffer {
    return gzipHeader;
  }

  protected trailer(): Buffer {
    const end = Buffer.alloc(8);
    end.writeUInt32LE(this.#crc >>> 0, 0);
    end.writeUInt32LE(this.#length % 0x1_0000_0000, 4);
    return Buffer.concat([emptyFinalBlock, end]);
  }
}

interface NativeZstdCompress {
  zstdCompress(input: Buffer, options: { params: Record<number, number> }, callback: (error: Error | null, output: Buffer) => void): void;
  zstdCompressSync(input: Buffer, options: { params: Record<number, number> }): Buffer;
  constants: { ZSTD_c_compressionLevel: number; ZSTD_c_checksumFlag: number };
}

/** zstd frames, one per block, each with its content checksum (see the top of this file). */
class ParallelZstd extends BlockCompressor {
  readonly #params: Record<number, number>;
  readonly #native: NativeZstdCompress;

  constructor(native: NativeZstdCompress, level: number, options: ParallelCompressionOptions) {
    super(options, 4 * 1024 * 1024);
    this.#native = native;
    this.#params = { [native.constants.ZSTD_c_compressionLevel]: level, [native.constants.ZSTD_c_checksumFlag]: 1 };
  }

  #blocks = 0;

  protected compressBlock(block: Buffer): Promise<Buffer> {
    this.#blocks += 1;
    return new Promise((resolve, reject) =>
      this.#native.zstdCompress(block, { params: this.#params }, (error, output) => (error ? reject(error) : resolve(output))),
    );
  }

  protected header(): undefined {
    return undefined;
  }

  /** Nothing after the last frame; for an empty input, one empty frame (zero bytes are not zstd data). */
  protected trailer(): Buffer | undefined {
    return this.#blocks === 0 ? this.#native.zstdCompressSync(Buffer.alloc(0), { params: this.#params }) : undefined;
  }
}

/** A gzip compressor over `options.jobs` threads: one standard gzip member. */
export function parallelGzip(level: number, options: ParallelCompressionOptions): Transform {
  return new ParallelGzip(level, options);
}

/** A zstd compressor over `options.jobs` threads, or undefined where this Node.js has no zstd in zlib. */
export function parallelZstd(level: number, options: ParallelCompressionOptions): Transform | undefined {
  const native = zlib as unknown as Partial<NativeZstdCompress>;
  if (
    typeof native.zstdCompress !== "function" ||
    typeof native.zstdCompressSync !== "function" ||
    native.constants?.ZSTD_c_compressionLevel === undefined
  )
    return undefined;
  return new ParallelZstd(native as NativeZstdCompress, level, options);
}
