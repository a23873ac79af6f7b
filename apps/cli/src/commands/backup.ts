import {
  type BackupMode,
  type BackupResult,
  backup,
  type CompressionFormat,
  compressionLevels,
  defaultCompression,
  driverPackages,
  HoardError,
  joinKey,
  schedule,
  validateCron,
} from "@hoard/core";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { integerOption, UsageError } from "../arguments.js";
import {
  createLogger,
  driverSettings,
  type GlobalArguments,
  openCliDriver,
  openCliStorage,
  type StorageArguments,
  withDriverOptions,
  withStorageOptions,
} from "../context.js";
import { decryptionFromArguments, encryptionFromArguments, withEncryptionOptions } from "../encryption-options.js";
import { withEnvironment } from "../environment.js";
import { handleSignals, watchInterrupts } from "../interrupt.js";
import { OutputError, writeResult } from "../output.js";
import { createReporter, withReportingOptions } from "../service/reporting.js";
import { type DatabaseUrlArguments, resolveDatabaseUrl, withDatabaseUrlFile } from "./database-url.js";
import { commandSummaries } from "./summaries.js";

interface BackupArguments extends GlobalArguments, StorageArguments, DatabaseUrlArguments {
  databaseUrl?: string;
  storageUrl?: string;
  prefix: string;
  mode: BackupMode;
  cron?: string;
  dumpOption: string[];
  compression?: CompressionFormat;
  compressionLevel?: number;
  compressionThreads?: number;
  verify: boolean;
}

const parseCompressionLevel = integerOption("compression-level", 0);
const parseCompressionThreads = integerOption("compression-threads", 1);

const compressionFormats: readonly CompressionFormat[] = ["gzip", "zstd", "none"];

/** --compression: one of the formats (yargs' own `choices` message takes two lines). */
function parseCompression(value: unknown): CompressionFormat {
  const text = String(Array.isArray(value) ? value.at(-1) : value);
  if (!compressionFormats.includes(text as CompressionFormat)) {
    throw new UsageError(`invalid --compression "${text}": use gzip, zstd or none`);
  }
  return text as CompressionFormat;
}

/** The level, checked against the compression's range (gzip 0-9, zstd 1-19, none takes none); a level alone is the default compression's (zstd). */
function checkCompressionLevel(named: CompressionFormat | undefined, level: number | undefined): void {
  if (level === undefined) return;
  const compression = named ?? defaultCompression;
  if (compression === "none") throw new UsageError("--compression-level needs a compression: --compression none stores the dump as it is");
  const { min, max } = compressionLevels[compression];
  if (level < min || level > max) {
    throw new UsageError(`invalid --compression-level "${level}" for ${compression}: use a whole number from ${min} to ${max}`);
  }
}

function objectUrl(storageUrl: string, key: string): string {
  return `${storageUrl.replace(/\/+$/, "")}/${joinKey(key)}`;
}

/** Prints where the backup went; a stored backup is still named when stdout cannot take it. */
async function reportStored(url: string): Promise<void> {
  try {
    await writeResult(`${url}\n`);
  } catch (error) {
    if (!(error instanceof OutputError) || error.readerClosed) throw error;
    throw new HoardError(
      error.code === "ENOSPC" ? "DISK_FULL" : "INTERNAL",
      `stored ${url}, but could not write it to stdout: ${error.reason}`,
      { cause: error },
    );
  }
}

export const backupCommand: CommandModule<GlobalArguments, BackupArguments> = {
  command: commandSummaries.backup.command,
  describe: commandSummaries.backup.describe,
  builder: (yargs) =>
    withEnvironment(
      withReportingOptions(
        withEncryptionOptions(withDatabaseUrlFile(withDriverOptions(withStorageOptions(yargs as Argv<GlobalArguments>)))),
      )
        .usage(
          "$0 backup <database-url> <storage-url>\n$0 backup <storage-url>    with HOARD_DATABASE_URL or --database-url-file\n\nBack up a database to storage",
        )
        .positional("database-url", {
          type: "string",
          describe: `${Object.keys(driverPackages)
            .map((scheme) => `${scheme}://`)
            .join(", ")} URL`,
        })
        .positional("storage-url", { type: "string", describe: "s3://bucket/prefix, gs://bucket/prefix, file:///dir or a path" })
        .option("prefix", { type: "string", default: "backup", describe: "backups are named <prefix>-<yyyyMMddHHmmss>.<ext>" })
        .option("mode", {
          choices: ["stream", "file"] as const,
          default: "stream" as BackupMode,
          describe: "stream: no temporary file; file: dump to disk, then upload",
        })
        .option("verify", {
          type: "boolean",
          default: false,
          describe:
            "re-read the stored backup and verify it (checksum, decompression, archive structure); if that fails, the backup and its manifest are removed and the command fails",
        })
        .option("cron", { type: "string", describe: "run on this cron schedule (UTC) until SIGINT/SIGTERM" })
        .option("dump-option", {
          type: "string",
          array: true,
          default: [] as string[],
          describe: "argument passed to the dump tool (repeatable)",
        })
        .option("compression", {
          type: "string",
          coerce: parseCompression,
          describe:
            "zstd (.zst, the default: Node.js's own zstd where it has one, else the zstd program), gzip (.gz) or none (the dump as it is); unset, a dump its tool compressed already (--pg-jobs) is stored as it is",
        })
        .option("compression-level", {
          type: "string",
          coerce: parseCompressionLevel,
          describe:
            "zstd 1 to 19 (unset: level 3 with a minimum match of 6 bytes, smaller than zstd 3 on dumps); gzip 0 (stored) to 9 (smallest), default 6; alone, the level of zstd",
        })
        .option("compression-threads", {
          type: "string",
          coerce: parseCompressionThreads,
          describe:
            "blocks compressed at the same time (default: the cores, at most 3 unless UV_THREADPOOL_SIZE is raised); 1 leaves the other cores to the database",
        })
        .example("$0 backup postgresql://postgres@localhost/shop ./backups", "back up to a local directory")
        .example("$0 backup postgresql://postgres@localhost/shop ./backups --compression zstd", "compress with zstd (.dump.zst)")
        .example(
          "$0 backup postgresql://app@db/shop s3://backups/shop --prefix nightly",
          "back up to S3 (credentials from the AWS environment)",
        )
        .example("HOARD_DATABASE_URL=postgresql://app:secret@db/shop $0 backup s3://backups/shop", "keep the password out of `ps`")
        .example("$0 backup mariadb://root@db/shop gs://backups/shop --cron '0 3 * * *'", "back up every night at 03:00 UTC"),
    ) as unknown as Argv<BackupArguments>,
  async handler(args: ArgumentsCamelCase<BackupArguments>) {
    // One argument is the storage URL (the database URL then comes from the environment or a file).
    const given = [args.databaseUrl, args.storageUrl].filter((url): url is string => url !== undefined);
    const storageUrl = given.at(-1);
    if (storageUrl === undefined) throw new UsageError("name the storage: hoard backup <database-url> <storage-url>");
    const databaseUrl = await resolveDatabaseUrl(given.length === 2 ? given[0] : undefined, args);
    if (args.cron) validateCron(args.cron);
    checkCompressionLevel(args.compression, args.compressionLevel);
    const logger = createLogger(args);
    const encryption = await encryptionFromArguments(args);
    // For --verify of a backup encrypted to public keys: an identity from the environment (HOARD_AGE_IDENTITY), if any.
    const decryption = args.verify ? await decryptionFromArguments(args) : undefined;
    const reporter = createReporter(args, args.prefix, logger);

    if (!args.cron) {
      const interrupt = watchInterrupts();
      try {
        const work = async () => {
          const storage = await openCliStorage(storageUrl, args);
          const driver = await openCliDriver(databaseUrl, driverSettings(args, logger, { dumpOptions: args.dumpOption }));
          return backup({
            driver,
            storage,
            prefix: args.prefix,
            mode: args.mode,
            compression: args.compression,
            compressionLevel: args.compressionLevel,
            compressionThreads: args.compressionThreads,
            encryption,
            verify: args.verify,
            decryption,
            logger,
            signal: interrupt.signal,
          });
        };
        await reporter.started();
        let result: BackupResult;
        try {
          result = await interrupt.run(work(), { waitForCleanup: true, state: () => "nothing was stored" });
        } catch (error) {
          await reporter.failed(error);
          throw error;
        }
        logger.finish();
        await reporter.succeeded({ url: objectUrl(storageUrl, result.key), size: result.size, durationMs: result.durationMs });
        await reportStored(objectUrl(storageUrl, result.key));
      } finally {
        interrupt.dispose();
        logger.finish();
      }
      return;
    }

    const storage = await openCliStorage(storageUrl, args);
    const driver = await openCliDriver(databaseUrl, driverSettings(args, logger, { dumpOptions: args.dumpOption }));
    let failures = 0;
    const scheduled = schedule({
      expression: args.cron,
      run: async (signal: AbortSignal): Promise<BackupResult> => {
        await reporter.started();
        return backup({
          driver,
          storage,
          prefix: args.prefix,
          mode: args.mode,
          compression: args.compression,
          compressionLevel: args.compressionLevel,
          compressionThreads: args.compressionThreads,
          encryption,
          verify: args.verify,
          decryption,
          logger,
          signal,
        });
      },
      onResult: (result) => {
        void reporter.succeeded({ url: objectUrl(storageUrl, result.key), size: result.size, durationMs: result.durationMs });
        reportStored(objectUrl(storageUrl, result.key)).catch((error: unknown) => {
          if (error instanceof OutputError) return;
          failures += 1;
          logger.event({ type: "log", level: "warn", message: (error as Error).message });
        });
      },
      onError: (error) => {
        void reporter.failed(error);
        failures += 1;
        logger.event({ type: "log", level: "warn", message: `scheduled backup failed: ${(error as Error).message}` });
      },
      logger,
    });
    logger.event({ type: "log", level: "info", message: `scheduled backups on "${args.cron}" (UTC); SIGINT or SIGTERM stops` });
    let signals = 0;
    const onSignal = (name: NodeJS.Signals) => {
      signals += 1;
      const abort = signals > 1;
      logger.event({
        type: "log",
        level: "info",
        message: abort
          ? `${name} again: aborting the running backup`
          : `${name} received: stopping after the running backup (send again to abort it)`,
      });
      void scheduled.stop({ abort });
    };
    const release = handleSignals(onSignal);
    await scheduled.stopped;
    release();
    logger.finish();
    if (failures > 0) process.exitCode = 1;
  },
};
