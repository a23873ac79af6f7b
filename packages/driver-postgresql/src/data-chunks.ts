import { Readable } from "node:stream";
import { HoardError } from "@hoard/core";

/**
 * Merges the data chunks of an uncompressed custom-format archive on its way to pg_restore.
 *
 * hoard dumps with `pg_dump --format=custom --compress=0` and compresses the archive itself. In
 * that form pg_dump writes each row of COPY data as a chunk of its own (a length, then the row),
 * and pg_restore hands each chunk to the server as one CopyData message: the server, which is what a
 * restore waits on, then handles a message per row. A compressed archive's data goes in 4 KiB
 * messages. On the 300 MiB benchmark database (974,000 chunks) `pg_restore --single-transaction`
 * of the `-Z0` archive took 5.17-5.69 s against 5.01-5.40 s for `pg_dump -Fc`'s (docs/benchmarks.md,
 * "zstd's default setting").
 *
 * This stream rewrites only the data blocks: consecutive chunks of a table's data (or of a large
 * object) become one chunk of up to `pieceBytes`, with the same bytes in the same order, which is
 * all pg_restore passes on (COPY data and SQL may be cut anywhere between messages: the server and
 * pg_restore's statement reader join them). A chunk larger than that goes through as it is, without
 * being held in memory. The header and the table of contents are passed on byte for byte.
 *
 * Anything it does not know is left as it is: an archive version other than 1.12 to 1.16 (pg_dump
 * 9.6 to 17), a compressed archive, another format, and, from where it is met, a block type it does
 * not know. A cut archive fails with CORRUPT_ARCHIVE, as pg_restore would fail it.
 *
 * The archive layout (pg_backup_archiver.c, pg_backup_custom.c): `PGDMP`, three version bytes, the
 * int and offset sizes, the format; the compression (a byte from 1.15, an int before); seven ints
 * of time; three strings. Then the number of entries and each entry: dumpId, hadDumper, tableoid,
 * oid, tag, desc, section, defn, dropStmt, copyStmt, namespace, tablespace, tableam (1.14), relkind
 * (an int, 1.16), owner, "false", the dependencies as strings up to a null one, and the data offset
 * (a flag byte and offSize bytes). Ints are a sign byte and intSize bytes, least significant first;
 * strings an int length (-1 for null) and the bytes. Then the data blocks: a type byte (1: data,
 * 3: large objects) and the dumpId; data is chunks (an int length and the bytes) up to a zero
 * length; large objects are, for each, its oid and its chunks, up to a zero oid.
 */
export function mergeDataChunks(input: Readable, options: { pieceBytes?: number } = {}): Readable {
  const output = Readable.from(merged(input, options.pieceBytes ?? 64 * 1024), { objectMode: false });
  output.once("close", () => input.destroy());
  return output;
}

const customFormat = 1;
const blockData = 1;
const blockLargeObjects = 3;

class Truncated extends Error {}

/** Bytes read from a stream, parsed in place; what is consumed in raw mode is handed on as it was. */
class Reader {
  buffer: Buffer = Buffer.alloc(0);
  position = 0;
  /** Consumed bytes from here to `position` not yet handed on (raw mode). */
  rawFrom = 0;
  raw = true;
  readonly #source: AsyncIterator<Buffer>;
  readonly #out: Buffer[];

  constructor(source: AsyncIterator<Buffer>, out: Buffer[]) {
    this.#source = source;
    this.#out = out;
  }

  get available(): number {
    return this.buffer.length - this.position;
  }

  /** Hands on the raw bytes consumed so far. */
  flushRaw(): void {
    if (this.raw && this.position > this.rawFrom) this.#out.push(this.buffer.subarray(this.rawFrom, this.position));
    this.rawFrom = this.position;
  }

  /** Makes `bytes` available; false at the end of the input. */
  async ensure(bytes: number): Promise<boolean> {
    while (this.available < bytes) {
      this.flushRaw();
      const next = await this.#source.next();
      if (next.done) return false;
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
      this.buffer = this.available === 0 ? chunk : Buffer.concat([this.buffer.subarray(this.position), chunk]);
      this.position = 0;
      this.rawFrom = 0;
    }
    return true;
  }

  /**
   * Passes over `bytes` however many chunks they span, without gathering them in one buffer (a
   * function's definition in the table of contents may be megabytes); false at the end of the input.
   */
  async skip(bytes: number): Promise<boolean> {
    let left = bytes;
    while (left > 0) {
      if (this.available === 0 && !(await this.ensure(1))) return false;
      const step = Math.min(left, this.available);
      this.position += step;
      left -= step;
    }
    return true;
  }

  /** The next chunk of the input as it is, after the buffered bytes; undefined at the end. */
  async rest(): Promise<Buffer | undefined> {
    this.flushRaw();
    if (this.available > 0) {
      const left = this.buffer.subarray(this.position);
      this.position = this.buffer.length;
      this.rawFrom = this.position;
      return left;
    }
    const next = await this.#source.next();
    return next.done ? undefined : next.value;
  }
}

async function* merged(input: Readable, pieceBytes: number): AsyncGenerator<Buffer> {
  const source = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const out: Buffer[] = [];
  const reader = new Reader(source, out);
  const drain = function* () {
    for (const piece of out) yield piece;
    out.length = 0;
  };
  try {
    const layout = await readHeadAndToc(reader);
    yield* drain();
    if (layout) {
      yield* mergeBlocks(reader, layout.intSize, layout.dumpIds, pieceBytes, out);
      yield* drain();
    }
    for (let piece = await reader.rest(); piece !== undefined; piece = await reader.rest()) {
      yield* drain();
      yield piece;
    }
    yield* drain();
  } catch (error) {
    if (error instanceof Truncated) {
      throw new HoardError("CORRUPT_ARCHIVE", "postgresql: the custom-format archive ends inside its data: it is truncated");
    }
    throw error;
  } finally {
    await source.return?.();
  }
}

/**
 * Reads the header and the table of contents in raw mode (handed on as they are). The int size
 * when the archive is one this code merges the chunks of; undefined (and nothing more read) when
 * it is not, so the rest goes through untouched.
 */
async function readHeadAndToc(reader: Reader): Promise<{ intSize: number; dumpIds: Set<number> } | undefined> {
  if (!(await reader.ensure(11))) return undefined;
  const { buffer } = reader;
  let at = reader.position;
  if (buffer.toString("latin1", at, at + 5) !== "PGDMP") return undefined;
  const major = buffer[at + 5] as number;
  const minor = buffer[at + 6] as number;
  const intSize = buffer[at + 8] as number;
  const offsetSize = buffer[at + 9] as number;
  const format = buffer[at + 10] as number;
  const version = major * 100 + minor;
  if (
    major !== 1 ||
    minor < 12 ||
    minor > 16 ||
    intSize < 1 ||
    intSize > 8 ||
    offsetSize < 1 ||
    offsetSize > 16 ||
    format !== customFormat
  ) {
    return undefined;
  }
  at += 11;
  reader.position = at;
  const int = async (): Promise<number> => {
    if (!(await reader.ensure(1 + intSize))) throw new Truncated();
    return readInt(reader, intSize);
  };
  const skipString = async (): Promise<boolean> => {
    const length = await int();
    if (length < 0) return false;
    if (!(await reader.skip(length))) throw new Truncated();
    return true;
  };
  if (version >= 115) {
    if (!(await reader.ensure(1))) throw new Truncated();
    const algorithm = reader.buffer[reader.position];
    reader.position += 1;
    if (algorithm !== 0) return undefined;
  } else if ((await int()) !== 0) {
    return undefined;
  }
  for (let field = 0; field < 7; field += 1) await int();
  for (let field = 0; field < 3; field += 1) await skipString();
  const entries = await int();
  if (entries < 0) return undefined;
  const dumpIds = new Set<number>();
  // Each entry is checked where pg_restore would check it, and where a field list read wrong would
  // show: anything odd and the rest of the archive goes through untouched.
  for (let entry = 0; entry < entries; entry += 1) {
    const dumpId = await int();
    const hadDumper = await int();
    if (dumpId <= 0 || (hadDumper !== 0 && hadDumper !== 1)) return undefined;
    dumpIds.add(dumpId);
    for (let field = 0; field < 4; field += 1) await skipString(); // tableoid, oid, tag, desc
    await int(); // section
    for (let field = 0; field < 5; field += 1) await skipString(); // defn, dropStmt, copyStmt, namespace, tablespace
    if (version >= 114) await skipString(); // tableam
    if (version >= 116) await int(); // relkind
    await skipString(); // owner
    await skipString(); // "false" (with OIDs)
    while (await skipString()); // the dependencies, up to a null string
    if (!(await reader.ensure(1 + offsetSize))) throw new Truncated();
    const offsetFlag = reader.buffer[reader.position] as number;
    if (offsetFlag < 1 || offsetFlag > 3) return undefined; // not set, set, no data
    reader.position += 1 + offsetSize; // the data offset
  }
  reader.flushRaw();
  return { intSize, dumpIds };
}

/** An int at the reader's position (made available by the caller), which it passes. */
function readInt(reader: Reader, intSize: number): number {
  const { buffer, position } = reader;
  let value = 0;
  for (let index = intSize; index >= 1; index -= 1) value = value * 256 + (buffer[position + index] as number);
  reader.position = position + 1 + intSize;
  return buffer[position] === 0 ? value : -value;
}

/** An int as the archive writes it. */
function writeInt(target: Buffer, at: number, value: number, intSize: number): void {
  target[at] = value < 0 ? 1 : 0;
  let rest = Math.abs(value);
  for (let index = 1; index <= intSize; index += 1) {
    target[at + index] = rest % 256;
    rest = Math.floor(rest / 256);
  }
}

function intBytes(value: number, intSize: number): Buffer {
  const bytes = Buffer.alloc(1 + intSize);
  writeInt(bytes, 0, value, intSize);
  return bytes;
}

/**
 * The data blocks, their chunks merged (see the top of this file). Returns when the input ends
 * between blocks, or after a block type it does not know has been handed on as read (the caller
 * then passes the rest through).
 */
async function* mergeBlocks(
  reader: Reader,
  intSize: number,
  dumpIds: ReadonlySet<number>,
  pieceBytes: number,
  out: Buffer[],
): AsyncGenerator<Buffer> {
  reader.raw = false;
  const headerBytes = 1 + intSize;
  let piece = Buffer.allocUnsafe(headerBytes + pieceBytes);
  let filled = 0;
  /** Hands on the chunks merged so far as one. */
  const flushPiece = () => {
    if (filled === 0) return;
    writeInt(piece, 0, filled, intSize);
    out.push(piece.subarray(0, headerBytes + filled));
    piece = Buffer.allocUnsafe(headerBytes + pieceBytes);
    filled = 0;
  };
  /** The chunks of one data block or large object, up to the zero length, merged. */
  const chunks = async function* () {
    for (;;) {
      // Checked before awaiting: an await per chunk (a million in 255 MB) would cost more than the rest.
      if (reader.available < headerBytes && !(await reader.ensure(headerBytes))) throw new Truncated();
      const length = readInt(reader, intSize);
      if (length === 0) {
        flushPiece();
        out.push(intBytes(0, intSize));
        return;
      }
      if (length < 0) throw new HoardError("CORRUPT_ARCHIVE", `postgresql: the custom-format archive has a data chunk of ${length} bytes`);
      if (length > pieceBytes) {
        // Too large to merge: on as it is, in the pieces it arrives in.
        flushPiece();
        out.push(intBytes(length, intSize));
        let left = length;
        while (left > 0) {
          if (reader.available === 0 && !(await reader.ensure(1))) throw new Truncated();
          const take = Math.min(left, reader.available);
          out.push(reader.buffer.subarray(reader.position, reader.position + take));
          reader.position += take;
          left -= take;
          if (out.length >= 16) yield* drainOut(out);
        }
        continue;
      }
      if (filled + length > pieceBytes) flushPiece();
      let left = length;
      while (left > 0) {
        if (reader.available === 0 && !(await reader.ensure(1))) throw new Truncated();
        const take = Math.min(left, reader.available);
        reader.buffer.copy(piece, headerBytes + filled, reader.position, reader.position + take);
        reader.position += take;
        filled += take;
        left -= take;
      }
      if (out.length >= 16) yield* drainOut(out);
    }
  };
  for (;;) {
    if (!(await reader.ensure(1))) return;
    if (!(await reader.ensure(1 + headerBytes))) throw new Truncated();
    const type = reader.buffer[reader.position] as number;
    const start = reader.position;
    reader.position += 1;
    const dumpId = readInt(reader, intSize);
    if ((type !== blockData && type !== blockLargeObjects) || !dumpIds.has(dumpId)) {
      // Not a block this code knows, or not of an entry of the table of contents: it and everything
      // after it go on as they are, for pg_restore to judge.
      reader.position = start;
      reader.raw = true;
      reader.rawFrom = start;
      return;
    }
    out.push(reader.buffer.subarray(start, reader.position)); // type and dumpId
    if (type === blockData) {
      yield* chunks();
    } else {
      for (;;) {
        if (!(await reader.ensure(headerBytes))) throw new Truncated();
        const oid = readInt(reader, intSize);
        out.push(intBytes(oid, intSize));
        if (oid === 0) break;
        yield* chunks();
      }
    }
    yield* drainOut(out);
  }
}

function* drainOut(out: Buffer[]): Generator<Buffer> {
  for (const piece of out) yield piece;
  out.length = 0;
}
