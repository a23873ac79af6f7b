import { parseDuration, prune, type RetentionPolicy } from "@hoard/core";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { createLogger, type GlobalArguments, openCliStorage, type StorageArguments, withStorageOptions } from "../context.js";
import { formatBytes, formatTable } from "../output.js";

interface PruneArguments extends GlobalArguments, StorageArguments {
  storageUrl: string;
  prefix: string;
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  olderThan?: string;
  dryRun: boolean;
  json: boolean;
}

export const pruneCommand: CommandModule<GlobalArguments, PruneArguments> = {
  command: "prune <storage-url>",
  describe: "Delete old backups by a retention policy (restic's forget rules, UTC)",
  builder: (yargs) =>
    withStorageOptions(yargs as Argv<GlobalArguments>)
      .positional("storage-url", { type: "string", demandOption: true })
      .option("prefix", { type: "string", default: "backup", describe: "only backups named <prefix>-<timestamp>.<ext> are considered" })
      .option("keep-last", { type: "number", describe: "keep the N newest backups" })
      .option("keep-hourly", { type: "number", describe: "keep the newest backup of each of the last N hours that have one" })
      .option("keep-daily", { type: "number", describe: "... of each of the last N days" })
      .option("keep-weekly", { type: "number", describe: "... of each of the last N ISO weeks" })
      .option("keep-monthly", { type: "number", describe: "... of each of the last N months" })
      .option("keep-yearly", { type: "number", describe: "... of each of the last N years" })
      .option("older-than", { type: "string", describe: "only delete backups older than this, e.g. 30d, 12h, 2w" })
      .option("dry-run", { type: "boolean", default: false, describe: "print the plan, delete nothing" })
      .option("json", { type: "boolean", default: false, describe: "print the plan as JSON" })
      .example("$0 prune s3://backups/shop --keep-daily 7 --keep-weekly 4 --keep-monthly 12", "a classic rotation")
      .example("$0 prune ./backups --older-than 30d --dry-run", "what would go") as unknown as Argv<PruneArguments>,
  async handler(args: ArgumentsCamelCase<PruneArguments>) {
    const logger = createLogger(args);
    const policy: RetentionPolicy = {
      keepLast: args.keepLast,
      keepHourly: args.keepHourly,
      keepDaily: args.keepDaily,
      keepWeekly: args.keepWeekly,
      keepMonthly: args.keepMonthly,
      keepYearly: args.keepYearly,
      olderThanMs: args.olderThan === undefined ? undefined : parseDuration(args.olderThan),
    };
    const storage = await openCliStorage(args.storageUrl, args);
    const result = await prune({ storage, policy, prefix: args.prefix, dryRun: args.dryRun, logger });
    logger.finish();
    const rows = [
      ...result.keep.map(({ backup, reasons }) => ({ action: "keep", backup, reasons })),
      ...result.remove.map(({ backup, reasons }) => ({ action: args.dryRun ? "would delete" : "deleted", backup, reasons })),
    ].sort((a, b) => b.backup.time.getTime() - a.backup.time.getTime());
    if (args.json) {
      const plan = rows.map(({ action, backup, reasons }) => ({
        action: action === "keep" ? "keep" : "delete",
        key: backup.key,
        time: backup.time.toISOString(),
        size: backup.size,
        reasons,
      }));
      process.stdout.write(`${JSON.stringify({ dryRun: result.dryRun, backups: plan }, null, 2)}\n`);
      return;
    }
    const table = rows.map(({ action, backup, reasons }) => [action, backup.key, formatBytes(backup.size), reasons.join(",")]);
    process.stdout.write(`${formatTable(["ACTION", "KEY", "SIZE", "KEPT BY"], table)}\n`);
  },
};
