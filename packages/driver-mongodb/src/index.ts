import {
  type Driver,
  type DriverSettings,
  type DumpContext,
  type DumpOutput,
  findExecutable,
  HoardError,
  type Logger,
  log,
  type RestoreContext,
  type RestoreInput,
  redactUrl,
  requireExecutable,
} from "@hoard/core";
import type { MongoClientOptions } from "mongodb";
import { builtinDump } from "./builtin-dump.js";
import { builtinRestore } from "./builtin-restore.js";
import { decompressByContent } from "./compression.js";
import { parseMongoUrl } from "./connection-string.js";
import { toolDump, toolRestore } from "./tools.js";

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
  /** Drop every collection and view of the archive before restoring it (mongorestore `--drop`). @default false */
  drop?: boolean;
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

/** Creates the MongoDB driver. Nothing connects until `dump` or `restore` is called. */
export function createMongoDriver(options: MongoDriverOptions): Driver {
  parseMongoUrl(options.url);
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
    url: redactUrl(options.url),
    extension: "archive",

    async dump(dump: DumpContext): Promise<DumpOutput> {
      const logger = dump.logger ?? options.logger;
      const executable = await chooseTool(mongodump, logger);
      if (executable) {
        const stream = await toolDump({
          executable,
          url: options.url,
          workDirectory: dump.workDirectory,
          logger,
          signal: dump.signal,
          dumpOptions,
        });
        return { kind: "stream", stream };
      }
      if (dumpOptions.length > 0) {
        throw new HoardError(
          "INVALID_ARGUMENT",
          `mongodb: the built-in engine takes no dump options (${dumpOptions.join(" ")}); install mongodump to use them`,
        );
      }
      const stream = await builtinDump({ url: options.url, batchSize, logger, signal: dump.signal, clientOptions: options.clientOptions });
      return { kind: "stream", stream };
    },

    async restore(input: RestoreInput, restore: RestoreContext): Promise<void> {
      const logger = restore.logger ?? options.logger;
      if (input.kind !== "stream") {
        throw new HoardError("UNSUPPORTED_FORMAT", "mongodb: restores a mongodump archive (a single file), not a directory");
      }
      const name = input.path ?? "the archive";
      const executable = await chooseTool(mongorestore, logger);
      if (executable) {
        const { stream } = await decompressByContent(input.stream, name);
        try {
          await toolRestore(stream, {
            executable,
            url: options.url,
            workDirectory: restore.workDirectory,
            logger,
            signal: restore.signal,
            drop: options.drop ?? false,
            restoreOptions,
          });
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
      await builtinRestore(input.stream, {
        url: options.url,
        drop: (options.drop ?? false) || restoreOptions.includes("--drop"),
        batchSize,
        name,
        logger,
        signal: restore.signal,
        clientOptions: options.clientOptions,
      });
    },
  };
}

/**
 * The registry's entry point for `mongodb://` and `mongodb+srv://` URLs. The engine comes from the
 * environment variable HOARD_MONGODB_ENGINE (auto, tools or builtin) when set, else auto.
 */
export function createDriverFromUrl(url: string, settings: DriverSettings = {}): Driver {
  const fromEnvironment = process.env.HOARD_MONGODB_ENGINE;
  const engine = fromEnvironment === undefined || fromEnvironment === "" ? "auto" : (fromEnvironment as MongoEngine);
  return createMongoDriver({
    url,
    engine,
    dumpOptions: settings.dumpOptions,
    restoreOptions: settings.restoreOptions,
    logger: settings.logger,
  });
}
