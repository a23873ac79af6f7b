import { HoardError, type HoardEvent, restore, splitObjectUrl } from "@hoard/core";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
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
import { decryptionFromArguments, withDecryptionOptions } from "../encryption-options.js";
import { withEnvironment } from "../environment.js";
import { watchInterrupts } from "../interrupt.js";
import { writeResult } from "../output.js";
import { type DatabaseUrlArguments, resolveDatabaseUrl, withDatabaseUrlFile } from "./database-url.js";
import { commandSummaries } from "./summaries.js";

interface RestoreArguments extends GlobalArguments, StorageArguments, DatabaseUrlArguments {
  backupUrl: string;
  databaseUrl?: string;
  latest: boolean;
  prefix: string;
  mode: "stream" | "file";
  restoreOption: string[];
  replace: boolean;
}

export const restoreCommand: CommandModule<GlobalArguments, RestoreArguments> = {
  command: commandSummaries.restore.command,
  describe: commandSummaries.restore.describe,
  builder: (yargs) =>
    withEnvironment(
      withDecryptionOptions(withDatabaseUrlFile(withDriverOptions(withStorageOptions(yargs as Argv<GlobalArguments>))))
        .positional("backup-url", { type: "string", demandOption: true, describe: "the backup object, or with --latest the storage URL" })
        .positional("database-url", {
          type: "string",
          describe: "the database to restore into (or HOARD_DATABASE_URL, or --database-url-file)",
        })
        .option("latest", { type: "boolean", default: false, describe: "restore the newest backup with --prefix under the storage URL" })
        .option("prefix", { type: "string", default: "backup", describe: "with --latest: which backups to consider" })
        .option("mode", {
          choices: ["stream", "file"] as const,
          default: "stream" as const,
          describe: "file: download completely before restoring",
        })
        .option("replace", {
          type: "boolean",
          default: false,
          describe: "restore into a database that already holds data: what the backup contains is dropped and replaced",
        })
        .option("restore-option", {
          type: "string",
          array: true,
          default: [] as string[],
          describe: "argument passed to the restore tool (repeatable)",
        })
        .example("$0 restore ./backups/backup-20261125030000.dump.gz postgresql://postgres@localhost/shop_copy", "restore one backup")
        .example("$0 restore s3://backups/shop --latest postgresql://app@db/shop", "restore the newest backup")
        .example("$0 restore s3://backups/shop --latest --database-url-file /run/secrets/db", "the database URL from a file"),
    ) as unknown as Argv<RestoreArguments>,
  async handler(args: ArgumentsCamelCase<RestoreArguments>) {
    const location = args.latest ? { storageUrl: args.backupUrl, key: undefined } : splitObjectUrl(args.backupUrl);
    if (!args.latest && !location.key) throw new HoardError("INVALID_ARGUMENT", "name a backup object, or a storage URL with --latest");
    const databaseUrl = await resolveDatabaseUrl(args.databaseUrl, args);
    const logger = createLogger(args);
    const decryption = await decryptionFromArguments(args);
    let touched = false;
    let target = "the database";
    const watching = {
      event: (event: HoardEvent) => {
        if (event.type === "restore-started") touched = true;
        logger.event(event);
      },
    };
    const interrupt = watchInterrupts();
    try {
      const work = async () => {
        const storage = await openCliStorage(location.storageUrl, args);
        const driver = await openCliDriver(databaseUrl, driverSettings(args, watching, { restoreOptions: args.restoreOption }));
        target = driver.url;
        return restore({
          driver,
          storage,
          key: location.key,
          latest: args.latest ? { prefix: args.prefix } : undefined,
          mode: args.mode,
          replace: args.replace,
          decryption,
          logger: watching,
          signal: interrupt.signal,
        });
      };
      const result = await interrupt.run(work(), {
        waitForCleanup: true,
        state: () => (touched ? `${target} may be partly restored` : `${target} was not changed`),
      });
      logger.finish();
      await writeResult(`${result.key}\n`);
    } finally {
      interrupt.dispose();
      logger.finish();
    }
  },
};
