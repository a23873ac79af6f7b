import type { DriverSettings, Logger } from "@hoard/core";
import { readDriverSettings } from "@hoard/core/plugin";
import type { MongoClientOptions } from "mongodb";
import { settings } from "./settings.js";

/**
 * How the driver dumps and restores:
 * - `tools`: `mongodump --archive` / `mongorestore --archive` (MongoDB Database Tools), required;
 * - `builtin`: the driver's own engine on the official `mongodb` package, writing and reading the
 *   same archive format;
 * - `auto`: the tools when they are on PATH, else the built-in engine.
 */
export type MongoEngine = "auto" | "tools" | "builtin";

/** Options of {@link createMongoDriver}. */
export interface MongoDriverOptions {
  /**
   * `mongodb://[user:password@]host[:port][,host...]/[database][?options]` or `mongodb+srv://...`.
   * With a database, dump and restore that database; without one, dump every database except
   * admin, config and local, and restore each into the database the archive names.
   */
  url: string;
  /** Which engine dumps and restores. @default "auto" */
  engine?: MongoEngine;
  /**
   * Extra arguments for mongodump, passed through as they are. The built-in engine takes none and
   * fails when given any. @default []
   */
  dumpOptions?: string[];
  /**
   * Extra arguments for mongorestore, passed through as they are. The built-in engine understands
   * only `--drop` and fails on anything else. @default []
   */
  restoreOptions?: string[];
  /**
   * Drop every collection and view of the archive before restoring it (mongorestore `--drop`), as
   * `restore({ replace: true })` does; so does `--drop` among `restoreOptions`. @default false
   */
  drop?: boolean;
  /**
   * How long to wait, in milliseconds, for the server to accept a connection and answer: the
   * MongoDB options serverSelectionTimeoutMS and connectTimeoutMS, for the built-in engine and in
   * the URI given to the tools, unless the URL sets them itself. A host that accepts TCP and never
   * answers fails with UNREACHABLE naming host:port after about this long.
   * @default defaultNetworkTimeoutMs (15 000)
   */
  connectTimeoutMs?: number;
  /** The mongodump executable: a name looked up on PATH or a path. @default "mongodump" */
  mongodumpPath?: string;
  /** The mongorestore executable: a name looked up on PATH or a path. @default "mongorestore" */
  mongorestorePath?: string;
  /** Built-in engine: documents per cursor batch when dumping and per insert when restoring. @default 1000 */
  batchSize?: number;
  /**
   * Built-in engine: collections dumped at once, their segments interleaved in the archive as
   * mongodump's --numParallelCollections does (mongorestore reads the archive's count and restores
   * at least that many collections at once). Each costs one cursor batch and one chunk of memory.
   * @default 1
   */
  parallelCollections?: number;
  /**
   * Built-in engine: insert batches sent to the server before the first of them is answered when
   * restoring, so the server works on one batch while it receives the next (FerretDB on
   * PostgreSQL: one stores while the other is decoded). Each costs up to one batch of memory
   * (batchSize documents, at most 8 MiB). A capped collection is always restored one batch at a
   * time, in order. Tools engine: mongorestore's `--numInsertionWorkersPerCollection` (unless the
   * restore options set it or `--maintainInsertionOrder`), 1 when the archive holds a capped
   * collection. @default 2
   */
  insertsInFlight?: number;
  /** Built-in engine: extra options for the MongoClient (e.g. `serverSelectionTimeoutMS`); the URL's own options apply too. */
  clientOptions?: MongoClientOptions;
  logger?: Logger;
}

/** Settings of {@link createDriverFromUrl}: core's, plus the engine. */
export interface MongoDriverSettings extends DriverSettings {
  /**
   * Which engine dumps and restores: `auto`, `tools` or `builtin`, as text or typed (the CLI sets
   * it from `--mongodb-engine` or HOARD_MONGODB_ENGINE; this library reads no environment
   * variable). @default "auto"
   */
  mongodbEngine?: MongoEngine | string;
  /** @deprecated The same as `mongodbEngine`, its name before; taken when `mongodbEngine` is not set. */
  engine?: MongoEngine;
}

/** The driver's options for a URL and a settings bag (the registry's and the CLI's way in). */
export function optionsFromSettings(url: string, bag: MongoDriverSettings = {}): MongoDriverOptions {
  const { common, values } = readDriverSettings(settings, bag);
  const declared = bag.mongodbEngine;
  // The older key, for one release: as it was, so its value is checked by createMongoDriver as before.
  const legacy = (declared === undefined || declared === "") && bag.engine !== undefined;
  return { url, ...common, engine: legacy ? bag.engine : (values.mongodbEngine as MongoEngine | undefined) };
}
