import type { HoardError } from "@hoard/core";
import { describeFound, targetNotEmpty as notEmpty } from "@hoard/core/plugin";
import { MongoClient, type MongoClientOptions } from "mongodb";
import { connectionTimeouts, serverSelectionTimeout } from "./connection-string.js";
import { type MongoErrorContext, toMongoError } from "./errors.js";

/** How the built-in engine connects. */
export interface ConnectOptions {
  url: string;
  /** Applied as serverSelectionTimeoutMS and connectTimeoutMS unless the URL or `clientOptions` set them. */
  connectTimeoutMs: number;
  clientOptions?: MongoClientOptions;
}

/** A MongoClient (not yet connected) with hoard's timeouts, and what to say when no server answers. */
export function createClient(options: ConnectOptions): { client: MongoClient; context: MongoErrorContext } {
  const client = new MongoClient(options.url, {
    appName: "hoard",
    ...connectionTimeouts(options.url, options.connectTimeoutMs),
    ...options.clientOptions,
  });
  return { client, context: { timeoutMs: selectionTimeout(options) } };
}

function selectionTimeout(options: ConnectOptions): number {
  const own = options.clientOptions?.serverSelectionTimeoutMS;
  return typeof own === "number" ? own : serverSelectionTimeout(options.url, options.connectTimeoutMs);
}

/** What a target database already holds. */
export interface OccupiedDatabase {
  database: string;
  /** Collections and views, system collections left out. */
  collections: string[];
}

/** The databases among `databases` that hold any collection or view other than system ones. */
export async function occupiedDatabases(client: MongoClient, databases: Iterable<string>): Promise<OccupiedDatabase[]> {
  const occupied: OccupiedDatabase[] = [];
  for (const database of new Set(databases)) {
    const infos = await client.db(database).listCollections({}, { nameOnly: true, authorizedCollections: true }).toArray();
    const collections = infos
      .map((info) => info.name)
      .filter((name) => !name.startsWith("system."))
      .sort();
    if (collections.length > 0) occupied.push({ database, collections });
  }
  return occupied;
}

/** TARGET_NOT_EMPTY naming each occupied database, how many collections it holds and one of them. */
export function targetNotEmpty(occupied: readonly OccupiedDatabase[]): HoardError {
  const found = ({ collections }: OccupiedDatabase) =>
    describeFound([{ kind: "collection", count: collections.length, examples: collections }], { examples: 1, nameTheOnlyOne: true });
  if (occupied.length === 1) {
    const only = occupied[0] as OccupiedDatabase;
    return notEmpty("mongodb", only.database, found(only));
  }
  const shown = occupied.slice(0, 3).map((database) => `${database.database} (${found(database)})`);
  const more = occupied.length > 3 ? ` and ${occupied.length - 3} more database(s)` : "";
  return notEmpty("mongodb", `${shown.join(", ")}${more}`, undefined, true);
}

/**
 * Fails with TARGET_NOT_EMPTY when any of `databases` holds a collection or view (system
 * collections aside), before anything is changed. Connects on its own (used before mongorestore).
 */
export async function ensureEmptyTargets(options: ConnectOptions, databases: readonly string[]): Promise<void> {
  const { client, context } = createClient(options);
  try {
    await client.connect();
    const occupied = await occupiedDatabases(client, databases);
    if (occupied.length > 0) throw targetNotEmpty(occupied);
  } catch (error) {
    throw toMongoError(error, "restore (checking the target)", options.url, context);
  } finally {
    await client.close().catch(() => {});
  }
}
