import { Readable } from "node:stream";
import { HoardError } from "@hoard/core";
import { BSON, type Document, Long } from "mongodb";
import {
  type ArchiveCollectionMetadata,
  type ArchiveHeader,
  type ArchiveNamespace,
  archiveMagicNumber,
  archiveTerminator,
  maximumDocumentSize,
  minimumDocumentSize,
  namespaceKey,
} from "./archive-format.js";
import { type Crc64, createCrc64 } from "./crc64.js";

type CorruptionReporter = (detail: string, cause?: unknown) => HoardError;

/** What the reader finds in an archive, in order. */
export type ArchiveEvent =
  /** Always first: the header and the metadata of every collection. */
  | { kind: "prelude"; header: ArchiveHeader; collections: ArchiveCollectionMetadata[] }
  /** One document of a namespace, as raw BSON. Its checksum is verified at the namespace's end. */
  | { kind: "document"; namespace: ArchiveNamespace; bytes: Buffer }
  /** The namespace's EOF header was read and its CRC matched every document seen for it. */
  | { kind: "namespace-end"; namespace: ArchiveNamespace };

export interface ReadArchiveOptions {
  /** Names the archive in error messages, e.g. the object's key. @default "the archive" */
  name?: string;
}

/**
 * Reads a mongodump archive (mongo-tools common/archive/spec.md), checking what mongorestore checks
 * (parser.go, demultiplexer.go): the magic number, document lengths and trailing NUL bytes, that
 * blocks end with the terminator, no data after a namespace's EOF header, the CRC-64 of each
 * namespace, and that every namespace that was opened, or announced in the prelude, reached its
 * EOF header before the input ended. Any violation fails with CORRUPT_ARCHIVE (a stream that is not
 * an archive at all: UNSUPPORTED_FORMAT), so a truncated backup is never taken for a whole one.
 *
 * Segments of several namespaces may be interleaved, as mongodump writes them when it dumps
 * collections in parallel. Memory stays at one document plus the input's chunks.
 */
export async function* readArchive(
  source: AsyncIterable<Uint8Array | string>,
  options: ReadArchiveOptions = {},
): AsyncGenerator<ArchiveEvent> {
  const name = options.name ?? "the archive";
  const corrupt: CorruptionReporter = (detail, cause) =>
    new HoardError("CORRUPT_ARCHIVE", `mongodb: ${name} is damaged or truncated: ${detail}`, { cause });
  const iterator = source[Symbol.asyncIterator]();
  const input = new ByteReader(iterator);
  try {
    const magic = await input.read(4);
    if (magic.length < 4) throw corrupt("it is too short to be a mongodump archive");
    if (magic.readUInt32LE() !== archiveMagicNumber) {
      throw new HoardError(
        "UNSUPPORTED_FORMAT",
        `mongodb: ${name} is not a mongodump archive (it does not start with the archive magic number)`,
      );
    }

    // Prelude (spec.md "header", "collection-metadata", prelude.go `Prelude.Read`): a block whose
    // first document is the header and whose other documents are collection metadata.
    const headerBytes = await readDocumentOrTerminator(input, corrupt, "the archive header");
    if (headerBytes === "terminator") throw corrupt("the archive header is missing");
    const header = parseHeader(decode(headerBytes, corrupt, "the archive header"));
    const collections: ArchiveCollectionMetadata[] = [];
    for (;;) {
      const block = await readDocumentOrTerminator(input, corrupt, "the collection metadata");
      if (block === "terminator") break;
      collections.push(parseCollectionMetadata(decode(block, corrupt, "collection metadata"), corrupt));
    }
    yield { kind: "prelude", header, collections };

    // Namespace blocks (spec.md "namespace-segment", "namespace-eof"; demultiplexer.go `HeaderBSON`, `BodyBSON`, `End`).
    const open = new Map<string, { namespace: ArchiveNamespace; checksum: Crc64 }>();
    const closed = new Set<string>();
    for (;;) {
      if (await input.atEnd()) break;
      const headerBlock =
        takeDocumentOrTerminator(input, corrupt, "a namespace header") ??
        (await readDocumentOrTerminator(input, corrupt, "a namespace header"));
      if (headerBlock === "terminator") throw corrupt("two terminators in a row (a block without a namespace header)");
      const namespaceHeader = parseNamespaceHeader(decode(headerBlock, corrupt, "a namespace header"), corrupt);
      const key = namespaceKey(namespaceHeader.namespace);
      if (closed.has(key)) throw corrupt(`${key} continues after its end`);
      let state = open.get(key);
      if (!state) {
        state = { namespace: namespaceHeader.namespace, checksum: createCrc64() };
        open.set(key, state);
      }
      if (namespaceHeader.endOfNamespace) {
        const expected = state.checksum.signedValue();
        if (expected !== namespaceHeader.checksum) {
          throw corrupt(`CRC mismatch for ${key} (computed ${expected}, the archive says ${namespaceHeader.checksum})`);
        }
        if ((await readDocumentOrTerminator(input, corrupt, `the end of ${key}`)) !== "terminator") {
          throw corrupt(`data after the end of ${key}`);
        }
        open.delete(key);
        closed.add(key);
        yield { kind: "namespace-end", namespace: state.namespace };
        continue;
      }
      const what = () => `a document of ${key}`;
      for (;;) {
        // Whatever is buffered already is taken without waiting: most documents are.
        const body = takeDocumentOrTerminator(input, corrupt, what) ?? (await readDocumentOrTerminator(input, corrupt, what));
        if (body === "terminator") break;
        state.checksum.update(body);
        yield { kind: "document", namespace: state.namespace, bytes: body };
      }
    }
    if (open.size > 0) throw corrupt(`it ends inside ${[...open.keys()].join(", ")} (no EOF block)`);
    for (const collection of collections) {
      // Time-series data lives under system.buckets.<name>; the tools do not track the view's own name.
      const key = namespaceKey({ database: collection.database, collection: collection.collection });
      if (collection.type !== "timeseries" && !closed.has(key)) throw corrupt(`it ends before ${key} (announced in the prelude)`);
    }
  } finally {
    await iterator.return?.();
  }
}

/**
 * Reads an archive's prelude (header and collection metadata) without consuming the archive: the
 * returned stream yields every byte from the start. Fails like {@link readArchive} when the stream
 * is not an archive or its prelude is damaged, and then destroys the input. Destroying the returned
 * stream destroys the input.
 */
export async function peekPrelude(
  input: Readable,
  options: ReadArchiveOptions = {},
): Promise<{ header: ArchiveHeader; collections: ArchiveCollectionMetadata[]; stream: Readable }> {
  const source = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const seen: Buffer[] = [];
  // The reader returns its iterator when done; this one keeps the input open for the replay.
  const recording: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const next = await source.next();
        if (!next.done) seen.push(Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value));
        return next;
      },
      return: async () => ({ done: true, value: undefined }),
    }),
  };
  const events = readArchive(recording, options);
  let prelude: ArchiveEvent | undefined;
  try {
    const first = await events.next();
    prelude = first.done ? undefined : first.value;
  } catch (error) {
    input.destroy();
    throw error;
  } finally {
    await events.return(undefined).catch(() => {});
  }
  if (prelude?.kind !== "prelude") {
    input.destroy();
    throw new HoardError("CORRUPT_ARCHIVE", `mongodb: ${options.name ?? "the archive"} has no prelude`);
  }
  async function* replay(): AsyncGenerator<Buffer> {
    yield* seen.splice(0);
    for (;;) {
      const next = await source.next();
      if (next.done) return;
      yield next.value;
    }
  }
  const stream = Readable.from(replay(), { objectMode: false });
  stream.once("close", () => {
    if (!stream.readableEnded) input.destroy();
  });
  return { header: prelude.header, collections: prelude.collections, stream };
}

/**
 * Reads what comes next: the terminator, or one whole BSON document (parser.go
 * `readBSONOrTerminator`). Anything else, or the end of input, is corruption.
 */
async function readDocumentOrTerminator(
  input: ByteReader,
  corrupt: CorruptionReporter,
  what: string | (() => string),
): Promise<Buffer | "terminator"> {
  const length = await input.peekUint32();
  if (length === undefined) throw corrupt(`it ends where ${describe(what)} should be`);
  checkLength(length, corrupt, what);
  if (length === archiveTerminator) {
    await input.read(4);
    return "terminator";
  }
  const document = await input.read(length);
  if (document.length < length) throw corrupt(`it ends inside ${describe(what)}`);
  return checkDocument(document, corrupt, what);
}

/**
 * {@link readDocumentOrTerminator} when its bytes are buffered already, without waiting for
 * anything; undefined when they are not (then the caller waits for them).
 */
function takeDocumentOrTerminator(
  input: ByteReader,
  corrupt: CorruptionReporter,
  what: string | (() => string),
): Buffer | "terminator" | undefined {
  const length = input.bufferedUint32();
  if (length === undefined) return undefined;
  checkLength(length, corrupt, what);
  const bytes = input.takeBuffered(length === archiveTerminator ? 4 : length);
  if (bytes === undefined) return undefined;
  return length === archiveTerminator ? "terminator" : checkDocument(bytes, corrupt, what);
}

function checkLength(length: number, corrupt: CorruptionReporter, what: string | (() => string)): void {
  if (length !== archiveTerminator && (length < minimumDocumentSize || length > maximumDocumentSize)) {
    throw corrupt(`${length} is neither a valid BSON length nor a terminator (reading ${describe(what)})`);
  }
}

function checkDocument(document: Buffer, corrupt: CorruptionReporter, what: string | (() => string)): Buffer {
  if (document[document.length - 1] !== 0) throw corrupt(`${describe(what)} does not end with a NUL byte`);
  return document;
}

/** What is being read, for a message (built only when one is needed). */
function describe(what: string | (() => string)): string {
  return typeof what === "string" ? what : what();
}

function decode(bytes: Buffer, corrupt: CorruptionReporter, what: string): Document {
  try {
    return BSON.deserialize(bytes, { promoteLongs: false, promoteValues: true });
  } catch (error) {
    throw corrupt(`${what} is not valid BSON`, error);
  }
}

function parseHeader(document: Document): ArchiveHeader {
  return {
    concurrentCollections: toNumber(document.concurrent_collections) ?? 1,
    formatVersion: typeof document.version === "string" ? document.version : "",
    serverVersion: typeof document.server_version === "string" ? document.server_version : "",
    toolVersion: typeof document.tool_version === "string" ? document.tool_version : "",
  };
}

function parseCollectionMetadata(document: Document, corrupt: CorruptionReporter): ArchiveCollectionMetadata {
  if (typeof document.db !== "string" || typeof document.collection !== "string") {
    throw corrupt("a collection metadata document has no db or collection");
  }
  return {
    database: document.db,
    collection: document.collection,
    metadata: typeof document.metadata === "string" ? document.metadata : "",
    size: toNumber(document.size) ?? 0,
    type: typeof document.type === "string" ? document.type : "",
  };
}

function parseNamespaceHeader(
  document: Document,
  corrupt: CorruptionReporter,
): { namespace: ArchiveNamespace; endOfNamespace: boolean; checksum: bigint } {
  if (typeof document.db !== "string" || typeof document.collection !== "string" || document.collection === "") {
    throw corrupt("a namespace header has no db or collection");
  }
  const checksum = document.CRC;
  return {
    namespace: { database: document.db, collection: document.collection },
    endOfNamespace: document.EOF === true,
    checksum: Long.isLong(checksum) ? checksum.toBigInt() : BigInt(Math.trunc(toNumber(checksum) ?? 0)),
  };
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (Long.isLong(value)) return value.toNumber();
  return undefined;
}

/**
 * Hands out exact byte counts from a stream of chunks without gathering the stream: it keeps only
 * the chunks not yet consumed. It holds state, hence a class.
 */
class ByteReader {
  private readonly chunks: Buffer[] = [];
  private available = 0;
  private ended = false;

  constructor(private readonly iterator: AsyncIterator<Uint8Array | string>) {}

  /** Pulls chunks until `length` bytes are buffered or the input ends; returns whether they are. */
  private async fill(length: number): Promise<boolean> {
    while (this.available < length && !this.ended) {
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        break;
      }
      const chunk =
        typeof next.value === "string"
          ? Buffer.from(next.value)
          : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.available += chunk.length;
    }
    return this.available >= length;
  }

  /** True when every byte was consumed and the input ended. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /** The next four bytes as a little-endian unsigned integer, without consuming them; undefined when fewer remain. */
  async peekUint32(): Promise<number | undefined> {
    if (!(await this.fill(4))) return undefined;
    const first = this.chunks[0] as Buffer;
    if (first.length >= 4) return first.readUInt32LE(0);
    return this.copy(4).readUInt32LE(0);
  }

  /** The next four bytes as a little-endian unsigned integer, when they are buffered; nothing is consumed. */
  bufferedUint32(): number | undefined {
    if (this.available < 4) return undefined;
    const first = this.chunks[0] as Buffer;
    return first.length >= 4 ? first.readUInt32LE(0) : this.copy(4).readUInt32LE(0);
  }

  /** The next `length` bytes when they are all buffered (consumed then), else undefined (nothing consumed). */
  takeBuffered(length: number): Buffer | undefined {
    if (this.available < length) return undefined;
    return this.take(length);
  }

  /** The next `length` bytes (fewer only when the input ended first). */
  async read(length: number): Promise<Buffer> {
    await this.fill(length);
    return this.take(Math.min(length, this.available));
  }

  /** The next `take` bytes, which are buffered. */
  private take(take: number): Buffer {
    const first = this.chunks[0];
    let result: Buffer;
    if (first && first.length >= take) {
      // A view, not a copy: a document keeps the chunk it came in alive for as long as it is
      // kept, which the built-in restore does for one batch, whose documents follow each other.
      result = first.subarray(0, take);
    } else {
      result = this.copy(take);
    }
    this.consume(take);
    return result;
  }

  private copy(length: number): Buffer {
    const result = Buffer.allocUnsafe(length);
    let written = 0;
    for (const chunk of this.chunks) {
      if (written >= length) break;
      written += chunk.copy(result, written, 0, Math.min(chunk.length, length - written));
    }
    return result;
  }

  private consume(length: number): void {
    let remaining = length;
    while (remaining > 0) {
      const first = this.chunks[0] as Buffer;
      if (first.length <= remaining) {
        this.chunks.shift();
        remaining -= first.length;
      } else {
        this.chunks[0] = first.subarray(remaining);
        remaining = 0;
      }
    }
    this.available -= length;
  }
}
