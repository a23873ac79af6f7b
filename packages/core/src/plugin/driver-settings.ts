import type { Logger } from "../logger.js";
import type { DriverSettings } from "../registry.js";
import { defaultNetworkTimeoutMs } from "../storage.js";
import { type PluginSettings, parseSetting, readSettings, type SettingDeclaration, type SettingValue } from "./settings.js";

/**
 * What a driver's `createDriverFromUrl` receives: core's common settings (dump and restore options,
 * the logger, `connectTimeoutMs`) and the driver's declared settings, values as text (from a flag,
 * the environment, a config file) or typed (from a library caller).
 */
export type DriverSettingsBag = DriverSettings & Readonly<Record<string, unknown>>;

/**
 * The common driver setting `connectTimeoutMs`: the CLI's `--timeout` (see `commonSettings`), a
 * duration such as `30s` or a number of milliseconds.
 */
export const connectTimeoutSetting: SettingDeclaration = {
  name: "connectTimeoutMs",
  flag: "timeout",
  kind: "duration",
  help: "how long a database host is waited for to accept a connection and answer, e.g. 30s",
  default: defaultNetworkTimeoutMs,
};

/** What every driver's options have in common, read out of a settings bag. */
export interface CommonDriverOptions {
  dumpOptions?: string[];
  restoreOptions?: string[];
  connectTimeoutMs?: number;
  logger?: Logger;
}

/**
 * Reads a settings bag for a driver: the common part (dump and restore options and the logger as
 * they are, `connectTimeoutMs` parsed as a duration; unset stays unset, so the driver's default
 * applies) and the driver's declared settings ({@link readSettings}: parsed, validated, defaults
 * filled in). INVALID_ARGUMENT naming the flag for a bad value.
 */
export function readDriverSettings(
  declared: PluginSettings,
  bag: DriverSettingsBag = {},
): { common: CommonDriverOptions; values: Record<string, SettingValue | undefined> } {
  const connectTimeoutMs = parseSetting(connectTimeoutSetting, bag.connectTimeoutMs) as number | undefined;
  return {
    common: {
      dumpOptions: bag.dumpOptions,
      restoreOptions: bag.restoreOptions,
      logger: bag.logger,
      ...(connectTimeoutMs !== undefined && { connectTimeoutMs }),
    },
    values: readSettings(declared, bag),
  };
}
