import { createRequire } from "node:module";
import { describeError, HoardError } from "@hoard/core";
import yargs from "yargs";
import { joinDashedValues, takesValue, UsageError } from "./arguments.js";
import { type CommandSummary, commandSummaries, type LoadedCommand } from "./commands/summaries.js";
import { withGlobalOptions } from "./context.js";
import { debugFromEnvironment } from "./environment.js";
import { InterruptedError } from "./interrupt.js";
import { OutputError } from "./output.js";
import { loadPlugins, secretVariables } from "./plugins.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

const usageCodes = new Set(["INVALID_ARGUMENT", "UNKNOWN_SCHEME"]);

/**
 * Runs one hoard command and returns the exit status: 0 success, 1 the operation failed, 2 the
 * command line was wrong, 130/143 interrupted by SIGINT/SIGTERM. Errors are printed once, here, as
 * one line `hoard: <message>`.
 */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes("--debug") || debugFromEnvironment();
  const json = jsonLogRequested(argv);
  try {
    await loadPlugins();
  } catch (error) {
    return report(error, debug, json);
  }
  const commands = await Promise.all(Object.values(commandSummaries).map((summary) => commandFor(summary, argv)));
  for (const summary of Object.values(commandSummaries)) for (const flag of summary.valueFlags) takesValue(flag);
  let parser = withGlobalOptions(
    yargs(joinDashedValues(argv))
      .scriptName("hoard")
      .usage(
        "$0 <command> [options]\n\nBack up PostgreSQL, MariaDB/MySQL and MongoDB to S3, Google Cloud Storage or a directory, and restore.",
      ),
  );
  for (const command of commands) parser = parser.command(command);
  parser = parser
    .demandCommand(1, "name a command: backup, restore, list, prune, verify, run or config")
    .recommendCommands()
    .strict()
    .exitProcess(false)
    .fail((message, error) => {
      // yargs wraps what an option's check throws into its own YError: that is a usage error too.
      throw error && error.name !== "YError" ? error : new UsageError(error?.message ?? message);
    })
    .help()
    .alias("h", "help")
    .version(version)
    .epilogue(
      "Every option can also be set in the environment as HOARD_<OPTION>: --prefix as HOARD_PREFIX, --s3-endpoint as HOARD_S3_ENDPOINT; " +
        "the command line wins. Other HOARD_* variables are ignored.\n" +
        `Secrets come from the environment, never from flags: ${[
          "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the AWS default chain)",
          "GOOGLE_APPLICATION_CREDENTIALS",
          ...secretVariables(),
        ].join(", ")}, and the database URL from HOARD_DATABASE_URL or --database-url-file instead of the command line.\n` +
        "SIGINT/SIGTERM stop a command and clean up; a second one makes hoard exit after at most 10 s more.\n" +
        "Exit status: 0 success, 1 the operation failed, 2 the command line was wrong, 130/143 interrupted by SIGINT/SIGTERM.",
    )
    .wrap(Math.min(120, process.stdout.columns || 100));
  skipHelpCache(parser);
  try {
    await parser.parseAsync();
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    return report(error, debug, json);
  }
}

/**
 * The command itself when the command line names it (a command is selected by its name as a whole
 * argument), else only its summary: enough for `hoard --help` and "did you mean", without loading
 * the command's options, handler and the modules they import (core's pipelines, the service).
 */
async function commandFor(summary: CommandSummary, argv: readonly string[]): Promise<LoadedCommand> {
  if (argv.includes(summary.name)) return summary.load();
  return {
    command: summary.command,
    describe: summary.describe,
    handler() {
      throw new HoardError("INTERNAL", `the ${summary.name} command ran without being loaded`);
    },
  };
}

/**
 * yargs renders a command's whole `--help` text each time it starts the command's handler, to have
 * it at hand should a later failure show help (`cacheHelpMessage`). hoard's `.fail()` never shows
 * help, and the rendering (wrapping every plugin option's description) cost `hoard restore` 30 ms
 * of CPU, 15% of a small restore. `--help` itself renders afresh and is unchanged. Where yargs'
 * internals differ (another version), yargs caches as before.
 */
function skipHelpCache(parser: object): void {
  const usage = (parser as YargsInternals).getInternalMethods?.().getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage === "function") usage.cacheHelpMessage = () => {};
}

/** The part of yargs' internals {@link skipHelpCache} uses (not in its published types). */
interface YargsInternals {
  getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } | undefined };
}

/** Whether the command line (or HOARD_LOG_FORMAT) asks for JSON logs; read before yargs parses, for errors yargs raises. */
function jsonLogRequested(argv: string[]): boolean {
  const at = argv.lastIndexOf("--log-format");
  const given = argv.findLast((argument) => argument.startsWith("--log-format=")) ?? (at >= 0 ? `=${argv[at + 1]}` : undefined);
  return (given === undefined ? process.env.HOARD_LOG_FORMAT : given.slice(given.indexOf("=") + 1)) === "json";
}

function report(error: unknown, debug: boolean, json: boolean): number {
  // The one line: `hoard: <message>`, or with --log-format json one object like every other log line.
  const line = (message: string, code?: string) =>
    process.stderr.write(
      json
        ? `${JSON.stringify({ time: new Date().toISOString(), level: "error", event: "failed", message, ...(code ? { code } : {}) })}\n`
        : `hoard: ${message}\n`,
    );
  if (error instanceof UsageError) {
    line(error.message, "USAGE");
    return 2;
  }
  if (error instanceof InterruptedError) {
    line(error.message, "INTERRUPTED");
    if (debug) writeDebug(error.cause);
    return error.status;
  }
  if (error instanceof OutputError && error.readerClosed) return 0;
  const message = describeError(error).split("\n")[0] as string;
  line(message, HoardError.isInstance(error) ? error.code : undefined);
  if (debug) writeDebug(error);
  return HoardError.isInstance(error) && usageCodes.has(error.code) ? 2 : 1;
}

function writeDebug(error: unknown): void {
  if (HoardError.isInstance(error) && error.detail) process.stderr.write(`${error.detail.trimEnd()}\n`);
  if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
}
