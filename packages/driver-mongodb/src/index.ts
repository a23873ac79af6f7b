import type { Readable } from "node:stream";
import {
  type Driver,
  type DriverSettings,
  type DumpContext,
  type DumpOutput,
  defaultNetworkTimeoutMs,
  findExecutable,
  HoardError,
  type Logger,
  log,
  type RestoreContext,
  type RestoreInput,
  requireExecutable,
} from "@hoard/core";
import { MongoClient, type MongoClientOptions } from "mongodb";
import type { ArchiveCollectionMetadata } from "./archive-format.js";
import { peekPrelude } from "./archive-reader.js";
import { builtinDump } from "./builtin-dump.js";
import { builtinRestore } from "./builtin-restore.js";
import { ensureEmptyTargets } from "./client.js";
import { decompressByContent } from "./compression.js";
import { invalidMongoUrl, parseMongoUrl, redactMongoUrl, scrubSecrets } from "./connection-string.js";
import {
  choosesNamespaces,
  createPlannedIndexes,
  ferretdbIndexIssue,
  planIndexes,
  recordPrelude,
  rejectedIndexNamespace,
} from "./ferretdb.js";
import { expectCollections, toolDump, toolRestore } from "./tools.js";

/** Short name used in messages and by the registry. */
export const DRIVER_NAME = "mongodb";

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
  /** Built-in engine: extra options for the MongoClient (e.g. `serverSelectionTimeoutMS`); the URL's own options apply too. */
  clientOptions?: MongoClientOptions;
  logger?: Logger;
}

const engines: readonly MongoEngine[] = ["auto", "tools", "builtin"];

/**
 * Checks a connection string with hoard's parser, then with the official driver's (which knows
 * every URI option and its values); INVALID_ARGUMENT without the password when either refuses it.
 */
export function validateMongoUrl(url: string): void {
  parseMongoUrl(url);
  try {
    // Parses the URL and its options; nothing connects until connect() is called.
    new MongoClient(url);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw invalidMongoUrl(url, scrubSecrets(reason, url), error);
  }
}

/** Creates the MongoDB driver. Nothing connects until `dump` or `restore` is called. */
export function createMongoDriver(options: MongoDriverOptions): Driver {
  validateMongoUrl(options.url);
  const engine = options.engine ?? "auto";
  if (!engines.includes(engine)) {
    throw new HoardError("INVALID_ARGUMENT", `mongodb: unknown engine "${String(engine)}": use auto, tools or builtin`);
  }
  const dumpOptions = options.dumpOptions ?? [];
  const restoreOptions = options.restoreOptions ?? [];
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new HoardError("INVALID_ARGUMENT", `mongodb: batchSize must be a positive integer, not ${batchSize}`);
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? defaultNetworkTimeoutMs;
  if (!Number.isFinite(connectTimeoutMs) || connectTimeoutMs <= 0) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `mongodb: connectTimeoutMs must be a positive number of milliseconds, not ${connectTimeoutMs}`,
    );
  }
  const mongodump = options.mongodumpPath ?? "mongodump";
  const mongorestore = options.mongorestorePath ?? "mongorestore";

  /** The executable to use, or undefined for the built-in engine. */
  const chooseTool = async (executable: string, logger: Logger | undefined): Promise<string | undefined> => {
    if (engine === "builtin") return undefined;
    if (engine === "tools") {
      return requireExecutable([executable], 'install the MongoDB Database Tools, or use the built-in engine (engine: "builtin")');
    }
    const found = await findExecutable([executable]);
    log(logger, "info", found ? `mongodb: using ${found}` : `mongodb: ${executable} not found on PATH; using the built-in engine`);
    return found;
  };

  return {
    name: DRIVER_NAME,
    url: redactMongoUrl(options.url),
    extension: "archive",

    async dump(dump: DumpContext): Promise<DumpOutput> {
      const logger = dump.logger ?? options.logger;
      const executable = await chooseTool(mongodump, logger);
      if (executable) {
        log(logger, "debug", `mongodb: engine tools: the backup is written by ${executable} --archive (engine setting: ${engine})`);
        const output = await toolDump({
          executable,
          url: options.url,
          connectTimeoutMs,
          workDirectory: dump.workDirectory,
          logger,
          signal: dump.signal,
          dumpOptions,
        });
        const database = parseMongoUrl(options.url).database;
        const stream = database === undefined ? output : expectCollections(output, database, options.url, logger);
        return { kind: "stream", stream };
      }
      if (dumpOptions.length > 0) {
        throw new HoardError(
          "INVALID_ARGUMENT",
          `mongodb: the built-in engine takes no dump options (${dumpOptions.join(" ")}); install mongodump to use them`,
        );
      }
      log(logger, "debug", `mongodb: engine builtin: the backup is written by hoard's built-in engine (engine setting: ${engine})`);
      const stream = await builtinDump({
        url: options.url,
        batchSize,
        logger,
        signal: dump.signal,
        connectTimeoutMs,
        clientOptions: options.clientOptions,
      });
      return { kind: "stream", stream };
    },

    async restore(input: RestoreInput, restore: RestoreContext): Promise<void> {
      const logger = restore.logger ?? options.logger;
      if (input.kind !== "stream") {
        throw new HoardError("UNSUPPORTED_FORMAT", "mongodb: restores a mongodump archive (a single file), not a directory");
      }
      const name = input.path ?? "the archive";
      // Restore over the target: asked by restore({ replace }), or by the older drop options.
      const replace = (restore.replace ?? false) || (options.drop ?? false) || restoreOptions.includes("--drop");
      const executable = await chooseTool(mongorestore, logger);
      if (executable) {
        log(logger, "debug", `mongodb: engine tools: ${executable} --archive restores ${name} (engine setting: ${engine})`);
        let stream: Readable = (await decompressByContent(input.stream, name)).stream;
        try {
          const database = parseMongoUrl(options.url).database;
          let prelude: ArchiveCollectionMetadata[] | undefined;
          if (!replace) {
            // The URL's database, else those the archive names (read from its prelude, which is replayed to mongorestore).
            let databases: string[];
            if (database !== undefined) databases = [database];
            else {
              const peeked = await peekPrelude(stream, { name });
              stream = peeked.stream;
              prelude = peeked.collections;
              databases = prelude
                .filter((collection) => collection.database !== "" && !collection.collection.startsWith("system."))
                .map((collection) => collection.database);
            }
            await ensureEmptyTargets({ url: options.url, connectTimeoutMs, clientOptions: options.clientOptions }, databases);
          }
          // Keeps the prelude as the archive goes by (a few kilobytes, read once), for the FerretDB index workaround.
          const recorder = prelude === undefined ? recordPrelude(stream, name) : undefined;
          if (recorder) stream = recorder.stream;
          try {
            await toolRestore(stream, {
              executable,
              url: options.url,
              connectTimeoutMs,
              workDirectory: restore.workDirectory,
              logger,
              signal: restore.signal,
              drop: replace,
              restoreOptions,
            });
          } catch (error) {
            if (!rejectedIndexNamespace(error) || choosesNamespaces(restoreOptions)) throw error;
            const collections = prelude ?? (await recorder?.prelude());
            if (collections === undefined) throw error;
            // mongorestore builds indexes last (mongorestore.go Restore: data, users and roles, oplog, then
            // RestoreIndexes): every document is in, only the indexes are missing. Create them as the built-in engine does.
            const plans = planIndexes(collections, database, name);
            log(
              logger,
              "warn",
              `mongodb: the server rejected the ns field that mongorestore adds to index specs (as FerretDB v1 does, ${ferretdbIndexIssue}); mongorestore restored every document, so hoard creates the archive's indexes itself`,
            );
            await createPlannedIndexes({ url: options.url, connectTimeoutMs, clientOptions: options.clientOptions, logger }, plans);
          }
        } finally {
          stream.destroy();
        }
        return;
      }
      const unknown = restoreOptions.filter((option) => option !== "--drop");
      if (unknown.length > 0) {
        throw new HoardError(
          "INVALID_ARGUMENT",
          `mongodb: the built-in engine understands only --drop, not ${unknown.join(" ")}; install mongorestore to use them`,
        );
      }
      log(logger, "debug", `mongodb: engine builtin: hoard's built-in engine restores ${name} (engine setting: ${engine})`);
      await builtinRestore(input.stream, {
        url: options.url,
        drop: replace,
        connectTimeoutMs,
        batchSize,
        name,
        logger,
        signal: restore.signal,
        clientOptions: options.clientOptions,
      });
    },
  };
}

/** Settings of {@link createDriverFromUrl}: core's, plus the engine. */
export interface MongoDriverSettings extends DriverSettings {
  /**
   * Which engine dumps and restores: `auto`, `tools` or `builtin` (the CLI sets it from
   * HOARD_MONGODB_ENGINE; this library reads no environment variable). @default "auto"
   */
  engine?: MongoEngine;
}

/** The registry's entry point for `mongodb://` and `mongodb+srv://` URLs. */
export function createDriverFromUrl(url: string, settings: MongoDriverSettings = {}): Driver {
  return createMongoDriver({
    url,
    engine: settings.engine,
    dumpOptions: settings.dumpOptions,
    restoreOptions: settings.restoreOptions,
    logger: settings.logger,
    connectTimeoutMs: settings.connectTimeoutMs,
  });
}
