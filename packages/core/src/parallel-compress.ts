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
 * checksum). Blocks of 1 MiB: on a 244 MiB pg_dump at level 6 they came out 0.1 % smaller than
 * blocks of 4 MiB, in 10 % less CPU, and hold 9 MiB less.
 *
 * Memory: `jobs + 1` block buffers, allocated once and reused (`jobs` in flight, one being filled),
 * whatever the input's size.
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
  /** Input bytes per block (default 1 MiB). */
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

type Outcome = { ok: true; value: Buffer | Buffer[] } | { ok: false; error: Error };

/**
 * A stream that compresses blocks on the thread pool and emits them in order.
 *
 * The input is copied into block buffers that are allocated once and reused: `jobs` in flight and
 * the one being filled, never more. Allocating a fresh block each time (a `Buffer.concat` of the
 * chunks) left garbage that V8 frees only at its next full collection, which external memory
 * triggers late (tens of MiB after the last), and freed blocks fragment malloc's heap: the
 * peak RSS of a backup grew with the jobs and was 35 MiB above a one-thread compressor.
 */
abstract class BlockCompressor extends Transform {
  readonly #jobs: number;
  readonly #blockSize: number;
  /** Block buffers not in use; a buffer returns here once its block is compressed. */
  readonly #free: Buffer[] = [];
  /** Block buffers allocated so far: at most `jobs + 1`. */
  #allocated = 0;
  #current: Buffer | undefined;
  #filled = 0;
  readonly #inFlight: Promise<Outcome>[] = [];

  constructor(options: ParallelCompressionOptions, defaultBlockSize: number) {
    super();
    if (!Number.isInteger(options.jobs) || options.jobs < 1) throw new RangeError(`jobs must be a whole number >= 1, got ${options.jobs}`);
    const blockSize = options.blockSize ?? defaultBlockSize;
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`blockSize must be a whole number >= 1, got ${blockSize}`);
    this.#jobs = options.jobs;
    this.#blockSize = blockSize;
  }

  /** Block buffers allocated so far (each `blockSize` bytes): at most `jobs + 1`, whatever the input. */
  get blockBuffers(): number {
    return this.#allocated;
  }

  /**
   * Compresses one block, in input order (called synchronously, one block after the other). The
   * block's memory is reused once the promise settles: nothing may keep a view of it after that.
   */
  protected abstract compressBlock(block: Buffer): Promise<Buffer | Buffer[]>;
  /** What comes before the first block. */
  protected abstract header(): Buffer | undefined;
  /** What comes after the last block. */
  protected abstract trailer(): Buffer | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#start();
    this.#fill(chunk, 0).then(() => callback(), callback);
  }

  /** Copies `chunk` from `offset` into block buffers, submitting each one that fills up. */
  async #fill(chunk: Buffer, offset: number): Promise<void> {
    while (offset < chunk.length) {
      if (!this.#current) {
        // A buffer is free once fewer than `jobs` blocks are in flight (there are `jobs + 1`).
        await this.#drainTo(this.#jobs - 1);
        if (this.destroyed) return;
        this.#current = this.#free.pop() ?? this.#allocate();
        this.#filled = 0;
      }
      const copied = chunk.copy(this.#current, this.#filled, offset);
      this.#filled += copied;
      offset += copied;
      if (this.#filled === this.#blockSize) this.#submitCurrent();
    }
  }

  #allocate(): Buffer {
    this.#allocated += 1;
    // Outside Node.js's small-buffer pool: a block is never shared with other buffers.
    return Buffer.allocUnsafeSlow(this.#blockSize);
  }

  override _flush(callback: TransformCallback): void {
    this.#start();
    if (this.#current) this.#submitCurrent();
    this.#drainTo(0).then(() => {
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

  /** Starts compressing the block being filled; its buffer is free again when that settles. */
  #submitCurrent(): void {
    const buffer = this.#current as Buffer;
    const block = this.#filled === buffer.length ? buffer : buffer.subarray(0, this.#filled);
    this.#current = undefined;
    this.#filled = 0;
    this.#inFlight.push(
      this.compressBlock(block)
        .then(
          (value): Outcome => ({ ok: true, value }),
          (error: unknown): Outcome => ({ ok: false, error: error instanceof Error ? error : new Error(String(error)) }),
        )
        .finally(() => this.#free.push(buffer)),
    );
  }

  /** Writes finished blocks in order until at most `limit` are still being compressed. */
  async #drainTo(limit: number): Promise<void> {
    while (this.#inFlight.length > limit) {
      const outcome = await (this.#inFlight[0] as Promise<Outcome>);
      this.#inFlight.shift();
      if (!outcome.ok) throw outcome.error;
      if (this.destroyed) return;
      if (Array.isArray(outcome.value)) for (const part of outcome.value) this.push(part);
      else this.push(outcome.value);
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
  createZstdCompress(options: { params: Record<number, number>; chunkSize?: number }): Transform & {
    flush(kind: number, callback: () => void): void;
  };
  zstdCompressSync(input: Buffer, options: { params: Record<number, number> }): Buffer;
  constants: ZstdConstants & { ZSTD_e_end: number };
}

type ZstdConstants = { ZSTD_c_compressionLevel: number; ZSTD_c_checksumFlag: number; ZSTD_c_minMatch: number };

/** zstd parameters beyond the level (see `zstdDefaultMinMatch` in manifest.ts). */
export interface ZstdTuning {
  /** The shortest match looked for, 3-7 bytes; unset, the level's own. */
  minMatch?: number;
}

/** zlib's zstd parameters: the level, a content checksum in every frame, and the tuning. */
export function zstdParameters(constants: ZstdConstants, level: number, tuning: ZstdTuning = {}): Record<number, number> {
  return {
    [constants.ZSTD_c_compressionLevel]: level,
    [constants.ZSTD_c_checksumFlag]: 1,
    ...(tuning.minMatch !== undefined && { [constants.ZSTD_c_minMatch]: tuning.minMatch }),
  };
}

type ZstdEncoder = ReturnType<NativeZstdCompress["createZstdCompress"]>;

/**
 * The output buffer of each zstd encoder: 64 KiB, not zlib's 16 KiB, each of which is a thread-pool
 * round trip, a main-thread callback and a piece for every later stage (the checksum, the store).
 * Larger pieces cost memory: a backup of the 1 GiB benchmark database peaked at 94-95 MiB with
 * 16 KiB and 64 KiB pieces and at 99-104 MiB with 256 KiB ones (three runs each); its CPU time did
 * not differ by more than the runs' spread.
 */
const zstdOutputPieceBytes = 64 * 1024;

/**
 * zstd frames, one per block, each with its content checksum (see the top of this file).
 *
 * Each block goes through one of `jobs` zstd encoders kept for the whole stream and ended with
 * ZSTD_e_end, which closes the frame; the encoder's next write starts the next one. The one-shot
 * `zstdCompress` made and freed a compression context (about 6 MiB at level 6) per block on
 * the pool's threads, which left malloc's per-thread arenas tens of MiB larger. The frames are
 * the same bytes either way.
 */
class ParallelZstd extends BlockCompressor {
  readonly #params: Record<number, number>;
  readonly #native: NativeZstdCompress;
  /** Encoders not compressing a block; there are never more than `jobs` of them in all. */
  readonly #idle: ZstdEncoder[] = [];
  readonly #encoders = new Set<ZstdEncoder>();

  constructor(native: NativeZstdCompress, level: number, options: ParallelCompressionOptions & ZstdTuning) {
    super(options, 1024 * 1024);
    this.#native = native;
    this.#params = zstdParameters(native.constants, level, options);
  }

  #blocks = 0;

  /** zstd encoders made so far: at most `jobs`, whatever the input. */
  get encoders(): number {
    return this.#encoders.size;
  }

  /** The frame in the pieces the encoder wrote it in (joining them would only copy it). */
  protected compressBlock(block: Buffer): Promise<Buffer[]> {
    this.#blocks += 1;
    const encoder = this.#idle.pop() ?? this.#newEncoder();
    return new Promise((resolve, reject) => {
      const output: Buffer[] = [];
      const collect = (chunk: Buffer) => output.push(chunk);
      const fail = (error: Error) => {
        encoder.off("data", collect);
        this.#encoders.delete(encoder);
        reject(error);
      };
      encoder.on("data", collect);
      encoder.once("error", fail);
      encoder.write(block);
      encoder.flush(this.#native.constants.ZSTD_e_end, () => {
        // Output pushed but not yet emitted (the stream may buffer it for a tick) is emitted by read().
        while (encoder.read() !== null);
        encoder.off("data", collect);
        encoder.off("error", fail);
        if (encoder.destroyed) return;
        this.#idle.push(encoder);
        resolve(output);
      });
    });
  }

  #newEncoder(): ZstdEncoder {
    const encoder = this.#native.createZstdCompress({ params: this.#params, chunkSize: zstdOutputPieceBytes });
    this.#encoders.add(encoder);
    return encoder;
  }

  protected header(): undefined {
    return undefined;
  }

  /** Nothing after the last frame; for an empty input, one empty frame (zero bytes are not zstd data). */
  protected trailer(): Buffer | undefined {
    return this.#blocks === 0 ? this.#native.zstdCompressSync(Buffer.alloc(0), { params: this.#params }) : undefined;
  }

  /** Frees the encoders' contexts when the stream ends or is destroyed. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const encoder of this.#encoders) encoder.destroy();
    this.#encoders.clear();
    this.#idle.length = 0;
    super._destroy(error, callback);
  }
}

/** A parallel compressor; `blockBuffers` tells how many block buffers it has allocated (at most `jobs + 1`). */
export type ParallelCompressor = Transform & { readonly blockBuffers: number };

/** A parallel zstd compressor; `encoders` tells how many zstd contexts it holds (at most `jobs`, none once done). */
export type ParallelZstdCompressor = ParallelCompressor & { readonly encoders: number };

/** A gzip compressor over `options.jobs` threads: one standard gzip member. */
export function parallelGzip(level: number, options: ParallelCompressionOptions): ParallelCompressor {
  return new ParallelGzip(level, options);
}

/** A zstd compressor over `options.jobs` threads, or undefined where this Node.js has no zstd in zlib. */
export function parallelZstd(level: number, options: ParallelCompressionOptions & ZstdTuning): ParallelZstdCompressor | undefined {
  const native = zlib as unknown as Partial<NativeZstdCompress>;
  if (
    typeof native.createZstdCompress !== "function" ||
    typeof native.zstdCompressSync !== "function" ||
    native.constants?.ZSTD_c_compressionLevel === undefined ||
    native.constants.ZSTD_c_minMatch === undefined ||
    native.constants.ZSTD_e_end === undefined
  )
    return undefined;
  return new ParallelZstd(native as NativeZstdCompress, level, options);
}
