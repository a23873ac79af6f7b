import { parseDuration } from "../duration.js";
import { describeError, HoardError } from "../errors.js";
import { defaultNetworkTimeoutMs } from "../storage.js";

/**
 * How a setting's text (from a flag, an environment variable or a config file) becomes its value:
 * - `string`: trimmed text, empty counts as unset;
 * - `boolean`: true/false, 1/0, yes/no;
 * - `integer`: a whole number within `minimum`/`maximum`;
 * - `bytes`: a size such as `16MiB`, `64M`, `512KiB` or a number of bytes (units are powers of 1024);
 * - `duration`: `30s`, `15m`, `1w2d`, in milliseconds;
 * - `choice`: one of `choices`.
 */
export type SettingKind = "string" | "boolean" | "integer" | "bytes" | "duration" | "choice";

export type SettingValue = string | number | boolean;

/**
 * One setting a plugin declares. The declaration is all a front end (the CLI, a config file)
 * needs: it makes the flag, the environment variable and the help from it, and validates with it.
 */
export interface SettingDeclaration {
  /** The key in the settings bag the plugin receives, camelCase: `s3PartSize`. */
  name: string;
  kind: SettingKind;
  /** One line for `--help`. */
  help: string;
  /**
   * The flag without dashes. @default `name` in kebab-case (`s3PartSize` -> `s3-part-size`)
   */
  flag?: string;
  /**
   * A secret (a password, a private key): taken only from the environment or a file, never from
   * a flag (argv is visible to every user of the machine), and never printed.
   */
  secret?: boolean;
  /** For `choice`: the values allowed. */
  choices?: readonly string[];
  /** For `integer`, `bytes` and `duration`: the smallest value allowed. @default 1 for bytes and durations, 0 for integers */
  minimum?: number;
  /** For `integer`, `bytes` and `duration`: the largest value allowed. */
  maximum?: number;
  /** The value when nothing sets it, already parsed (bytes and milliseconds for sizes and durations). */
  default?: SettingValue;
  /** Extra validation after parsing; return a message to reject the value. */
  check?: (value: SettingValue) => string | undefined;
}

/** The settings one plugin declares, e.g. every `--s3-*` setting. */
export interface PluginSettings {
  /** The plugin's short name, used in messages: `s3`. */
  plugin: string;
  /** The heading the settings are grouped under in `--help`: `S3`. */
  title: string;
  settings: readonly SettingDeclaration[];
}

/** Declares a plugin's settings; checks the declarations themselves (a programming error throws at import). */
export function defineSettings(plugin: string, title: string, settings: readonly SettingDeclaration[]): PluginSettings {
  const seen = new Set<string>();
  for (const setting of settings) {
    if (!/^[a-z][a-zA-Z0-9]*$/.test(setting.name)) throw new Error(`${plugin}: setting name "${setting.name}" must be camelCase`);
    if (seen.has(setting.name)) throw new Error(`${plugin}: setting "${setting.name}" is declared twice`);
    if (setting.kind === "choice" && !setting.choices?.length)
      throw new Error(`${plugin}: choice setting "${setting.name}" has no choices`);
    seen.add(setting.name);
  }
  return { plugin, title, settings };
}

/** The flag of a setting, without dashes: `s3-part-size`. */
export function flagOf(setting: Pick<SettingDeclaration, "name" | "flag">): string {
  return setting.flag ?? setting.name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** The environment variable of a setting: `HOARD_S3_PART_SIZE`. */
export function environmentVariableOf(setting: Pick<SettingDeclaration, "name" | "flag">): string {
  return `HOARD_${flagOf(setting).replaceAll("-", "_").toUpperCase()}`;
}

const sizeUnits: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses `16777216`, `16MiB`, `16M`, `16mb` or `512KiB` into bytes (units are powers of 1024); undefined when it is not a size. */
export function parseByteSize(value: string): number | undefined {
  const match = /^(\d+)\s*(?:([kmgt])(?:i?b)?|b)?$/i.exec(value.trim());
  if (!match) return undefined;
  const bytes = Number(match[1]) * (sizeUnits[(match[2] ?? "").toLowerCase()] as number);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

function invalid(setting: SettingDeclaration, message: string): HoardError {
  return new HoardError("INVALID_ARGUMENT", `invalid --${flagOf(setting)}: ${message}`);
}

/**
 * Parses and validates one value of a setting. Typed values (a number for an integer, a boolean)
 * are checked as they are; text is parsed by the setting's kind. Returns undefined for an unset
 * value (undefined or empty text). Throws INVALID_ARGUMENT naming the flag; a secret's value is
 * never quoted.
 */
export function parseSetting(setting: SettingDeclaration, raw: unknown): SettingValue | undefined {
  if (raw === undefined || raw === null) return undefined;
  const text = typeof raw === "string" ? raw.trim() : undefined;
  if (text === "") return undefined;
  const shown = setting.secret ? "(hidden)" : `"${String(raw)}"`;
  let value: SettingValue;
  switch (setting.kind) {
    case "string":
      value = text ?? String(raw);
      break;
    case "boolean": {
      if (typeof raw === "boolean") value = raw;
      else if (/^(true|1|yes)$/i.test(text ?? "")) value = true;
      else if (/^(false|0|no)$/i.test(text ?? "")) value = false;
      else throw invalid(setting, `${shown} is not true or false`);
      break;
    }
    case "integer": {
      value = typeof raw === "number" ? raw : /^-?\d+$/.test(text ?? "") ? Number(text) : Number.NaN;
      if (!Number.isSafeInteger(value)) throw invalid(setting, `${shown} is not a whole number`);
      break;
    }
    case "bytes": {
      value = typeof raw === "number" ? raw : (parseByteSize(text ?? "") ?? Number.NaN);
      if (!Number.isSafeInteger(value)) throw invalid(setting, `${shown} is not a size: use e.g. 16MiB, 512KiB or a number of bytes`);
      break;
    }
    case "duration": {
      if (typeof raw === "number") value = raw;
      else {
        try {
          value = parseDuration(text ?? "");
        } catch (error) {
          throw invalid(setting, describeError(error));
        }
      }
      break;
    }
    case "choice": {
      const choices = setting.choices ?? [];
      const match = choices.find((choice) => choice.toLowerCase() === (text ?? String(raw)).toLowerCase());
      if (match === undefined) throw invalid(setting, `${shown} is not one of ${choices.join(", ")}`);
      value = match;
      break;
    }
  }
  if (typeof value === "number" && (setting.kind === "integer" || setting.kind === "bytes" || setting.kind === "duration")) {
    const minimum = setting.minimum ?? (setting.kind === "integer" ? 0 : 1);
    if (value < minimum) throw invalid(setting, `${shown} is below the minimum of ${minimum}`);
    if (setting.maximum !== undefined && value > setting.maximum)
      throw invalid(setting, `${shown} is above the maximum of ${setting.maximum}`);
  }
  const problem = setting.check?.(value);
  if (problem) throw invalid(setting, problem);
  return value;
}

/**
 * Reads a plugin's settings out of a settings bag (from the CLI, a config file or a library
 * caller): each declared setting parsed and validated, defaults filled in. Keys the plugin does
 * not declare are left out.
 */
export function readSettings(
  declared: PluginSettings,
  bag: Readonly<Record<string, unknown>> = {},
): Record<string, SettingValue | undefined> {
  const values: Record<string, SettingValue | undefined> = {};
  for (const setting of declared.settings) {
    values[setting.name] = parseSetting(setting, bag[setting.name]) ?? setting.default;
  }
  return values;
}

/** Settings that hoard itself declares for every plugin (the CLI shows them as global options). */
export const commonSettings: PluginSettings = defineSettings("hoard", "Network", [
  {
    name: "timeoutMs",
    flag: "timeout",
    kind: "duration",
    help: "how long a silent storage endpoint or database host is waited for, e.g. 30s; with retries a silent one fails within about four times this",
    default: defaultNetworkTimeoutMs,
  },
]);
