/**
 * Shared vocabulary of the mongodump archive format, as specified in mongo-tools
 * `common/archive/spec.md` ("The Mongodump archive format specification") and implemented in
 * `common/archive/archive.go`:
 *
 * ```
 * archive           = magic-number, header, *collection-metadata, terminator,
 *                     *(namespace-segment | namespace-eof)
 * namespace-segment = namespace-header, +document, terminator
 * namespace-eof     = eof-header, terminator
 * ```
 *
 * Every document is a BSON document; the terminator is the four bytes 0xFFFFFFFF, which can never
 * start a BSON document because it would be a negative length.
 */

/** `MagicNumber` in archive.go; written little-endian, so the file starts with 6D E2 99 81. */
export const archiveMagicNumber = 0x8199e26d;

/** `terminator` in archive.go: ends the prelude and every namespace block. */
export const archiveTerminator = 0xffffffff;

/** `archiveFormatVersion` in archive.go; the only version there is. */
export const archiveFormatVersion = "0.1";

/** The smallest BSON document (`minBSONSize` in archive.go): a length and a trailing NUL. */
export const minimumDocumentSize = 5;

/** The largest document the tools accept in an archive (`db.MaxBSONSize` in mongo-tools, 16 MiB). */
export const maximumDocumentSize = 16 * 1024 * 1024;

/** The archive header (spec.md "header"; `Header` in archive.go). */
export interface ArchiveHeader {
  /** `concurrent_collections`: how many collections the dump interleaved. */
  concurrentCollections: number;
  /** `version`: the archive format version, "0.1". */
  formatVersion: string;
  /** `server_version`: the source server's version; mongorestore parses it as x.y.z. */
  serverVersion: string;
  /** `tool_version`: what wrote the archive. */
  toolVersion: string;
}

/** One collection-metadata document of the prelude (spec.md "collection-metadata"; `CollectionMetadata` in archive.go). */
export interface ArchiveCollectionMetadata {
  /** `db` */
  database: string;
  /** `collection` */
  collection: string;
  /** `metadata`: the collection's metadata.json in canonical Extended JSON (options, indexes, uuid, collectionName, type). */
  metadata: string;
  /** `size`: mongodump leaves it 0 in archives. */
  size: number;
  /** `type`: "collection", "view" or "timeseries" (for which the data lives in `system.buckets.<name>`). */
  type: string;
}

/** A database and collection, as the archive names them. */
export interface ArchiveNamespace {
  database: string;
  collection: string;
}

/** `db.collection`, the key the tools use for a namespace. */
export function namespaceKey(namespace: ArchiveNamespace): string {
  return `${namespace.database}.${namespace.collection}`;
}
