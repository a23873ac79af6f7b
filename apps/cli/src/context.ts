import {
  type Driver,
  type DriverSettings,
  HoardError,
  type Logger,
  openDriver,
  openStorage,
  redactUrl,
  type Storage,
  type StorageSettings,
} from "@hoard/core";
import type { Argv } from "yargs";
import { ignoredVariables } from "./environment.js";
import { type CliLogger, createFormatLogger, type LogFormat, logFormats, quietLogger } from "./output.js";
import { importFromCli, pluginSettingsBag, skippedPlugins, withCommonOptions, withPluginOptions } from "./plugins.js";

/** Options every command has. */
export interface GlobalArguments {
  debug: boolean;
  quiet: boolean;
  /** `text` (default) or `json`: one JSON object per line on stderr. */
  logFormat: LogFormat;
  /** Milliseconds, from `--timeout 15s` (hoard's common setting `timeoutMs`). */
  timeout: number;
}

export function withGlobalOptions<T>(yargs: Argv<T>): Argv<T & GlobalArguments> {
  // --timeout is declared by hoard (commonSettings), so its type is known here, not to yargs.
  return withCommonOptions(
    yargs
      .option("debug", { type: "boolean", default: false, describe: "show tool output and stack traces", global: true })
      .option("quiet", { type: "boolean", default: false, describe: "log nothing to stderr but errors", global: true })
      .option("log-format", {
        choices: logFormats,
        default: "text" as LogFormat,
        describe: "stderr's log lines: text for people, json for one object per line (time, level, job, event, fields)",
        global: true,
      }),
  ) as unknown as Argv<T & GlobalArguments>;
}

/** The storages' settings, as the plugins declare them; yargs gives them by flag (`s3-part-size`). */
export type StorageArguments = Record<string, unknown>;

/** The storage plugins' options, one group per plugin, shared by every command. */
export function withStorageOptions<T>(yargs: Argv<T>) {
  return withPluginOptions(yargs, "storage");
}

/** The driver plugins' options, for the commands that open a database. */
export function withDriverOptions<T>(yargs: Argv<T>) {
  return withPluginOptions(yargs, "driver");
}

/** The one settings bag every storage gets: the common `timeoutMs` and the storages' declared settings. */
export function storageSettings(args: StorageArguments & Pick<GlobalArguments, "timeout">): StorageSettings {
  return { timeoutMs: args.timeout, ...pluginSettingsBag("storage", args) };
}

export function createLogger(
  args: Pick<GlobalArguments, "debug" | "quiet"> & Partial<Pick<GlobalArguments, "logFormat">>,
  options: { job?: string; redact?: (text: string) => string; progress?: boolean } = {},
): CliLogger {
  if (args.quiet) return quietLogger;
  const format = args.logFormat ?? "text";
  const logger = createFormatLogger(format, {
    debug: args.debug,
    progress: format === "text" && (options.progress ?? true) && process.stderr.isTTY === true,
    job: options.job,
    redact: options.redact,
  });
  for (const name of skippedPlugins()) {
    logger.event({ type: "log", level: "debug", message: `plugin options: ${name}` });
  }
  for (const name of ignoredVariables()) {
    logger.event({ type: "log", level: "debug", message: `ignoring ${name}: no option of this command and not a variable hoard reads` });
  }
  return logger;
}

/**
 * Opens the storage before any work starts. A URL or setting the plugin cannot make sense of is a
 * usage error (exit 2), whatever the plugin threw, and the message never repeats a secret.
 */
export async function openCliStorage(url: string, args: StorageArguments & Pick<GlobalArguments, "timeout">): Promise<Storage> {
  return openStorageWith(url, storageSettings(args));
}

/** Opens a storage with a settings bag by setting name (a config file's job), with the same error rules. */
export async function openStorageWith(url: string, settings: StorageSettings): Promise<Storage> {
  try {
    return await openStorage(url, settings, importFromCli);
  } catch (error) {
    throw openingError(error, "storage", url);
  }
}

/**
 * The one settings bag every driver gets: the drivers' declared settings from the command line and
 * the environment, the command's own (dump or restore options), the logger, and `--timeout` as
 * `connectTimeoutMs`.
 */
export function driverSettings(
  args: StorageArguments & Pick<GlobalArguments, "timeout">,
  logger: Logger,
  settings: DriverSettings,
): DriverSettings {
  return { ...pluginSettingsBag("driver", args), ...settings, logger, connectTimeoutMs: args.timeout };
}

export async function openCliDriver(url: string, settings: DriverSettings): Promise<Driver> {
  try {
    return await openDriver(url, settings, importFromCli);
  } catch (error) {
    throw openingError(error, "database", url);
  }
}

/** HoardErrors stand (the plugin wrote them for the user); anything else (a URIError, a TypeError) means the URL is malformed. */
function openingError(error: unknown, what: "storage" | "database", url: string): unknown {
  if (HoardError.isInstance(error)) return error;
  const reason = error instanceof URIError ? "bad percent-encoding" : "it does not parse";
  return new HoardError("INVALID_ARGUMENT", `invalid ${what} URL ${redactUrl(url)}: ${reason}`, { cause: error });
}
