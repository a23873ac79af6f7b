import { createRequire } from "node:module";
import { describeError, HoardError } from "@hoard/core";
import yargs from "yargs";
import { backupCommand } from "./commands/backup.js";
import { listCommand } from "./commands/list.js";
import { pruneCommand } from "./commands/prune.js";
import { restoreCommand } from "./commands/restore.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** The command line was wrong: exit status 2. */
class UsageError extends Error {}

const usageCodes = new Set(["INVALID_ARGUMENT", "UNKNOWN_SCHEME"]);

/**
 * Runs one hoard command and returns the exit status: 0 success, 1 the operation failed, 2 the
 * command line was wrong. Errors are printed once, here, as `hoard: <message>`.
 */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug") || /^(1|true)$/i.test(process.env.HOARD_DEBUG ?? "");
  const parser = yargs(argv)
    .scriptName("hoard")
    .usage(
      "$0 <command> [options]\n\nBack up PostgreSQL, MariaDB/MySQL and MongoDB to S3, Google Cloud Storage or a directory, and restore.",
    )
    .env("HOARD")
    .option("debug", { type: "boolean", default: false, describe: "show tool output and stack traces", global: true })
    .option("quiet", { type: "boolean", default: false, describe: "log nothing to stderr but errors", global: true })
    .command(backupCommand)
    .command(restoreCommand)
    .command(listCommand)
    .command(pruneCommand)
    .demandCommand(1, "name a command: backup, restore, list or prune")
    .recommendCommands()
    .strict()
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError(message);
    })
    .help()
    .alias("h", "help")
    .version(version)
    .epilogue(
      "Every option can also be set as an environment variable: --prefix as HOARD_PREFIX, --s3-endpoint as HOARD_S3_ENDPOINT.\n" +
        "Credentials come from the environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the AWS default chain), " +
        "GOOGLE_APPLICATION_CREDENTIALS or HOARD_GCS_CLIENT_EMAIL/HOARD_GCS_PRIVATE_KEY, and passwords inside database URLs.\n" +
        "Exit status: 0 success, 1 the operation failed, 2 the command line was wrong.",
    )
    .wrap(Math.min(120, process.stdout.columns || 100));
  try {
    await parser.parseAsync();
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    return report(error, debug);
  }
}

function report(error: unknown, debug: boolean): number {
  if (error instanceof UsageError) {
    process.stderr.write(`hoard: ${error.message}\nRun 'hoard --help' for usage.\n`);
    return 2;
  }
  const message = describeError(error).split("\n")[0];
  process.stderr.write(`hoard: ${message}\n`);
  if (debug) {
    if (HoardError.isInstance(error) && error.detail) process.stderr.write(`${error.detail.trimEnd()}\n`);
    if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  }
  return HoardError.isInstance(error) && usageCodes.has(error.code) ? 2 : 1;
}
