import { describeError, HoardError, loadPluginSettings, type PluginKind, parseDuration } from "@hoard/core";
import {
  commonSettings,
  environmentVariableOf,
  flagOf,
  type PluginSettings,
  parseSetting,
  type SettingDeclaration,
  type SettingValue,
} from "@hoard/core/plugin";
import type { Argv, Options } from "yargs";
import { takesValue, UsageError } from "./arguments.js";
import { declareSettingOption, secretVariable, takeSecretVariables } from "./environment.js";

/** Packages resolve from the CLI's own install, where users add the plugins they need. */
export const importFromCli = (specifier: string) => import(specifier);

interface LoadedPlugins {
  storages: PluginSettings[];
  drivers: PluginSettings[];
  /** `@hoard/storage-gcs is not installed`, for a debug line. */
  skipped: string[];
}

let loaded: LoadedPlugins = { storages: [], drivers: [], skipped: [] };

/**
 * Reads the settings every installed plugin declares (`<package>/settings`, which loads no SDK),
 * once, before the command line is parsed. Secrets are read from the environment here and removed
 * from it, so that dump and restore tools do not inherit them.
 */
export async function loadPlugins(): Promise<void> {
  const skipped: string[] = [];
  const onSkipped = (plugin: { name: string }, reason: string) =>
    skipped.push(reason === "not-installed" ? `${plugin.name} is not installed` : `${plugin.name} publishes no ./settings`);
  const [storages, drivers] = await Promise.all([
    loadPluginSettings(importFromCli, { kind: "storage", onSkipped }),
    loadPluginSettings(importFromCli, { kind: "driver", onSkipped }),
  ]);
  const owners = new Map<string, string>();
  for (const plugin of [commonSettings, ...storages, ...drivers]) {
    for (const setting of plugin.settings) {
      const flag = flagOf(setting);
      const owner = owners.get(flag);
      if (owner !== undefined) throw new HoardError("INTERNAL", `${plugin.plugin} and ${owner} both declare --${flag}`);
      owners.set(flag, plugin.plugin);
      if (takesValueKinds.has(setting.kind)) takesValue(flag);
    }
  }
  takeSecretVariables(secretsOf([...storages, ...drivers]).map(environmentVariableOf));
  loaded = { storages, drivers, skipped };
}

/** The plugins of one kind whose settings were loaded, in the registry's order. */
export function pluginsOf(kind: PluginKind): readonly PluginSettings[] {
  return kind === "storage" ? loaded.storages : loaded.drivers;
}

/** Plugin packages left out (not installed, or declaring no settings), for a debug line. */
export function skippedPlugins(): readonly string[] {
  return loaded.skipped;
}

function isDuration(text: string): boolean {
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}

const takesValueKinds = new Set<SettingDeclaration["kind"]>(["integer", "bytes", "duration"]);

function secretsOf(plugins: readonly PluginSettings[]): SettingDeclaration[] {
  return plugins.flatMap((plugin) => plugin.settings.filter((setting) => setting.secret));
}

/** yargs gives an array when a flag is repeated; the last one wins, as for other flags. */
function lastOf(value: unknown): unknown {
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  return typeof last === "string" ? last.trim() : last;
}

const mebibyte = 1024 ** 2;

/** 16777216 -> `16MiB`, for help and messages. */
function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ["GiB", 1024 ** 3],
    ["MiB", mebibyte],
    ["KiB", 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes} bytes`;
}

/** 90000 -> `1m30s`, for help and messages. */
function formatDuration(milliseconds: number): string {
  const units = [
    ["w", 7 * 86_400_000],
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
  ] as const;
  if (milliseconds % 1000 !== 0) return `${milliseconds}ms`;
  let rest = milliseconds;
  let text = "";
  for (const [unit, size] of units) {
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text || "0s";
}

function formatValue(setting: SettingDeclaration, value: SettingValue): string {
  if (typeof value === "number" && setting.kind === "bytes") return formatBytes(value);
  if (typeof value === "number" && setting.kind === "duration") return formatDuration(value);
  return String(value);
}

/**
 * What to write instead, by kind: the part after the colon of `invalid --flag "x": ...`. For a
 * number out of range, the bound it crossed; else the whole range.
 */
function expected(setting: SettingDeclaration, value: unknown): string {
  const minimum = setting.minimum ?? (setting.kind === "integer" ? 0 : 1);
  const { maximum } = setting;
  const parsed = numberOf(setting, value);
  const range = (format: (bound: number) => string) => {
    if (parsed !== undefined && parsed < minimum) return ` of ${format(minimum)} or more`;
    if (parsed !== undefined && maximum !== undefined && parsed > maximum) return ` of ${format(maximum)} or less`;
    return maximum === undefined ? ` of ${format(minimum)} or more` : ` from ${format(minimum)} to ${format(maximum)}`;
  };
  switch (setting.kind) {
    case "integer":
      return `use a whole number${range(String)}`;
    case "bytes":
      return `use a size such as 16MiB or a number of bytes${minimum > 1 || maximum !== undefined ? `,${range(formatBytes)}` : ""}`;
    case "duration":
      return `use a duration such as 30s or 1m30s${minimum > 1 || maximum !== undefined ? `,${range(formatDuration)}` : ""}`;
    case "boolean":
      return "use true or false";
    case "choice":
      return `use one of ${(setting.choices ?? []).join(", ")}`;
    case "string":
      return "use some text";
  }
}

/** The number a numeric setting's value stands for, when it is one at all. */
function numberOf(setting: SettingDeclaration, value: unknown): number | undefined {
  try {
    const parsed = parseSetting({ ...setting, minimum: Number.MIN_SAFE_INTEGER, maximum: undefined, check: undefined }, value);
    return typeof parsed === "number" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses one value of a declared setting with the declaration's own parser. A bad value is a usage
 * error naming where it came from (`--s3-part-size`, or the variable for a secret), never quoting a secret.
 */
export function parseSettingValue(setting: SettingDeclaration, raw: unknown, source = `--${flagOf(setting)}`): SettingValue | undefined {
  const value = lastOf(raw);
  const shown = setting.secret ? "" : ` "${String(value)}"`;
  try {
    // Shape and range first, so that their message says what to write instead...
    parseSetting({ ...setting, check: undefined }, value);
  } catch (error) {
    // ...except a duration that does not parse, which core's duration parser explains.
    if (setting.kind === "duration" && typeof value === "string" && !isDuration(value))
      throw new UsageError(`${source}: ${describeError(error).replace(/^invalid --[\w-]+: /, "")}`);
    throw new UsageError(`invalid ${source}${shown}: ${expected(setting, value)}`);
  }
  try {
    return parseSetting(setting, value);
  } catch (error) {
    // ...then the plugin's own check, whose message is the reason.
    const reason = (error as Error).message.replace(/^invalid --[\w-]+: /, "");
    throw new UsageError(`invalid ${source}${shown}: ${reason}`);
  }
}

function describe(setting: SettingDeclaration): string {
  const choices = setting.kind === "choice" ? ` (${(setting.choices ?? []).join(", ")})` : "";
  return `${setting.help}${choices}`;
}

/** The yargs option of a declared (non-secret) setting: its flag, help and parser. */
export function settingOption(setting: SettingDeclaration, group?: string): Options {
  const option: Options = {
    type: setting.kind === "boolean" ? "boolean" : "string",
    describe: describe(setting),
    coerce: (value: unknown) => parseSettingValue(setting, value),
  };
  if (group !== undefined) option.group = group;
  if (setting.default !== undefined) option.defaultDescription = formatValue(setting, setting.default);
  return option;
}

/** The global options hoard declares for every plugin (`--timeout`), with their defaults applied by the CLI. */
export function withCommonOptions<T>(yargs: Argv<T>): Argv<T> {
  let built = yargs;
  for (const setting of commonSettings.settings) {
    const option = settingOption(setting);
    delete option.defaultDescription;
    if (setting.default !== undefined) option.default = formatValue(setting, setting.default);
    built = built.option(flagOf(setting), { ...option, global: true });
  }
  return built;
}

/**
 * One group per plugin in `--help`, titled by the plugin, with a flag for each setting that is
 * not a secret. A secret has a hidden flag that only says to use its environment variable.
 */
export function withPluginOptions<T>(yargs: Argv<T>, kind: PluginKind): Argv<T> {
  let built = yargs;
  for (const plugin of pluginsOf(kind)) {
    for (const setting of plugin.settings) {
      const flag = flagOf(setting);
      const variable = environmentVariableOf(setting);
      declareSettingOption(flag, {
        secret: setting.secret === true,
        variable,
        ...(setting.kind === "boolean" && { parse: (text: string) => parseSettingValue(setting, text) }),
      });
      if (setting.secret) {
        built = built.option(flag, {
          type: "string",
          hidden: true,
          coerce: () => {
            throw new UsageError(
              `--${flag} is a secret and is not taken from the command line (every user of the machine can read it): set ${variable} instead`,
            );
          },
        });
      } else {
        built = built.option(flag, settingOption(setting, `${plugin.title}:`));
      }
    }
  }
  return built;
}

/**
 * The settings bag plugins of one kind receive: each declared setting's parsed value from its
 * flag or `HOARD_*` variable, and secrets from the environment. Unset settings are left out, so
 * the plugin's own defaults apply.
 */
export function pluginSettingsBag(kind: PluginKind, args: Readonly<Record<string, unknown>>): Record<string, SettingValue> {
  const bag: Record<string, SettingValue> = {};
  for (const plugin of pluginsOf(kind)) {
    for (const setting of plugin.settings) {
      const value = setting.secret
        ? parseSettingValue(setting, secretVariable(environmentVariableOf(setting)), environmentVariableOf(setting))
        : (args[flagOf(setting)] as SettingValue | undefined);
      if (value !== undefined) bag[setting.name] = value;
    }
  }
  return bag;
}

/** `HOARD_GCS_PRIVATE_KEY` (Google Cloud service-account private key), for the epilogue. */
export function secretVariables(): string[] {
  return secretsOf([...loaded.storages, ...loaded.drivers]).map((setting) => `${environmentVariableOf(setting)} (${setting.help})`);
}
