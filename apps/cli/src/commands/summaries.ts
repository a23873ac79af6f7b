import type { CommandModule } from "yargs";
import type { GlobalArguments } from "../context.js";

/**
 * What hoard knows of a command before loading it: the word that selects it, its usage line and
 * description (all that `hoard --help` and "did you mean" need), and its options that take a
 * number, size or duration (for joinDashedValues, which runs before the command is loaded). The
 * command itself (its options, its handler and what they import) is loaded only when the command
 * line names it.
 */
export interface CommandSummary {
  name: string;
  command: string;
  describe: string;
  valueFlags: readonly string[];
  load: () => Promise<LoadedCommand>;
}

/** A command with its own arguments type forgotten: yargs checks its arguments at run time. */
export type LoadedCommand = CommandModule<GlobalArguments, GlobalArguments>;

function loaded<T>(command: CommandModule<GlobalArguments, T>): LoadedCommand {
  return command as unknown as LoadedCommand;
}

/** Every command, in the order `hoard --help` lists them. */
export const commandSummaries = {
  backup: {
    name: "backup",
    command: "backup [database-url] [storage-url]",
    describe: "Back up a database to storage",
    valueFlags: ["compression-level", "compression-threads", "notify-timeout", "notify-retries"],
    load: async () => loaded((await import("./backup.js")).backupCommand),
  },
  restore: {
    name: "restore",
    command: "restore <backup-url> [database-url]",
    describe: "Restore a backup into a database",
    valueFlags: [],
    load: async () => loaded((await import("./restore.js")).restoreCommand),
  },
  list: {
    name: "list",
    command: "list <storage-url>",
    describe: "List the backups in storage, newest first",
    valueFlags: [],
    load: async () => loaded((await import("./list.js")).listCommand),
  },
  prune: {
    name: "prune",
    command: "prune <storage-url>",
    describe:
      "Delete old backups by a retention policy: restic's forget rules in UTC (a rule with counts left also keeps the oldest backup); never the newest backup",
    valueFlags: [
      "keep-last",
      "keep-hourly",
      "keep-daily",
      "keep-weekly",
      "keep-monthly",
      "keep-yearly",
      "older-than",
      "keep-within",
      "keep-min",
    ],
    load: async () => loaded((await import("./prune.js")).pruneCommand),
  },
  verify: {
    name: "verify",
    command: "verify <backup-url>",
    describe: "Prove a stored backup intact (and with --drill, restorable)",
    valueFlags: [],
    load: async () => loaded((await import("./verify.js")).verifyCommand),
  },
  run: {
    name: "run",
    command: "run",
    describe: "Run every job of a config file on its schedule, with alerts and /metrics, until SIGINT/SIGTERM",
    valueFlags: [],
    load: async () => loaded((await import("./run.js")).runCommand),
  },
  config: {
    name: "config",
    command: "config <command>",
    describe: "Check a config file for hoard run, or print its JSON Schema",
    valueFlags: [],
    load: async () => loaded((await import("./config.js")).configCommand),
  },
} as const satisfies Record<string, CommandSummary>;
