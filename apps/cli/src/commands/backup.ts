import { type BackupMode, type BackupResult, backup, joinKey, schedule, validateCron } from "@hoard/core";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import {
  createLogger,
  type GlobalArguments,
  interruptSignal,
  openCliDriver,
  openCliStorage,
  type StorageArguments,
  withStorageOptions,
} from "../context.js";

interface BackupArguments extends GlobalArguments, StorageArguments {
  databaseUrl: string;
  storageUrl: string;
  prefix: string;
  mode: BackupMode;
  cron?: string;
  dumpOption: string[];
  compressionLevel: number;
}

function objectUrl(storageUrl: string, key: string): string {
  return `${storageUrl.replace(/\/+$/, "")}/${joinKey(key)}`;
}

export const backupCommand: CommandModule<GlobalArguments, BackupArguments> = {
  command: "backup <database-url> <storage-url>",
  describe: "Back up a database to storage",
  builder: (yargs) =>
    withStorageOptions(yargs as Argv<GlobalArguments>)
      .positional("database-url", { type: "string", demandOption: true, describe: "postgresql://, mariadb://, mysql://, mongodb:// URL" })
      .positional("storage-url", {
        type: "string",
        demandOption: true,
        describe: "s3://bucket/prefix, gs://bucket/prefix, file:///dir or a path",
      })
      .option("prefix", { type: "string", default: "backup", describe: "backups are named <prefix>-<yyyyMMddHHmmss>.<ext>" })
      .option("mode", {
        choices: ["stream", "file"] as const,
        default: "stream" as BackupMode,
        describe: "stream: no temporary file; file: dump to disk, then upload",
      })
      .option("cron", { type: "string", describe: "run on this cron schedule (UTC) until SIGINT/SIGTERM" })
      .option("dump-option", {
        type: "string",
        array: true,
        default: [] as string[],
        describe: "argument passed to the dump tool (repeatable)",
      })
      .option("compression-level", { type: "number", default: 6, describe: "gzip level, 1 (fast) to 9 (small)" })
      .example("$0 backup postgresql://postgres@localhost/shop ./backups", "back up to a local directory")
      .example(
        "$0 backup postgresql://app@db/shop s3://backups/shop --prefix nightly",
        "back up to S3 (credentials from the AWS environment)",
      )
      .example(
        "$0 backup mariadb://root@db/shop gs://backups/shop --cron '0 3 * * *'",
        "back up every night at 03:00 UTC",
      ) as unknown as Argv<BackupArguments>,
  async handler(args: ArgumentsCamelCase<BackupArguments>) {
    const logger = createLogger(args);
    if (args.cron) validateCron(args.cron);
    const storage = await openCliStorage(args.storageUrl, args);
    const driver = await openCliDriver(args.databaseUrl, { dumpOptions: args.dumpOption, logger });
    const once = (signal: AbortSignal): Promise<BackupResult> =>
      backup({ driver, storage, prefix: args.prefix, mode: args.mode, compressionLevel: args.compressionLevel, logger, signal });
    const report = (result: BackupResult) => process.stdout.write(`${objectUrl(args.storageUrl, result.key)}\n`);

    if (!args.cron) {
      const interrupt = interruptSignal(logger);
      try {
        report(await once(interrupt.signal));
      } finally {
        interrupt.dispose();
        logger.finish();
      }
      return;
    }

    let failures = 0;
    const scheduled = schedule({
      expression: args.cron,
      run: once,
      onResult: report,
      onError: (error) => {
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
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    await scheduled.stopped;
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    logger.finish();
    if (failures > 0) process.exitCode = 1;
  },
};
