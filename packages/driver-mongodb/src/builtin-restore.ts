import type { Readable } from "node:stream";
import { HoardError, type Logger } from "@hoard/core";
import { log } from "@hoard/core/plugin";
import { BSON, type Document, type MongoClient, type MongoClientOptions } from "mongodb";
import { type ArchiveCollectionMetadata, type ArchiveNamespace, namespaceKey } from "./archive-format.js";
import { type ArchiveEvent, readArchive } from "./archive-reader.js";
import { exactBson } from "./builtin-dump.js";
import { createClient, occupiedDatabases, targetNotEmpty } from "./client.js";
import { decompressByContent } from "./compression.js";
import { parseMongoUrl } from "./connection-string.js";
import { toMongoError } from "./errors.js";
import { type CollectionMetadataDocument, createOptions, indexesToCreate, parseMetadata } from "./metadata.js";
import { documentSequenceClass, firstInvalidDocument, insertRawDocuments } from "./raw-insert.js";

export interface BuiltinRestoreOptions {
  url: string;
  /**
   * Restore over what the target holds: drop each collection and view of the archive before
   * restoring it. Without it, a target database that holds any collection or view (system
   * collections aside) fails the restore with TARGET_NOT_EMPTY before anything changes.
   */
  drop: boolean;
  /** How long to wait for the server to answer (serverSelectionTimeoutMS, connectTimeoutMS) unless the URL says. */
  connectTimeoutMs: number;
  /** Documents per insert (at most 100,000, the servers' maxWriteBatchSize). */
  batchSize: number;
  /** An insert is sent once its documents reach this many bytes, whatever their number. @default 8 MiB */
  batchBytes?: number;
  /**
   * Insert batches sent before the first of them is answered: while the server stores one batch,
   * it receives the next. Each costs up to one batch of memory. A capped collection always gets
   * one at a time (its natural order is its insertion order). @default 2
   */
  insertsInFlight?: number;
  /** Names the archive in messages. */
  name: string;
  logger?: Logger;
  signal?: AbortSignal;
  clientOptions?: MongoClientOptions;
}

/** One namespace of the archive and where it goes. */
interface RestoreTarget {
  source: ArchiveNamespace;
  target: ArchiveNamespace;
  kind: "collection" | "view";
  metadata: CollectionMetadataDocument;
  indexesCreated: boolean;
}

/** The connection, the URL it came from and the archive's name (for messages). */
interface Connection {
  client: MongoClient;
  url: string;
  name: string;
}

interface RestorePlan {
  targets: Map<string, RestoreTarget>;
  /** Source namespaces whose data is read (to check it) but not restored. */
  skipped: Set<string>;
}

/**
 * Restores a mongodump archive (plain, or compressed with gzip, zstd or bzip2, found by content)
 * with the MongoDB driver:
 *
 * 1. reads the prelude and plans where each namespace goes: into the URL's database when the URL
 *    names one (like mongorestore --nsFrom='$db$.$collection$' --nsTo='<database>.$collection$'),
 *    else into the database the archive names;
 * 2. without `drop`, checks that no target database holds a collection or view (TARGET_NOT_EMPTY
 *    otherwise, before anything changed); with it, drops every collection and view of the archive;
 *    then creates every collection with its options (capped, size, max, validator, collation...);
 * 3. inserts the documents in unordered batches as the archive is read, with at most
 *    `insertsInFlight` batches sent and not yet answered (one at a time for a capped collection),
 *    so memory stays at a few batches; any rejected document fails the restore, after the batches
 *    in flight have been answered. The documents are sent as the archive holds them, raw BSON in
 *    an OP_MSG document sequence, as mongorestore sends them ({@link insertRawDocuments}): not
 *    decoded and encoded again, which cost this engine more CPU time than everything else it
 *    does. A document that the server refuses is then decoded to tell a damaged archive
 *    (CORRUPT_ARCHIVE) from a refusal. Where the driver's document sequence cannot be found, the
 *    documents are decoded and sent with insertMany;
 * 4. creates each collection's indexes once its EOF block (and CRC) has been read and its every
 *    batch stored, then the views.
 *
 * A damaged archive fails with CORRUPT_ARCHIVE; what was inserted before the damage stays, as with
 * mongorestore. Users, roles, the oplog and time-series collections are not restored by this engine.
 */
export async function builtinRestore(input: Readable, options: BuiltinRestoreOptions): Promise<void> {
  const targetDatabase = parseMongoUrl(options.url).database;
  let created: ReturnType<typeof createClient>;
  try {
    created = createClient(options);
  } catch (error) {
    input.destroy();
    throw toMongoError(error, "restore", options.url);
  }
  const { client, context } = created;
  // Connecting changes nothing on the server, so it runs while the archive's first bytes and its
  // prelude are read; a damaged archive is still reported as such, whatever the connection does.
  const connecting = client.connect().then(
    () => undefined,
    (error: unknown) => ({ error }),
  );
  let decompressed: Awaited<ReturnType<typeof decompressByContent>>;
  try {
    decompressed = await decompressByContent(input, options.name);
  } catch (error) {
    await client.close().catch(() => {});
    throw error;
  }
  if (decompressed.layers.length > 0) {
    log(options.logger, "info", `mongodb: ${options.name} is compressed with ${decompressed.layers.join(" and ")}; decompressing`);
  }
  const events = readArchive(decompressed.stream, { name: options.name });
  try {
    const first = await events.next();
    if (first.done || first.value.kind !== "prelude") {
      throw new HoardError("CORRUPT_ARCHIVE", `mongodb: ${options.name} has no prelude`);
    }
    const plan = planRestore(first.value.collections, targetDatabase, options);
    const failed = await connecting;
    if (failed) throw failed.error;
    if (!options.drop) {
      const databases = [...plan.targets.values()].map((entry) => entry.target.database);
      const occupied = await occupiedDatabases(client, targetDatabase === undefined ? databases : [targetDatabase]);
      if (occupied.length > 0) throw targetNotEmpty(occupied);
    }
    const connection = { client, url: options.url, name: options.name };
    await prepareCollections(connection, plan, options);
    await restoreData(connection, plan, events, options);
  } catch (error) {
    throw toMongoError(error, "restore", options.url, context);
  } finally {
    await events.return(undefined).catch(() => {});
    await client.close().catch(() => {});
    input.destroy();
  }
}

function planRestore(
  collections: readonly ArchiveCollectionMetadata[],
  targetDatabase: string | undefined,
  options: BuiltinRestoreOptions,
): RestorePlan {
  const targets = new Map<string, RestoreTarget>();
  const skipped = new Set<string>();
  const claimed = new Map<string, string>();
  for (const collection of collections) {
    const source = { database: collection.database, collection: collection.collection };
    const sourceKey = namespaceKey(source);
    if (collection.type === "timeseries") {
      throw new HoardError(
        "UNSUPPORTED_FORMAT",
        `mongodb: ${sourceKey} in ${options.name} is a time-series collection, which the built-in engine does not restore; install mongorestore (engine "tools")`,
      );
    }
    const reason = skipReason(source);
    if (reason) {
      log(options.logger, "warn", `mongodb: skipping ${sourceKey || collection.collection}: ${reason}`);
      skipped.add(sourceKey);
      continue;
    }
    const target = { database: targetDatabase ?? source.database, collection: source.collection };
    const targetKey = namespaceKey(target);
    const other = claimed.get(targetKey);
    if (other !== undefined) {
      throw new HoardError(
        "INVALID_ARGUMENT",
        `mongodb: ${other} and ${sourceKey} of ${options.name} would both be restored into ${targetKey}; restore into a URL without a database to keep the archive's database names`,
      );
    }
    claimed.set(targetKey, sourceKey);
    const metadata = parseMetadata(collection.metadata, sourceKey, options.name);
    // A view is whatever has a viewOn; `mongodump --viewsAsCollections` keeps the type "view" but
    // drops viewOn and pipeline, and writes the view's documents as a collection's.
    const kind = metadata.options?.viewOn !== undefined ? "view" : "collection";
    targets.set(sourceKey, { source, target, kind, metadata, indexesCreated: false });
  }
  const into = targetDatabase === undefined ? "the databases the archive names" : `database ${targetDatabase}`;
  log(options.logger, "info", `mongodb: restoring ${targets.size} collection(s) and view(s) into ${into} with the built-in engine`);
  return { targets, skipped };
}

/** Namespaces only mongorestore knows how to restore: the oplog, users, roles and other system collections. */
function skipReason(namespace: ArchiveNamespace): string | undefined {
  if (namespace.database === "") return "the oplog is replayed only by mongorestore --oplogReplay";
  if (namespace.collection.startsWith("$admin.")) return "users and roles are restored only by mongorestore";
  if (namespace.collection.startsWith("system.") && namespace.collection !== "system.js") {
    return "system collections are restored only by mongorestore";
  }
  return undefined;
}

async function prepareCollections(connection: Connection, plan: RestorePlan, options: BuiltinRestoreOptions): Promise<void> {
  if (options.drop) {
    for (const entry of plan.targets.values()) {
      await runCommand(connection, entry.target, { drop: entry.target.collection }, "dropping", [26]);
    }
  }
  for (const entry of plan.targets.values()) {
    if (entry.kind !== "collection") continue;
    const created = await runCommand(
      connection,
      entry.target,
      { create: entry.target.collection, ...createOptions(entry.metadata.options) },
      "creating",
      [48],
    );
    if (!created) log(options.logger, "info", `mongodb: ${namespaceKey(entry.target)} exists; restoring into it`);
  }
}

async function restoreData(
  connection: Connection,
  plan: RestorePlan,
  events: AsyncGenerator<ArchiveEvent>,
  options: BuiltinRestoreOptions,
): Promise<void> {
  const batchBytes = options.batchBytes ?? 8 * 1024 * 1024;
  const batchSize = Math.min(options.batchSize, maximumWriteBatchSize);
  const inserts = insertQueue(options.insertsInFlight ?? defaultInsertsInFlight);
  const unannounced = new Map<string, RestoreTarget>();
  let batch: { entry: RestoreTarget; documents: Buffer[]; bytes: number } | undefined;
  const flush = async () => {
    if (!batch || batch.documents.length === 0) return;
    const { entry, documents } = batch;
    batch = undefined;
    // A capped collection keeps its documents in insertion order: nothing may overtake a batch of it.
    if (entry.metadata.options?.capped === true) {
      await inserts.drain();
      await insert(connection, entry, documents);
    } else {
      await inserts.add(() => insert(connection, entry, documents));
    }
  };
  const targetOf = (source: ArchiveNamespace): RestoreTarget | undefined => {
    const key = namespaceKey(source);
    if (plan.skipped.has(key)) return undefined;
    const planned = plan.targets.get(key) ?? unannounced.get(key);
    if (planned) return planned;
    const reason = skipReason(source);
    if (reason) {
      log(options.logger, "warn", `mongodb: skipping ${key}: ${reason}`);
      plan.skipped.add(key);
      return undefined;
    }
    log(
      options.logger,
      "warn",
      `mongodb: ${key} has data but no metadata in ${options.name}; restoring its documents without options or indexes`,
    );
    const target = { database: parseMongoUrl(options.url).database ?? source.database, collection: source.collection };
    const entry: RestoreTarget = {
      source,
      target,
      kind: "collection",
      metadata: { indexes: [], collectionName: source.collection },
      indexesCreated: true,
    };
    unannounced.set(key, entry);
    return entry;
  };

  let lastSource: ArchiveNamespace | undefined;
  let lastTarget: RestoreTarget | undefined;
  try {
    for await (const event of events) {
      if (options.signal?.aborted) throw new HoardError("ABORTED", "mongodb: restore was stopped");
      if (event.kind === "document") {
        // The reader gives every document of a namespace the same namespace object.
        if (event.namespace !== lastSource) {
          lastSource = event.namespace;
          lastTarget = targetOf(event.namespace);
        }
        const entry = lastTarget;
        if (!entry) continue;
        if (entry.kind === "view") {
          throw new HoardError("CORRUPT_ARCHIVE", `mongodb: ${options.name} holds documents for the view ${namespaceKey(event.namespace)}`);
        }
        if (batch && batch.entry !== entry) await flush();
        batch ??= { entry, documents: [], bytes: 0 };
        batch.documents.push(event.bytes);
        batch.bytes += event.bytes.length;
        if (batch.documents.length >= batchSize || batch.bytes >= batchBytes) await flush();
      } else if (event.kind === "namespace-end") {
        const entry = targetOf(event.namespace);
        if (!entry) continue;
        if (batch?.entry === entry) await flush();
        if (entry.kind === "collection" && !entry.indexesCreated) {
          // Every document of the collection is stored before its indexes are built.
          await inserts.drain();
          await createIndexes(connection, entry);
          entry.indexesCreated = true;
        }
      }
    }
    await flush();
    await inserts.drain();
  } finally {
    // However the loop ended (a damaged archive, a rejected batch, an abort), no insert is still
    // running when the restore reports: what the database holds is then what it keeps.
    await inserts.settle();
  }
  for (const entry of plan.targets.values()) {
    if (entry.kind === "collection" && !entry.indexesCreated) await createIndexes(connection, entry);
  }
  for (const entry of plan.targets.values()) {
    if (entry.kind !== "view") continue;
    const created = await runCommand(
      connection,
      entry.target,
      { create: entry.target.collection, ...createOptions(entry.metadata.options) },
      "creating the view",
      [48],
    );
    if (!created)
      log(
        options.logger,
        "warn",
        `mongodb: the view ${namespaceKey(entry.target)} exists; left as it is (restore with drop to replace it)`,
      );
  }
}

/** The most documents one insert command may carry (the servers' maxWriteBatchSize since MongoDB 3.6). */
export const maximumWriteBatchSize = 100_000;

/**
 * Insert batches in flight by default. bench/mongodb-options.ts on the 100 MiB FerretDB database
 * (2 cores, shared with other work): 1 took 10.6-10.8 s, 2 took 7.0-7.2 s and 4 took 6.9-8.0 s,
 * with less FerretDB CPU time at 2 (4.9 s) than at 1 (6.2 s); memory the same at 2, +20 MiB at 4.
 */
export const defaultInsertsInFlight = 2;

/** Inserts running at once, at most `limit`; the first failure is kept and thrown by the next call. */
interface InsertQueue {
  /** Starts `run` once fewer than `limit` are running; throws the first failure of any earlier insert. */
  add(run: () => Promise<void>): Promise<void>;
  /** Waits for every running insert; throws the first failure. */
  drain(): Promise<void>;
  /** Waits for every running insert, throwing nothing. */
  settle(): Promise<void>;
}

export function insertQueue(limit: number): InsertQueue {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const check = () => {
    if (failure) throw failure.error;
  };
  const settle = async () => {
    while (running.size > 0) await Promise.allSettled([...running]);
  };
  return {
    async add(run) {
      check();
      while (running.size >= Math.max(1, limit)) {
        await Promise.race(running);
        check();
      }
      const started: Promise<void> = run().then(
        () => {
          running.delete(started);
        },
        (error: unknown) => {
          running.delete(started);
          failure ??= { error };
        },
      );
      running.add(started);
    },
    async drain() {
      await settle();
      check();
    },
    settle,
  };
}

/** Inserts one batch of raw documents; a refused document or a damaged one fails the restore. */
async function insert(connection: Connection, entry: RestoreTarget, documents: Buffer[]): Promise<void> {
  const where = namespaceKey(entry.target);
  // The data passed validation when it was written, so a restored validator does not re-judge it.
  const bypassDocumentValidation = entry.metadata.options?.validator !== undefined;
  const database = connection.client.db(entry.target.database);
  if (documentSequenceClass === undefined) {
    await insertDecoded(connection, entry, documents, bypassDocumentValidation);
    return;
  }
  let reply: Awaited<ReturnType<typeof insertRawDocuments>>;
  try {
    reply = await insertRawDocuments(database, entry.target.collection, documents, {
      bypassDocumentValidation,
      sequence: documentSequenceClass,
    });
  } catch (error) {
    // The server may refuse the whole command for one malformed document.
    throw damagedDocument(connection, entry, documents) ?? toMongoError(error, `restore (inserting into ${where})`, connection.url);
  }
  const [first] = reply.writeErrors;
  if (first !== undefined) {
    throw (
      damagedDocument(connection, entry, documents) ??
      toMongoError(
        { name: "MongoBulkWriteError", code: first.code, message: first.message },
        `restore (inserting into ${where} (${reply.writeErrors.length} of ${documents.length} documents rejected))`,
        connection.url,
      )
    );
  }
  if (reply.writeConcernError !== undefined) {
    throw toMongoError(
      { name: "MongoWriteConcernError", code: reply.writeConcernError.code, message: reply.writeConcernError.message },
      `restore (inserting into ${where}: the write concern was not satisfied)`,
      connection.url,
    );
  }
  if (reply.inserted !== documents.length) {
    throw new HoardError(
      "TOOL_FAILED",
      `mongodb: restore (inserting into ${where}) failed: the server stored ${reply.inserted} of ${documents.length} documents and refused none`,
    );
  }
}

/** CORRUPT_ARCHIVE when a document of the batch is not valid BSON, else undefined. */
function damagedDocument(connection: Connection, entry: RestoreTarget, documents: readonly Buffer[]): HoardError | undefined {
  const invalid = firstInvalidDocument(documents, exactBson);
  if (invalid === undefined) return undefined;
  return new HoardError(
    "CORRUPT_ARCHIVE",
    `mongodb: ${connection.name} is damaged: a document of ${namespaceKey(entry.source)} is not valid BSON (${invalid.reason})`,
  );
}

/** The way without the driver's document sequence: decoded documents, sent with insertMany. */
async function insertDecoded(
  connection: Connection,
  entry: RestoreTarget,
  raw: readonly Buffer[],
  bypassDocumentValidation: boolean,
): Promise<void> {
  let documents: Document[];
  try {
    documents = raw.map((bytes) => BSON.deserialize(bytes, exactBson));
  } catch (error) {
    throw damagedDocument(connection, entry, raw) ?? error;
  }
  try {
    await connection.client
      .db(entry.target.database)
      .collection(entry.target.collection)
      // Unordered: the server may apply the batch in any order and reports every rejected document.
      .insertMany(documents, { ordered: false, ...(bypassDocumentValidation ? { bypassDocumentValidation: true } : {}) });
  } catch (error) {
    const rejected = (error as { writeErrors?: unknown[] }).writeErrors?.length;
    const count = rejected ? ` (${rejected} of ${documents.length} documents rejected)` : "";
    throw toMongoError(error, `restore (inserting into ${namespaceKey(entry.target)}${count})`, connection.url);
  }
}

async function createIndexes(connection: Connection, entry: RestoreTarget): Promise<void> {
  const indexes = indexesToCreate(entry.metadata.indexes);
  if (indexes.length === 0) return;
  await runCommand(connection, entry.target, { createIndexes: entry.target.collection, indexes }, "creating indexes on", []);
}

/** Runs a command on the namespace's database; returns false when it failed with one of the tolerated codes. */
async function runCommand(
  connection: Connection,
  namespace: ArchiveNamespace,
  command: Document,
  action: string,
  tolerated: number[],
): Promise<boolean> {
  try {
    await connection.client.db(namespace.database).command(command);
    return true;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "number" && tolerated.includes(code)) return false;
    throw toMongoError(error, `restore (${action} ${namespaceKey(namespace)})`, connection.url);
  }
}
