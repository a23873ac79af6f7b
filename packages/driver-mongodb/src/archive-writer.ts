import { HoardError } from "@hoard/core";
import { BSON, Int32, Long } from "mongodb";
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
import { createCrc64 } from "./crc64.js";

/** One collection to write: its prelude entry and, later, its documents as raw BSON. */
export interface ArchiveCollection {
  metadata: ArchiveCollectionMetadata;
  /** The documents of the collection, each one whole BSON document; read once, after the prelude. */
  documents(): AsyncIterable<Uint8Array>;
}

export interface EncodeArchiveOptions {
  /** Documents are gathered into chunks of about this many bytes before they are yielded. @default 1 MiB */
  chunkBytes?: number;
  /**
   * Collections read at once. Above 1 their segments are interleaved, as mongodump writes them with
   * --numParallelCollections: each chunk is a whole segment (namespace header, documents,
   * terminator), and each collection ends with its EOF block once all its documents are out.
   * @default 1
   */
  parallelCollections?: number;
}

const terminatorBytes = uint32LittleEndian(archiveTerminator);

function uint32LittleEndian(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value);
  return bytes;
}

/**
 * The prelude: magic number, header document, one collection-metadata document per collection,
 * terminator (spec.md "archive"; prelude.go `Prelude.Write`). Field names and order follow the
 * `Header` and `CollectionMetadata` structs of archive.go.
 */
export function encodePrelude(header: ArchiveHeader, collections: readonly ArchiveCollectionMetadata[]): Buffer {
  const parts: Uint8Array[] = [
    uint32LittleEndian(archiveMagicNumber),
    BSON.serialize({
      concurrent_collections: new Int32(header.concurrentCollections),
      version: header.formatVersion,
      server_version: header.serverVersion,
      tool_version: header.toolVersion,
    }),
  ];
  for (const collection of collections) {
    parts.push(
      BSON.serialize({
        db: collection.database,
        collection: collection.collection,
        metadata: collection.metadata,
        size: new Int32(collection.size),
        type: collection.type,
      }),
    );
  }
  parts.push(terminatorBytes);
  return Buffer.concat(parts);
}

/**
 * A namespace header (spec.md "namespace-header", EOF false and CRC 0) or, with `checksum`, an EOF
 * header (spec.md "eof-header": EOF true and the CRC of every document of the namespace as int64).
 */
export function encodeNamespaceHeader(namespace: ArchiveNamespace, checksum?: bigint): Buffer {
  return Buffer.from(
    BSON.serialize({
      db: namespace.database,
      collection: namespace.collection,
      EOF: checksum !== undefined,
      CRC: Long.fromBigInt(checksum ?? 0n),
    }),
  );
}

/** The four terminator bytes, 0xFFFFFFFF. */
export function encodeTerminator(): Buffer {
  return Buffer.from(terminatorBytes);
}

/**
 * One namespace written the way mongodump's multiplexer writes it when it dumps one collection at a
 * time: a namespace header, the documents, a terminator, then the EOF header and a terminator.
 * An empty collection still gets its (empty) segment: mongorestore needs it, as the signal to
 * create the collection or view (mongodump.go `dumpValidatedQueryToIntent`).
 */
export async function* encodeNamespace(
  namespace: ArchiveNamespace,
  documents: AsyncIterable<Uint8Array>,
  options: EncodeArchiveOptions = {},
): AsyncGenerator<Buffer> {
  const chunkBytes = options.chunkBytes ?? 1024 * 1024;
  const checksum = createCrc64();
  let pending: Uint8Array[] = [encodeNamespaceHeader(namespace)];
  let pendingBytes = pending[0]?.length ?? 0;
  for await (const document of documents) {
    checkDocument(document, namespace);
    checksum.update(document);
    pending.push(document);
    pendingBytes += document.length;
    if (pendingBytes >= chunkBytes) {
      yield Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
  }
  pending.push(terminatorBytes, encodeNamespaceHeader(namespace, checksum.signedValue()), terminatorBytes);
  yield Buffer.concat(pending);
}

/**
 * One namespace as self-contained segments, for interleaving with others: every chunk of about
 * `chunkBytes` is a namespace header, documents and a terminator; the last chunk also carries the
 * EOF block. An empty collection gets one empty segment and its EOF block, as in {@link encodeNamespace}.
 */
export async function* encodeNamespaceSegments(
  namespace: ArchiveNamespace,
  documents: AsyncIterable<Uint8Array>,
  options: EncodeArchiveOptions = {},
): AsyncGenerator<Buffer> {
  const chunkBytes = options.chunkBytes ?? 1024 * 1024;
  const checksum = createCrc64();
  const header = encodeNamespaceHeader(namespace);
  let pending: Uint8Array[] = [header];
  let pendingBytes = header.length;
  let documentsInSegment = 0;
  let total = 0;
  for await (const document of documents) {
    checkDocument(document, namespace);
    checksum.update(document);
    pending.push(document);
    pendingBytes += document.length;
    documentsInSegment += 1;
    total += 1;
    if (pendingBytes >= chunkBytes) {
      pending.push(terminatorBytes);
      yield Buffer.concat(pending, pendingBytes + terminatorBytes.length);
      pending = [header];
      pendingBytes = header.length;
      documentsInSegment = 0;
    }
  }
  const eof = [encodeNamespaceHeader(namespace, checksum.signedValue()), terminatorBytes];
  // The last segment, unless the documents ended exactly at a chunk boundary (an empty collection still gets one).
  const last = documentsInSegment > 0 || total === 0 ? [...pending, terminatorBytes] : [];
  yield Buffer.concat([...last, ...eof]);
}

/**
 * The whole archive: the prelude, then the collections' segments, one collection after another,
 * or with `parallelCollections` above 1 that many collections at once, their segments interleaved
 * in the order their chunks are ready.
 */
export async function* encodeArchive(
  header: ArchiveHeader,
  collections: readonly ArchiveCollection[],
  options: EncodeArchiveOptions = {},
): AsyncGenerator<Buffer> {
  yield encodePrelude(
    header,
    collections.map((collection) => collection.metadata),
  );
  const namespaceOf = (collection: ArchiveCollection) => ({
    database: collection.metadata.database,
    collection: collection.metadata.collection,
  });
  const parallel = Math.max(1, options.parallelCollections ?? 1);
  if (parallel === 1) {
    for (const collection of collections) yield* encodeNamespace(namespaceOf(collection), collection.documents(), options);
    return;
  }
  yield* interleave(
    collections.map((collection) => () => encodeNamespaceSegments(namespaceOf(collection), collection.documents(), options)),
    parallel,
  );
}

/**
 * Runs up to `limit` of the sources at once and yields each chunk as soon as it is ready; a source
 * is asked for its next chunk only after its previous one was yielded, so at most `limit` chunks
 * wait. When one source fails, the others are closed (their cursors too) and the error is thrown.
 */
async function* interleave(sources: Array<() => AsyncGenerator<Buffer>>, limit: number): AsyncGenerator<Buffer> {
  type Pending = Promise<{ iterator: AsyncGenerator<Buffer>; result: IteratorResult<Buffer> }>;
  const waiting = new Map<AsyncGenerator<Buffer>, Pending>();
  const ask = (iterator: AsyncGenerator<Buffer>) => {
    const pending = iterator.next().then((result) => ({ iterator, result }));
    // Handled here so that a source failing after another one's error was thrown is not an unhandled rejection.
    pending.catch(() => {});
    waiting.set(iterator, pending);
  };
  let next = 0;
  const start = () => {
    while (waiting.size < limit && next < sources.length) ask((sources[next++] as () => AsyncGenerator<Buffer>)());
  };
  try {
    start();
    while (waiting.size > 0) {
      const { iterator, result } = await Promise.race(waiting.values());
      if (result.done) {
        waiting.delete(iterator);
        start();
        continue;
      }
      yield result.value;
      ask(iterator);
    }
  } finally {
    const open = [...waiting.keys()];
    waiting.clear();
    // Their pending next() may still reject: those errors are not the one being reported.
    await Promise.allSettled(open.map((iterator) => iterator.return(undefined)));
  }
}

function checkDocument(document: Uint8Array, namespace: ArchiveNamespace): void {
  const declared = document.length >= 4 ? Buffer.from(document.buffer, document.byteOffset, 4).readInt32LE() : -1;
  if (
    declared !== document.length ||
    declared < minimumDocumentSize ||
    declared > maximumDocumentSize ||
    document[document.length - 1] !== 0
  ) {
    throw new HoardError("INTERNAL", `mongodb: the server returned a malformed document in ${namespaceKey(namespace)}`);
  }
}
