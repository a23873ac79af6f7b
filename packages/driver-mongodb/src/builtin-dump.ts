import { Readable } from "node:stream";
import { HoardError, type Logger } from "@hoard/core";
import { log } from "@hoard/core/plugin";
import type { Document, MongoClient, MongoClientOptions } from "mongodb";
import { type ArchiveHeader, archiveFormatVersion, namespaceKey } from "./archive-format.js";
import { type ArchiveCollection, encodeArchive } from "./archive-writer.js";
import { createClient } from "./client.js";
import { hostsOf, parseMongoUrl } from "./connection-string.js";
import { toMongoError } from "./errors.js";
import { type CollectionInfo, metadataJson } from "./metadata.js";

/** What the archive header names as the tool that wrote it. */
export const builtinToolVersion = "hoard built-in engine 0.1";

/** Databases a dump of a whole server leaves out (mongodump skips local and config; admin holds users and roles). */
export const skippedDatabases: readonly string[] = ["admin", "config", "local"];

export interface BuiltinDumpOptions {
  url: string;
  /** Documents per cursor batch. */
  batchSize: number;
  /**
   * Collections read at once, their segments interleaved in the archive (mongodump's
   * --numParallelCollections). @default 1
   */
  parallelCollections?: number;
  logger?: Logger;
  signal?: AbortSignal;
  /** How long to wait for the server to answer (serverSelectionTimeoutMS, connectTimeoutMS) unless the URL says. */
  connectTimeoutMs: number;
  /** Extra options for the MongoClient, e.g. timeouts. */
  clientOptions?: MongoClientOptions;
}

/** Options that keep BSON types as they are (Int32 stays Int32, a regex stays a BSON regex). */
export const exactBson = { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true } as const;

/**
 * Dumps with the MongoDB driver into a mongodump archive. It connects and reads every collection's
 * metadata before it returns, so an unreachable server or a bad password fails here, before any
 * byte is produced. The returned stream then pulls documents with a cursor, batch by batch, only
 * as fast as it is read, fails on any error, and ends only after every collection's EOF block.
 *
 * The URL's database is dumped; a URL without one dumps every database except admin, config and
 * local. Like mongodump without --oplog, the dump is not a point-in-time snapshot of the server.
 */
export async function builtinDump(options: BuiltinDumpOptions): Promise<Readable> {
  const { database } = parseMongoUrl(options.url);
  let created: ReturnType<typeof createClient>;
  try {
    created = createClient(options);
  } catch (error) {
    throw toMongoError(error, "dump", options.url);
  }
  const { client, context } = created;
  try {
    await client.connect();
    const serverVersion = await readServerVersion(client);
    const databases = database === undefined ? await listDatabases(client) : [database];
    const collections: ArchiveCollection[] = [];
    for (const name of databases) collections.push(...(await planDatabase(client, name, options)));
    if (database !== undefined && collections.length === 0) throw missingDatabase(database, options.url);
    log(
      options.logger,
      "info",
      `mongodb: dumping ${collections.length} collection(s) of ${databases.join(", ") || "no database"} with the built-in engine`,
    );
    const parallelCollections = Math.max(1, Math.min(options.parallelCollections ?? 1, collections.length || 1));
    const header: ArchiveHeader = {
      concurrentCollections: parallelCollections,
      formatVersion: archiveFormatVersion,
      serverVersion,
      toolVersion: builtinToolVersion,
    };
    const stream = Readable.from(mapErrors(encodeArchive(header, collections, { parallelCollections }), options.url), {
      objectMode: false,
    });
    stream.once("close", () => {
      client.close().catch(() => {});
    });
    return stream;
  } catch (error) {
    await client.close().catch(() => {});
    throw toMongoError(error, "dump", options.url, context);
  }
}

/**
 * NOT_FOUND for a dump of a database that holds no collection: MongoDB has no empty databases, so
 * the name is wrong (or nothing was ever written there). Both engines fail this way rather than
 * store a backup of nothing.
 */
export function missingDatabase(database: string, url: string): HoardError {
  return new HoardError(
    "NOT_FOUND",
    `mongodb: dump: database ${database} does not exist on ${hostsOf(url)} (it holds no collection or view); check the database name in the URL`,
  );
}

async function* mapErrors(source: AsyncIterable<Buffer>, url: string): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (error) {
    throw toMongoError(error, "dump", url);
  }
}

/** The server's version as x.y.z; mongorestore parses the archive's server_version and rejects anything else. */
async function readServerVersion(client: MongoClient): Promise<string> {
  const info = await client.db("admin").command({ buildInfo: 1 });
  const match = typeof info.version === "string" ? /^\d+\.\d+\.\d+/.exec(info.version) : null;
  return match ? match[0] : "0.0.0";
}

async function listDatabases(client: MongoClient): Promise<string[]> {
  const result = await client.db("admin").admin().listDatabases({ nameOnly: true });
  return result.databases
    .map((entry) => entry.name)
    .filter((name) => !skippedDatabases.includes(name))
    .sort();
}

/** mongodump's rule (prepare.go `shouldSkipSystemNamespace`): system collections stay out, except system.js. */
function isDumped(name: string): boolean {
  return name === "system.js" || !name.startsWith("system.");
}

async function planDatabase(client: MongoClient, databaseName: string, options: BuiltinDumpOptions): Promise<ArchiveCollection[]> {
  const database = client.db(databaseName);
  const infos = (await database.listCollections({}, { nameOnly: false, ...exactBson }).toArray()) as CollectionInfo[];
  const plans: ArchiveCollection[] = [];
  for (const info of infos.filter((entry) => isDumped(entry.name)).sort((left, right) => compare(left.name, right.name))) {
    const namespace = { database: databaseName, collection: info.name };
    const type = info.type ?? "collection";
    if (type === "timeseries") {
      throw new HoardError(
        "UNSUPPORTED_FORMAT",
        `mongodb: ${namespaceKey(namespace)} is a time-series collection, which the built-in engine does not dump; install mongodump (engine "tools")`,
      );
    }
    const isView = type === "view";
    const indexes = isView ? [] : await listIndexes(client, databaseName, info.name, options.logger);
    plans.push({
      metadata: { ...namespace, metadata: metadataJson(info, indexes), size: 0, type },
      documents: () => (isView ? emptyDocuments() : collectionDocuments(client, databaseName, info.name, options)),
    });
  }
  return plans;
}

async function listIndexes(client: MongoClient, databaseName: string, collection: string, logger: Logger | undefined): Promise<Document[]> {
  try {
    return await client.db(databaseName).collection(collection).listIndexes(exactBson).toArray();
  } catch (error) {
    // The collection was dropped since it was listed; mongodump also carries on.
    if ((error as { code?: unknown }).code === 26) {
      log(logger, "warn", `mongodb: ${databaseName}.${collection} was dropped while the dump started`);
      return [];
    }
    throw error;
  }
}

async function* emptyDocuments(): AsyncGenerator<Uint8Array> {}

/** The collection's documents as raw BSON, in natural order (capped collections keep their order). */
async function* collectionDocuments(
  client: MongoClient,
  databaseName: string,
  collection: string,
  options: BuiltinDumpOptions,
): AsyncGenerator<Uint8Array> {
  const cursor = client.db(databaseName).collection(collection).find({}, { raw: true, batchSize: options.batchSize });
  try {
    for await (const document of cursor as AsyncIterable<unknown>) {
      if (options.signal?.aborted) throw new HoardError("ABORTED", "mongodb: dump was stopped");
      yield document as Uint8Array;
    }
  } finally {
    await cursor.close().catch(() => {});
  }
}

function compare(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}
