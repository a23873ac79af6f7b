import { Transform, type TransformCallback } from "node:stream";
import { HoardError } from "./errors.js";

/**
 * A pass-through stream that walks the structure of zstd data (RFC 8878: frames, their headers
 * and block headers; skippable frames) without decoding it, and fails unless the data ends exactly
 * where a frame ends. zlib's zstd decoder does not check that: Node.js 22 ends a truncated frame
 * silently, and both 22 and 24 ignore bytes after the last frame. With this in front of it,
 * zlib's decoder is safe on both lines (its content checksums find damage inside a frame).
 */
export function zstdFrameCheck(): Transform {
  return new ZstdFrameCheck();
}

const frameMagic = 0xfd2fb528;
const skippableMagicMask = 0xfffffff0;
const skippableMagic = 0x184d2a50;

type Field = "magic" | "descriptor" | "skippable-size" | "block-header";

class ZstdFrameCheck extends Transform {
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

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#walk(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#offset === 0) {
      callback(damaged("it is empty: no zstd frame"));
      return;
    }
    const atBoundary = this.#skip === 0 && this.#field === "magic" && this.#fieldBytes.length === 0;
    callback(atBoundary ? null : damaged(`the zstd data ends inside a frame after ${this.#offset} bytes (truncated)`));
  }

  #walk(chunk: Buffer): void {
    let index = 0;
    while (index < chunk.length) {
      if (this.#skip > 0) {
        const step = Math.min(this.#skip, chunk.length - index);
        this.#skip -= step;
        index += step;
        this.#offset += step;
        if (this.#skip === 0) this.#field = this.#after;
        continue;
      }
      this.#fieldBytes.push(chunk[index] as number);
      index += 1;
      this.#offset += 1;
      if (this.#fieldBytes.length === fieldLength[this.#field]) this.#read();
    }
  }

  /** Acts on a whole field. */
  #read(): void {
    const bytes = this.#fieldBytes;
    this.#fieldBytes = [];
    const value = bytes.reduce((sum, byte, position) => sum + byte * 2 ** (8 * position), 0);
    switch (this.#field) {
      case "magic":
        if (value === frameMagic) {
          this.#field = "descriptor";
          return;
        }
        if ((value & skippableMagicMask) >>> 0 === skippableMagic) {
          this.#field = "skippable-size";
          return;
        }
        throw damaged(
          this.#frames === 0
            ? "it is not zstd data (no frame magic number at the start)"
            : `unexpected bytes after zstd frame ${this.#frames}, at byte ${this.#offset - 4}`,
        );
      case "skippable-size":
        this.#skipThen(value, "magic");
        return;
      case "descriptor": {
        const contentSizeFlag = value >> 6;
        const singleSegment = (value >> 5) & 1;
        if ((value >> 3) & 1) throw damaged(`zstd frame ${this.#frames + 1} has its reserved bit set`);
        this.#checksum = ((value >> 2) & 1) === 1;
        const dictionaryIdBytes = [0, 1, 2, 4][value & 3] as number;
        const contentSizeBytes = contentSizeFlag === 0 ? singleSegment : ([0, 2, 4, 8][contentSizeFlag] as number);
        this.#skipThen((singleSegment ? 0 : 1) + dictionaryIdBytes + contentSizeBytes, "block-header");
        return;
      }
      case "block-header": {
        const last = value & 1;
        const type = (value >> 1) & 3;
        const size = value >>> 3;
        if (type === 3) throw damaged(`zstd frame ${this.#frames + 1} has a block of the reserved type`);
        const content = type === 1 ? 1 : size;
        if (!last) {
          this.#skipThen(content, "block-header");
          return;
        }
        this.#frames += 1;
        this.#skipThen(content + (this.#checksum ? 4 : 0), "magic");
        return;
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

const fieldLength: Record<Field, number> = { magic: 4, descriptor: 1, "skippable-size": 4, "block-header": 3 };

function damaged(reason: string): HoardError {
  return new HoardError("CORRUPT_ARCHIVE", reason);
}
