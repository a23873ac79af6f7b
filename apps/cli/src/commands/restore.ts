import { HoardError, restore, splitObjectUrl } from "@hoard/core";
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

interface RestoreArguments extends GlobalArguments, StorageArguments {
  backupUrl: string;
  databaseUrl: string;
  latest: boolean;
  prefix: string;
  mode: "stream" | "file";
  restoreOption: string[];
}

export const restoreCommand: CommandModule<GlobalArguments, RestoreArguments> = {
  command: "restore <backup-url> <database-url>",
  describe: "Restore a backup into a database",
  builder: (yargs) =>
    withStorageOptions(yargs as Argv<GlobalArguments>)
      .positional("backup-url", { type: "string", demandOption: true, describe: "the backup object, or with --latest the storage URL" })
      .positional("database-url", { type: "string", demandOption: true, describe: "the database to restore into" })
      .option("latest", { type: "boolean", default: false, describe: "restore the newest backup with --prefix under the storage URL" })
      .option("prefix", { type: "string", default: "backup", describe: "with --latest: which backups to consider" })
      .option("mode", {
        choices: ["stream", "file"] as const,
        default: "stream" as const,
        describe: "file: download completely before restoring",
      })
      .option("restore-option", {
        type: "string",
        array: true,
        default: [] as string[],
        describe: "argument passed to the restore tool (repeatable)",
      })
      .example("$0 restore ./backups/backup-20261125030000.dump.gz postgresql://postgres@localhost/shop_copy", "restore one backup")
      .example(
        "$0 restore s3://backups/shop --latest postgresql://app@db/shop",
        "restore the newest backup",
      ) as unknown as Argv<RestoreArguments>,
  async handler(args: ArgumentsCamelCase<RestoreArguments>) {
    const logger = createLogger(args);
    const location = args.latest ? { storageUrl: args.backupUrl, key: undefined } : splitObjectUrl(args.backupUrl);
    if (!args.latest && !location.key) throw new HoardError("INVALID_ARGUMENT", "name a backup object, or a storage URL with --latest");
    const storage = await openCliStorage(location.storageUrl, args);
    const driver = await openCliDriver(args.databaseUrl, { restoreOptions: args.restoreOption, logger });
    const interrupt = interruptSignal(logger);
    try {
      const result = await restore({
        driver,
        storage,
        key: location.key,
        latest: args.latest ? { prefix: args.prefix } : undefined,
        mode: args.mode,
        logger,
        signal: interrupt.signal,
      });
      process.stdout.write(`${result.key}\n`);
    } finally {
      interrupt.dispose();
      logger.finish();
    }
  },
};
