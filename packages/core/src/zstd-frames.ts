import { Duplex, Transform, type TransformCallback } from "node:stream";
import { HoardError } from "./errors.js";

/**
 * The structure of zstd data (RFC 8878: frames, their headers and block headers; skippable frames),
 * walked without decoding it. Two uses:
 *
 * - `zstdFrameCheck()`: a pass-through that fails unless the data ends exactly where a frame ends.
 *   zlib's zstd decoder does not check that: Node.js 22 ends a truncated frame silently, and both
 *   22 and 24 ignore bytes after the last frame.
 * - `zstdPerFrameDecoder()`: hands the decoder one frame at a time. Node.js 22's zlib decoder
 *   drops whatever follows a frame's end within the same write, without an error, and hoard's
 *   parallel compressor writes one frame per block (1 MiB); fed frame by frame, and reset between
 *   frames, that decoder reads them all.
 *
 * With either in front of it, zlib's decoder is safe (its content checksums find damage inside a
 * frame; the walk finds a cut or trailing bytes).
 */
export function zstdFrameCheck(): Transform {
  return new ZstdFrameCheck();
}

/** A part of the input: bytes of one zstd frame, and whether they are its last. */
export interface FramePiece {
  bytes: Buffer;
  frameEnd: boolean;
}

const frameMagic = 0xfd2fb528;
const frameMagicBytes = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const skippableMagicMask = 0xfffffff0;
const skippableMagic = 0x184d2a50;

type Field = "magic" | "descriptor" | "skippable-size" | "block-header";

/**
 * Walks zstd data chunk by chunk and splits it into the bytes of each zstd frame (skippable frames
 * are walked over and left out). Throws CORRUPT_ARCHIVE on what is not zstd data.
 */
export class ZstdFrameWalker {
  /** The field being read, and its bytes so far. */
  #field: Field = "magic";
  #fieldBytes: number[] = [];
  /** Bytes to pass over before the next field. */
  #skip = 0;
  /** The field to read once the bytes to skip are passed. */
  #after: Field = "magic";
  #checksum = false;
  #frames = 0;
  #offset = 0;
  /** Inside a zstd frame (not a skippable one), past its magic number. */
  #inFrame = false;
  /** The frame being walked ended at the current position. */
  #ended = false;

  /** The zstd frames' bytes in `chunk`, in order; a frame's magic number comes as a piece of its own. */
  split(chunk: Buffer): FramePiece[] {
    const pieces: FramePiece[] = [];
    let start = this.#inFrame ? 0 : -1;
    let index = 0;
    const frameEnds = () => {
      this.#ended = false;
      this.#inFrame = false;
      pieces.push({ bytes: chunk.subarray(start, index), frameEnd: true });
      start = -1;
    };
    while (index < chunk.length) {
      if (this.#skip > 0) {
        const step = Math.min(this.#skip, chunk.length - index);
        this.#skip -= step;
        index += step;
        this.#offset += step;
        if (this.#skip === 0) {
          this.#field = this.#after;
          if (this.#ended) frameEnds();
        }
        continue;
      }
      this.#fieldBytes.push(chunk[index] as number);
      index += 1;
      this.#offset += 1;
      if (this.#fieldBytes.length === fieldLength[this.#field]) {
        const startsFrame = this.#read();
        if (startsFrame) {
          pieces.push({ bytes: frameMagicBytes, frameEnd: false });
          start = index;
        }
        if (this.#ended && this.#skip === 0) frameEnds();
      }
    }
    if (start >= 0 && start < chunk.length) pieces.push({ bytes: chunk.subarray(start), frameEnd: false });
    return pieces;
  }

  /** Throws unless the data seen so far ends exactly where a frame ends. */
  finish(): void {
    if (this.#offset === 0) throw damaged("it is empty: no zstd frame");
    const atBoundary = this.#skip === 0 && this.#field === "magic" && this.#fieldBytes.length === 0;
    if (!atBoundary) throw damaged(`the zstd data ends inside a frame after ${this.#offset} bytes (truncated)`);
  }

  /** Acts on a whole field; true when it was the magic number of a zstd frame. */
  #read(): boolean {
    const bytes = this.#fieldBytes;
    this.#fieldBytes = [];
    const value = bytes.reduce((sum, byte, position) => sum + byte * 2 ** (8 * position), 0);
    switch (this.#field) {
      case "magic":
        if (value === frameMagic) {
          this.#field = "descriptor";
          this.#inFrame = true;
          return true;
        }
        if ((value & skippableMagicMask) >>> 0 === skippableMagic) {
          this.#field = "skippable-size";
          return false;
        }
        throw damaged(
          this.#frames === 0
            ? "it is not zstd data (no frame magic number at the start)"
            : `unexpected bytes after zstd frame ${this.#frames}, at byte ${this.#offset - 4}`,
        );
      case "skippable-size":
        this.#skipThen(value, "magic");
        return false;
      case "descriptor": {
        const contentSizeFlag = value >> 6;
        const singleSegment = (value >> 5) & 1;
        if ((value >> 3) & 1) throw damaged(`zstd frame ${this.#frames + 1} has its reserved bit set`);
        this.#checksum = ((value >> 2) & 1) === 1;
        const dictionaryIdBytes = [0, 1, 2, 4][value & 3] as number;
        const contentSizeBytes = contentSizeFlag === 0 ? singleSegment : ([0, 2, 4, 8][contentSizeFlag] as number);
        this.#skipThen((singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes, "block-header");
        return false;
      }
      case "block-header": {
        const last = value & 1;
        const type = (value >> 1) & 3;
        const size = value >>> 3;
        if (type === 3) throw damaged(`zstd frame ${this.#frames + 1} has a block of the reserved type`);
        const content = type === 1 ? 1 : size;
        if (!last) {
          this.#skipThen(content, "block-header");
          return false;
        }
        this.#frames += 1;
        this.#ended = true;
        this.#skipThen(content + (this.#checksum ? 4 : 0), "magic");
        return false;
      }
    }
  }

  /** Passes over `bytes` bytes, then reads `next`. */
  #skipThen(bytes: number, next: Field): void {
    this.#skip = bytes;
    this.#after = next;
    if (bytes === 0) this.#field = next;
  }
}

class ZstdFrameCheck extends Transform {
  readonly #walker = new ZstdFrameWalker();

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#walker.split(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#walker.finish();
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }
}

/**
 * A zstd decoder that hands the data to `createDecoder()`'s stream one frame at a time: a frame's
 * last bytes end a write, and the decoder is reset before the next frame (a decoder without
 * `reset()` is ended instead, and the next frame gets a new one). Output back-pressure pauses the
 * decoder, so memory stays bounded however far the data decompresses. Fails like
 * `zstdFrameCheck` on a cut, trailing bytes or what is not zstd.
 */
export function zstdPerFrameDecoder(createDecoder: () => Duplex | Transform): Duplex {
  return new PerFrameDecoder(createDecoder);
}

class PerFrameDecoder extends Duplex {
  readonly #walker = new ZstdFrameWalker();
  readonly #createDecoder: () => Duplex | Transform;
  #decoder: Duplex | Transform | undefined;
  #paused = false;
  /** The decoder finished a frame and is to be reset before it reads the next one. */
  #resetBeforeNextFrame = false;

  constructor(createDecoder: () => Duplex | Transform) {
    super();
    this.#createDecoder = createDecoder;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let pieces: FramePiece[];
    try {
      pieces = this.#walker.split(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    this.#feed(pieces).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    try {
      this.#walker.finish();
    } catch (error) {
      callback(error as Error);
      return;
    }
    // A decoder kept across frames (reset, not ended) is ended here; its output is all out already.
    const last = this.#decoder ? this.#finish(this.#decoder) : Promise.resolve();
    last.then(() => {
      this.push(null);
      callback();
    }, callback);
  }

  override _read(): void {
    if (this.#paused && this.#decoder) {
      this.#paused = false;
      this.#decoder.resume();
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#decoder?.destroy();
    callback(error);
  }

  async #feed(pieces: FramePiece[]): Promise<void> {
    for (const piece of pieces) {
      const decoder = this.#decoder ?? this.#start();
      const resettable = isResettable(decoder);
      if (this.#resetBeforeNextFrame && resettable) {
        this.#resetBeforeNextFrame = false;
        decoder.reset();
      }
      if (piece.frameEnd && resettable) {
        // A frame's last bytes go in a write of their own, and the decoder is reset before the next
        // frame's first byte (Node.js 22 drops what follows a frame's end inside one write); not
        // right away, since Node.js 24 then calls an end after the last frame "unexpected". One
        // decoder, and one zstd context, serves every frame.
        await this.#written(decoder, piece.bytes);
        this.#resetBeforeNextFrame = true;
        continue;
      }
      if (piece.bytes.length > 0 && !decoder.write(piece.bytes)) await this.#settle(decoder, "drain");
      if (piece.frameEnd) await this.#finish(decoder);
    }
  }

  /**
   * Writes `bytes` and waits until the decoder has decoded them (and everything written before).
   * A decoder that fails or closes first may never call the write back: its error settles it.
   */
  #written(decoder: Duplex | Transform, bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const settle = (error?: Error | null) => {
        decoder.off("error", settle);
        decoder.off("close", closed);
        if (error) reject(error);
        else resolve();
      };
      const closed = () => settle(damaged("the zstd decoder stopped before the frame's end"));
      decoder.on("error", settle);
      decoder.on("close", closed);
      decoder.write(bytes, (error) => settle(error));
    });
  }

  /** Ends the decoder and waits until all its output is out. */
  async #finish(decoder: Duplex | Transform): Promise<void> {
    decoder.end();
    await this.#settle(decoder, "end");
    this.#decoder = undefined;
    this.#paused = false;
  }

  #start(): Duplex | Transform {
    const decoder = this.#createDecoder();
    this.#resetBeforeNextFrame = false;
    // Whenever it fails (also between writes, with no one waiting on it), the whole fails.
    decoder.on("error", (error: Error) => this.destroy(error));
    decoder.on("data", (data: Buffer) => {
      if (!this.push(data)) {
        this.#paused = true;
        decoder.pause();
      }
    });
    this.#decoder = decoder;
    return decoder;
  }

  /** Waits for `event` of the decoder, or fails with its error. */
  #settle(decoder: Duplex | Transform, event: "drain" | "end"): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        decoder.off(event, onEvent);
        decoder.off("error", onError);
        decoder.off("close", onClose);
        if (error) reject(error);
        else resolve();
      };
      const onEvent = () => done();
      const onError = (error: Error) => done(error);
      const onClose = () =>
        done(event === "end" && decoder.readableEnded ? undefined : damaged("the zstd decoder stopped before the frame's end"));
      decoder.on(event, onEvent);
      decoder.on("error", onError);
      decoder.on("close", onClose);
    });
  }
}

/** A decoder that can start over (zlib's streams): `reset()` drops its state, keeping its context. */
function isResettable(decoder: Duplex | Transform): decoder is (Duplex | Transform) & { reset(): void } {
  return typeof (decoder as { reset?: unknown }).reset === "function";
}

const fieldLength: Record<Field, number> = { magic: 4, descriptor: 1, "skippable-size": 4, "block-header": 3 };

function damaged(reason: string): HoardError {
  return new HoardError("CORRUPT_ARCHIVE", reason);
}
