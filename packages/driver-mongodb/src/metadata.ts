import { HoardError } from "@hoard/core";
import { Binary, BSON, type Document } from "mongodb";

const { EJSON } = BSON;

/**
 * A collection's metadata.json, as mongodump writes it (mongo-tools mongodump/metadata_dump.go,
 * struct `Metadata`): options from listCollections, indexes from listIndexes, the collection UUID as
 * hex, the name, and the type. In an archive it travels as a string of canonical Extended JSON v2
 * (spec.md "collection-metadata").
 */
export interface CollectionMetadataDocument {
  options?: Document;
  indexes: Document[];
  uuid?: string;
  collectionName: string;
  type?: string;
}

/** What listCollections says about one collection (read with promoteValues false, so types survive). */
export interface CollectionInfo {
  name: string;
  type?: string;
  options?: Document;
  info?: { uuid?: unknown };
}

/**
 * The metadata.json text for a collection, field order as in mongodump's struct. Empty options are
 * left out (`omitempty`); indexes are always an array (the legacy tools reject null).
 */
export function metadataJson(collection: CollectionInfo, indexes: readonly Document[]): string {
  const document: Record<string, unknown> = {};
  if (collection.options && Object.keys(collection.options).length > 0) document.options = collection.options;
  document.indexes = indexes;
  const uuid = uuidHex(collection.info?.uuid);
  if (uuid) document.uuid = uuid;
  document.collectionName = collection.name;
  if (collection.type) document.type = collection.type;
  return EJSON.stringify(document, { relaxed: false });
}

/** mongo-tools `CollectionInfo.GetUUID`: the bytes of a subtype-4 binary as lowercase hex. */
function uuidHex(value: unknown): string | undefined {
  if (value instanceof Binary && value.sub_type === Binary.SUBTYPE_UUID) {
    return Buffer.from(value.buffer).toString("hex");
  }
  return undefined;
}

/**
 * Reads a metadata.json string back with its BSON types intact (canonical Extended JSON). An empty
 * string (mongodump writes none for some special namespaces) means no options and no indexes.
 */
export function parseMetadata(text: string, collection: string, archiveName: string): CollectionMetadataDocument {
  if (text.trim() === "") return { indexes: [], collectionName: collection };
  let parsed: unknown;
  try {
    parsed = EJSON.parse(text, { relaxed: false });
  } catch (error) {
    throw new HoardError("CORRUPT_ARCHIVE", `mongodb: ${archiveName} has unreadable metadata for ${collection}`, { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null) {
    throw new HoardError("CORRUPT_ARCHIVE", `mongodb: ${archiveName} has unreadable metadata for ${collection}`);
  }
  const document = parsed as Record<string, unknown>;
  return {
    options: isDocument(document.options) ? document.options : undefined,
    indexes: Array.isArray(document.indexes) ? document.indexes.filter(isDocument) : [],
    uuid: typeof document.uuid === "string" ? document.uuid : undefined,
    collectionName: typeof document.collectionName === "string" ? document.collectionName : collection,
    type: typeof document.type === "string" ? document.type : undefined,
  };
}

function isDocument(value: unknown): value is Document {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Index specifications ready for createIndexes: the `_id_` index is left out (every collection
 * already has it), and `ns` and `v` are removed: `ns` is obsolete and FerretDB v1.24 rejects both
 * ("Index option ... is unknown", FerretDB#4638); the server picks the current version itself.
 */
export function indexesToCreate(indexes: readonly Document[]): Document[] {
  return indexes
    .filter((index) => index.name !== "_id_")
    .map((index) => {
      const { ns: _namespace, v: _version, ...specification } = index;
      return specification;
    });
}

/**
 * Collection options ready for the create command. listCollections reports a clustered index with
 * its version, which create does not take back.
 */
export function createOptions(options: Document | undefined): Document {
  if (!options) return {};
  const result: Document = { ...options };
  if (isDocument(result.clusteredIndex)) {
    const { v: _version, ...clusteredIndex } = result.clusteredIndex;
    result.clusteredIndex = clusteredIndex;
  }
  return result;
}
