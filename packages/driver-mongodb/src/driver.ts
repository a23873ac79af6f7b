import { pipeline, type Readable } from "node:stream";
import {
  type ArchiveCheck,
  type Driver,
  type DumpContext,
  type DumpDescription,
  type DumpOutput,
  HoardError,
  type InspectContext,
  type Inventory,
  type Logger,
  type RestoreContext,
  type RestoreInput,
  type ScratchDatabase,
} from "@hoard/core";
import { connectTimeoutMsOf, findExecutable, locateTool, log } from "@hoard/core/plugin";
import { MongoClient } from "mongodb";
import type { ArchiveCollectionMetadata } from "./archive-format.js";
import { damagedRestoreError, guardArchive } from "./archive-guard.js";
import { peekPrelude } from "./archive-reader.js";
import { builtinDump } from "./builtin-dump.js";
import { builtinRestore, defaultInsertsInFlight } from "./builtin-restore.js";
import { ensureEmptyTargets } from "./client.js";
import { decompressByContent } from "./compression.js";
import { invalidMongoUrl, parseMongoUrl, redactMongoUrl, scrubSecrets } from "./connection-string.js";
import { choosesNamespaces, createPlannedIndexes, ferretdbIndexIssue, planIndexes, rejectedIndexNamespace } from "./ferretdb.js";
import { checkArchiveStream, databaseInventory, describeDump, prepareScratchDatabase } from "./inspect.js";
import { type MongoDriverOptions, type MongoDriverSettings, type MongoEngine, optionsFromSettings } from "./options.js";
import { mongoEngines } from "./settings.js";
import { expectCollections, insertionWorkers, toolDump, toolRestore } from "./tools.js";

/** Short name used in messages and by the registry. */
export const DRIVER_NAME = "mongodb";

const engines: readonly MongoEngine[] = mongoEngines;

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
  const connectTimeoutMs = connectTimeoutMsOf("mongodb", options.connectTimeoutMs);
  const parallelCollections = wholeNumberOption("parallelCollections", options.parallelCollections, 1);
  const insertsInFlight = wholeNumberOption("insertsInFlight", options.insertsInFlight, defaultInsertsInFlight);

  /** The executable to use, or undefined for the built-in engine. */
  const chooseTool = async (
    tool: "mongodump" | "mongorestore",
    logger: Logger | undefined,
    level: "info" | "debug" = "info",
  ): Promise<string | undefined> => {
    if (engine === "builtin") return undefined;
    const option = tool === "mongodump" ? "mongodumpPath" : "mongorestorePath";
    const configured = options[option];
    if (engine === "tools") {
      const hint =
        'install the MongoDB Database Tools, or use the built-in engine (--mongodb-engine builtin, or engine: "builtin" in the driver options)';
      return locateTool("mongodb", { configured, names: [tool], hint, option });
    }
    const executable = configured ?? tool;
    const found = await findExecutable([executable]);
    log(logger, level, found ? `mongodb: using ${found}` : `mongodb: ${executable} not found on PATH; using the built-in engine`);
    return found;
  };

  const connection = { url: options.url, connectTimeoutMs, clientOptions: options.clientOptions };

  return {
    name: DRIVER_NAME,
    url: redactMongoUrl(options.url),
    extension: "archive",

    async describe(inspect: InspectContext): Promise<DumpDescription> {
      const logger = inspect.logger ?? options.logger;
      // The same choice dump makes next (logged at info there).
      const executable = await chooseTool("mongodump", logger, "debug");
      return describeDump({ ...connection, executable, logger });
    },

    inventory(inspect: InspectContext): Promise<Inventory> {
      return databaseInventory({ ...connection, exact: inspect.exactCounts ?? false });
    },

    async checkArchive(input: RestoreInput, _inspect: InspectContext): Promise<ArchiveCheck> {
      if (input.kind !== "stream") {
        throw new HoardError("UNSUPPORTED_FORMAT", "mongodb: checks a mongodump archive (a single file), not a directory");
      }
      return checkArchiveStream(input.stream, input.path ?? "the archive");
    },

    prepareScratch(_inspect: InspectContext): Promise<ScratchDatabase> {
      return prepareScratchDatabase(connection);
    },

    async dump(dump: DumpContext): Promise<DumpOutput> {
      const logger = dump.logger ?? options.logger;
      const executable = await chooseTool("mongodump", logger);
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
        parallelCollections,
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
      const executable = await chooseTool("mongorestore", logger);
      if (executable) {
        log(logger, "debug", `mongodb: engine tools: ${executable} --archive restores ${name} (engine setting: ${engine})`);
        let stream: Readable = (await decompressByContent(input.stream, name)).stream;
        try {
          const database = parseMongoUrl(options.url).database;
          // The prelude (replayed to mongorestore) names the databases to check when the URL names
          // none, and says whether a capped collection rules out a second insertion worker.
          let prelude: ArchiveCollectionMetadata[];
          try {
            const peeked = await peekPrelude(stream, { name });
            stream = peeked.stream;
            prelude = peeked.collections;
          } catch (error) {
            if (!HoardError.isInstance(error)) throw error;
            throw new HoardError(error.code, `${error.message}; mongorestore was not started: the database was not changed`, {
              cause: error,
            });
          }
          if (!replace) {
            const databases =
              database !== undefined
                ? [database]
                : prelude
                    .filter((collection) => collection.database !== "" && !collection.collection.startsWith("system."))
                    .map((collection) => collection.database);
            await ensureEmptyTargets({ url: options.url, connectTimeoutMs, clientOptions: options.clientOptions }, databases);
          }
          // mongorestore gets the archive only as hoard's reader checks it, and never its end when it is damaged.
          const guard = guardArchive({ name });
          const checked = pipeline(stream, guard.stream, () => {});
          try {
            await toolRestore(checked, {
              executable,
              url: options.url,
              connectTimeoutMs,
              workDirectory: restore.workDirectory,
              logger,
              signal: restore.signal,
              drop: replace,
              restoreOptions,
              insertionWorkers: insertionWorkers(prelude, insertsInFlight, name),
            });
          } catch (error) {
            if (guard.failure() !== undefined && !restore.signal?.aborted) {
              throw await damagedRestoreError(guard, { ...connection, renamesNamespaces: choosesNamespaces(restoreOptions) });
            }
            if (!rejectedIndexNamespace(error) || choosesNamespaces(restoreOptions)) throw error;
            // mongorestore builds indexes last (mongorestore.go Restore: data, users and roles, oplog, then
            // RestoreIndexes): every document is in, only the indexes are missing. Create them as the built-in engine does.
            const plans = planIndexes(prelude, database, name);
            log(
              logger,
              "warn",
              `mongodb: the server rejected the ns field that mongorestore adds to index specs (as FerretDB v1 does, ${ferretdbIndexIssue}); mongorestore restored every document, so hoard creates the archive's indexes itself`,
            );
            await createPlannedIndexes({ ...connection, logger }, plans);
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
        insertsInFlight,
        name,
        logger,
        signal: restore.signal,
        clientOptions: options.clientOptions,
      });
    },
  };
}

/** A whole-number option of at least 1 (at most 64), or its default; INVALID_ARGUMENT otherwise. */
function wholeNumberOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > 64) {
    throw new HoardError("INVALID_ARGUMENT", `mongodb: ${name} must be a whole number from 1 to 64, not ${value}`);
  }
  return value;
}

/** The registry's entry point for `mongodb://` and `mongodb+srv://` URLs, with the settings bag of the CLI or a config file. */
export function createDriverFromUrl(url: string, settings: MongoDriverSettings = {}): Driver {
  return createMongoDriver(optionsFromSettings(url, settings));
}
