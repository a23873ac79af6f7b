import { describeRetentionRule, type HoardEvent, prune, type RetentionPolicy } from "@hoard/core";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { durationOption, integerOption, UsageError } from "../arguments.js";
import { createLogger, type GlobalArguments, openCliStorage, type StorageArguments, withStorageOptions } from "../context.js";
import { withEnvironment } from "../environment.js";
import { watchInterrupts } from "../interrupt.js";
import { formatBytes, formatTable, writeResult } from "../output.js";
import { commandSummaries } from "./summaries.js";

interface PruneArguments extends GlobalArguments, StorageArguments {
  storageUrl: string;
  prefix: string;
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** Milliseconds. */
  olderThan?: number;
  /** Milliseconds; the same rule as `olderThan`, under restic's name. */
  keepWithin?: number;
  keepMin?: number;
  allowDeleteAll: boolean;
  dryRun: boolean;
  json: boolean;
}

const keepOptions = {
  "keep-last": "keep the N newest backups",
  "keep-hourly": "keep the newest backup of each of the last N hours that have one",
  "keep-daily": "... of each of the last N days",
  "keep-weekly": "... of each of the last N ISO weeks",
  "keep-monthly": "... of each of the last N months",
  "keep-yearly": "... of each of the last N years",
};
const keepParsers = Object.fromEntries(Object.keys(keepOptions).map((flag) => [flag, integerOption(flag, 1)]));
const parseOlderThan = durationOption("older-than");
const parseKeepWithin = durationOption("keep-within");
const parseKeepMin = integerOption("keep-min", 1);

export const pruneCommand: CommandModule<GlobalArguments, PruneArguments> = {
  command: commandSummaries.prune.command,
  describe: commandSummaries.prune.describe,
  builder: (yargs) => {
    let built = withStorageOptions(yargs as Argv<GlobalArguments>)
      .positional("storage-url", { type: "string", demandOption: true })
      .option("prefix", { type: "string", default: "backup", describe: "only backups named <prefix>-<timestamp>.<ext> are considered" });
    for (const [flag, describe] of Object.entries(keepOptions)) {
      built = built.option(flag, { type: "string", coerce: keepParsers[flag], describe });
    }
    return withEnvironment(
      built
        .option("older-than", {
          type: "string",
          coerce: parseOlderThan,
          describe:
            "only delete backups at least this much older than the NEWEST backup of the prefix (restic's --keep-within: measured from the newest backup, not from now), e.g. 30d, 12h, 2w",
        })
        .option("keep-within", { type: "string", coerce: parseKeepWithin, describe: "the same as --older-than, under restic's name" })
        .option("keep-min", {
          type: "string",
          coerce: parseKeepMin,
          describe: "never delete the N newest backups, whatever the policy says [default: 1, the newest is always kept]",
        })
        .option("allow-delete-all", {
          type: "boolean",
          default: false,
          describe:
            "lift the floor: let the policy delete the newest backup too; with no --keep-*/--older-than, delete every backup of the prefix",
        })
        .option("dry-run", { type: "boolean", default: false, describe: "print the plan, delete nothing" })
        .option("json", { type: "boolean", default: false, describe: "print the plan as JSON" })
        .example("$0 prune s3://backups/shop --keep-daily 7 --keep-weekly 4 --keep-monthly 12", "a classic rotation")
        .example(
          "$0 prune ./backups --older-than 30d --keep-min 3 --dry-run",
          "what would go: backups more than 30 days older than the newest, keeping at least 3",
        )
        .example("$0 prune ./backups --prefix retired-db --allow-delete-all --dry-run", "what retiring a prefix would delete"),
    ) as unknown as Argv<PruneArguments>;
  },
  async handler(args: ArgumentsCamelCase<PruneArguments>) {
    if (args.olderThan !== undefined && args.keepWithin !== undefined) {
      throw new UsageError("--older-than and --keep-within are the same rule: give one of them");
    }
    const logger = createLogger(args);
    const policy: RetentionPolicy = {
      keepLast: args.keepLast,
      keepHourly: args.keepHourly,
      keepDaily: args.keepDaily,
      keepWeekly: args.keepWeekly,
      keepMonthly: args.keepMonthly,
      keepYearly: args.keepYearly,
      olderThanMs: args.olderThan ?? args.keepWithin,
      keepMin: args.keepMin,
      allowDeleteAll: args.allowDeleteAll,
    };
    let deleted = 0;
    const counting = {
      event(event: HoardEvent) {
        if (event.type === "deleted") deleted += 1;
        logger.event(event);
      },
    };
    const interrupt = watchInterrupts();
    try {
      const work = async () => {
        const storage = await openCliStorage(args.storageUrl, args);
        return prune({ storage, policy, prefix: args.prefix, dryRun: args.dryRun, logger: counting, signal: interrupt.signal });
      };
      const result = await interrupt.run(work(), {
        waitForCleanup: false,
        state: () =>
          deleted === 0
            ? "nothing was deleted"
            : `deleted ${deleted} backup${deleted === 1 ? "" : "s"} before stopping; the others are kept`,
      });
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
          companions: backup.companions ?? [],
        }));
        const swept = result.swept.map(({ key, kind, startedAt }) => ({ key, kind, startedAt: startedAt?.toISOString() }));
        await writeResult(`${JSON.stringify({ dryRun: result.dryRun, backups: plan, swept }, null, 2)}\n`);
        return;
      }
      // A removed backup's companions (its .sha256, its manifest) go with it: show them under it.
      const table = rows.flatMap(({ action, backup, reasons }) => [
        [action, backup.key, formatBytes(backup.size), reasons.map(describeRetentionRule).join(",")],
        ...(action === "keep" ? [] : (backup.companions ?? []).map((companion) => [action, companion, "", `(with ${backup.key})`])),
      ]);
      await writeResult(`${formatTable(["ACTION", "KEY", "SIZE", "KEPT BY"], table)}\n`);
    } finally {
      interrupt.dispose();
      logger.finish();
    }
  },
};
