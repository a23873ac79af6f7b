import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import {
  type ArchiveCheck,
  type DumpDescription,
  HoardError,
  type Inventory,
  type InventoryItem,
  type Logger,
  type ScratchDatabase,
} from "@hoard/core";
import { log, runTool } from "@hoard/core/plugin";
import type { Document, MongoClient } from "mongodb";
import { type ArchiveCollectionMetadata, type ArchiveNamespace, namespaceKey } from "./archive-format.js";
import { readArchive } from "./archive-reader.js";
import { skippedDatabases } from "./builtin-dump.js";
import { type ConnectOptions, createClient, occupiedDatabases, targetNotEmpty } from "./client.js";
import { decompressByContent } from "./compression.js";
import { parseMongoUrl } from "./connection-string.js";
import { toMongoError } from "./errors.js";

/** What the manifest names as the built-in engine. */
export const builtinEngineName = "hoard built-in engine";

let packageVersion: string | undefined;

/** The version of @hoard/driver-mongodb (the built-in engine's version), from its package.json. */
export function builtinEngineVersion(): string {
  packageVersion ??= (createRequire(import.meta.url)("../package.json") as { version: string }).version;
  return packageVersion;
}

/** Runs `work` with a connected client; the driver's errors become HoardErrors naming `action`. */
async function withConnection<T>(options: ConnectOptions, action: string, work: (client: MongoClient) => Promise<T>): Promise<T> {
  const { client, context } = createClient(options);
  try {
    await client.connect();
    return await work(client);
  } catch (error) {
    throw toMongoError(error, action, options.url, context);
  } finally {
    await client.close().catch(() => {});
  }
}

/**
 * The server as it describes itself (buildInfo). FerretDB answers with the MongoDB version it
 * imitates (7.0.77 for v1.24) and adds `ferretdbVersion`: it is named as FerretDB with its own
 * version, since what it can store is FerretDB's, not MongoDB 7.0's.
 */
export function serverOf(buildInfo: Document): { product: string; version: string } {
  const version = typeof buildInfo.version === "string" ? buildInfo.version : "unknown";
  if (typeof buildInfo.ferretdbVersion === "string") {
    return { product: "FerretDB", version: buildInfo.ferretdbVersion.replace(/^v/, "") };
  }
  return { product: "MongoDB", version };
}

/** mongodump's own version, from `mongodump --version` (`mongodump version: 100.18.0-21-g8fa3cfc82`). */
export async function toolVersion(executable: string, label: string, logger: Logger | undefined): Promise<string> {
  const output = await runTool(executable, { label, args: ["--version"], logger });
  const match = new RegExp(`^${label} version: (\\S+)`, "m").exec(output);
  if (!match?.[1]) throw new HoardError("TOOL_FAILED", `mongodb: ${label} --version did not name its version`);
  return match[1];
}

/** The server's product and version, and what writes the dump: mongodump (`executable`) or the built-in engine. */
export async function describeDump(
  options: ConnectOptions & { executable: string | undefined; logger?: Logger | undefined },
): Promise<DumpDescription> {
  const buildInfo = await withConnection(options, "describe", (client) => client.db("admin").command({ buildInfo: 1 }));
  const server = serverOf(buildInfo);
  const tool =
    options.executable === undefined
      ? { name: builtinEngineName, version: builtinEngineVersion() }
      : { name: "mongodump", version: await toolVersion(options.executable, "mongodump", options.logger) };
  const reported = server.product === "MongoDB" ? "" : ` (it reports MongoDB ${String(buildInfo.version)})`;
  log(
    options.logger,
    "debug",
    `mongodb: server ${server.product} ${server.version}${reported}; the dump is written by ${tool.name} ${tool.version}${options.executable ? ` (${options.executable})` : ""}`,
  );
  return { server, tool };
}

/** Collections the inventories leave out, as both engines' dumps do: system collections (but system.js). */
function isListed(name: string): boolean {
  return name === "system.js" || !name.startsWith("system.");
}

/** What {@link estimatedCount} needs of a collection. */
export interface CountableCollection {
  aggregate(pipeline: Document[]): { toArray(): Promise<Document[]> };
  estimatedDocumentCount(): Promise<number>;
}

/**
 * A collection's document count from its metadata, without reading the documents: the `count` of
 * a `$collStats` stage (summed over the shards of a sharded collection, which answer one each).
 * MongoDB answers it from the same metadata as estimatedDocumentCount; FerretDB v1 from its
 * PostgreSQL table, where the `count` command that estimatedDocumentCount sends reads and decodes
 * every document (4.2 s for one 36,000-document collection of the benchmark database, about as
 * long as dumping it: docs/benchmarks-mariadb-mongodb.md). When the stage is refused (a server
 * without it, a user without the collStats action, the Stable API in strict mode), estimatedDocumentCount.
 */
export async function estimatedCount(collection: CountableCollection): Promise<number> {
  let stats: Document[];
  try {
    stats = await collection.aggregate([{ $collStats: { count: {} } }]).toArray();
  } catch {
    return collection.estimatedDocumentCount();
  }
  const counts = stats.map((entry) => Number(entry.count));
  if (counts.length === 0 || counts.some((count) => !Number.isSafeInteger(count) || count < 0)) {
    return collection.estimatedDocumentCount();
  }
  return counts.reduce((total, count) => total + count, 0);
}

/**
 * The collections and views of the URL's database (of every database but admin, config and local
 * when it names none), with their document counts: estimated from the collections' metadata
 * ({@link estimatedCount}, no scan) unless `exact` asks for `countDocuments`, which reads every
 * document. A backup asks for estimates: mongodump is no point-in-time snapshot, so counts taken
 * before it cannot be exact for the dump anyway, and a scan would read the database twice.
 */
export async function databaseInventory(options: ConnectOptions & { exact: boolean }): Promise<Inventory> {
  const named = parseMongoUrl(options.url).database;
  return withConnection(options, "inventory", async (client) => {
    const databases =
      named !== undefined
        ? [named]
        : (await client.db("admin").admin().listDatabases({ nameOnly: true })).databases
            .map((entry) => entry.name)
            .filter((name) => !skippedDatabases.includes(name))
            .sort();
    const items: InventoryItem[] = [];
    for (const database of databases) {
      const infos = await client.db(database).listCollections({}, { authorizedCollections: true }).toArray();
      for (const info of infos.filter((entry) => isListed(entry.name)).sort((a, b) => a.name.localeCompare(b.name))) {
        if (info.type === "view") {
          items.push({ database, name: info.name, kind: "view" });
          continue;
        }
        const collection = client.db(database).collection(info.name);
        // Time-series collections count measurements, which no archive holds as documents: no count.
        const count =
          info.type === "timeseries" ? undefined : options.exact ? await collection.countDocuments({}) : await estimatedCount(collection);
        items.push({ database, name: info.name, kind: "collection", ...(count !== undefined && { count }) });
      }
    }
    return { items, exactCounts: options.exact };
  });
}

/** Namespaces an archive inventory leaves out: the oplog, users and roles, system collections (but system.js). */
function isInventoried(namespace: ArchiveNamespace): boolean {
  return namespace.database !== "" && !namespace.collection.startsWith("$admin.") && isListed(namespace.collection);
}

/**
 * Reads a whole archive (plain, or compressed by content as `mongodump --gzip` writes it) with
 * hoard's reader: the magic number, the header, every block's lengths and terminators, every
 * namespace's CRC-64, and that every namespace announced or opened was closed. Returns a summary
 * and the exact number of documents of each collection. Memory stays at one document; damage
 * fails with CORRUPT_ARCHIVE (a stream that is no archive: UNSUPPORTED_FORMAT).
 */
export async function checkArchiveStream(input: Readable, name: string): Promise<ArchiveCheck> {
  const decompressed = await decompressByContent(input, name);
  let prelude: { toolVersion: string; serverVersion: string; formatVersion: string; collections: ArchiveCollectionMetadata[] } | undefined;
  const counts = new Map<string, { namespace: ArchiveNamespace; count: number }>();
  let documents = 0;
  let namespaces = 0;
  for await (const event of readArchive(decompressed.stream, { name })) {
    if (event.kind === "prelude") {
      prelude = { ...event.header, collections: event.collections };
    } else if (event.kind === "document") {
      documents++;
      const key = namespaceKey(event.namespace);
      const entry = counts.get(key);
      if (entry) entry.count++;
      else counts.set(key, { namespace: event.namespace, count: 1 });
    } else {
      namespaces++;
    }
  }
  if (!prelude) throw new HoardError("CORRUPT_ARCHIVE", `mongodb: ${name} has no prelude`);
  const items: InventoryItem[] = [];
  const listed = new Set<string>();
  for (const collection of prelude.collections) {
    const namespace = { database: collection.database, collection: collection.collection };
    if (!isInventoried(namespace)) continue;
    const key = namespaceKey(namespace);
    listed.add(key);
    if (collection.type === "view") items.push({ database: namespace.database, name: namespace.collection, kind: "view" });
    else if (collection.type === "timeseries") items.push({ database: namespace.database, name: namespace.collection, kind: "collection" });
    else items.push({ database: namespace.database, name: namespace.collection, kind: "collection", count: counts.get(key)?.count ?? 0 });
  }
  // Data without metadata (an archive of another tool): counted all the same.
  for (const [key, { namespace, count }] of counts) {
    if (!listed.has(key) && isInventoried(namespace) && !namespace.collection.startsWith("system.buckets.")) {
      items.push({ database: namespace.database, name: namespace.collection, kind: "collection", count });
    }
  }
  items.sort((a, b) => `${a.database}.${a.name}`.localeCompare(`${b.database}.${b.name}`));
  const views = items.filter((item) => item.kind === "view").length;
  const compressed = decompressed.layers.length > 0 ? `, ${decompressed.layers.join(" and ")} inside` : "";
  const summary = `mongodump archive (format ${prelude.formatVersion || "unknown"}, written by ${prelude.toolVersion || "an unnamed tool"} from server ${prelude.serverVersion || "unknown"}${compressed}): ${items.length - views} collection(s), ${views} view(s), ${documents} document(s) in ${namespaces} namespace(s), every CRC-64 matches`;
  return { summary, inventory: { items, exactCounts: true } };
}

/**
 * Makes the URL's database ready for a restore drill: a database that does not exist is accepted
 * as it is (MongoDB creates it on the first write) and `created` is true, so `release` drops it; an
 * existing one must hold no collection or view (system collections aside), else TARGET_NOT_EMPTY,
 * and `release` leaves it alone. Only this one database is ever looked at or dropped.
 */
export async function prepareScratchDatabase(options: ConnectOptions): Promise<ScratchDatabase> {
  const database = parseMongoUrl(options.url).database;
  if (database === undefined) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      "mongodb: a restore drill needs the scratch database's name in the URL (mongodb://host/scratch)",
    );
  }
  if (skippedDatabases.includes(database)) {
    throw new HoardError("INVALID_ARGUMENT", `mongodb: ${database} is a system database, not a scratch database for a restore drill`);
  }
  const exists = await withConnection(options, "preparing the scratch database", async (client) => {
    const occupied = await occupiedDatabases(client, [database]);
    if (occupied.length > 0) throw targetNotEmpty(occupied);
    const listed = await client.db("admin").admin().listDatabases({ nameOnly: true });
    return listed.databases.some((entry) => entry.name === database);
  });
  return {
    created: !exists,
    release: async () => {
      if (exists) return;
      await withConnection(options, `dropping the scratch database ${database}`, async (client) => {
        await client.db(database).dropDatabase();
      });
    },
  };
}
