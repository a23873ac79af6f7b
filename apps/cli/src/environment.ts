import type { Argv } from "yargs";

/**
 * Every environment variable hoard reads is read here. Two kinds:
 * - `HOARD_<OPTION>` for each option of the running command (`--s3-endpoint` from
 *   `HOARD_S3_ENDPOINT`); a flag on the command line wins over the environment.
 * - The ones below, which are not options because their values are secrets or have no flag.
 * Any other `HOARD_*` variable is ignored (a debug line names it), so a stray one in a container
 * never breaks a command.
 */
export const environmentOnlyVariables = {
  HOARD_DATABASE_URL: "the database URL for backup and restore, instead of the argument (keeps a password out of `ps`)",
  HOARD_GCS_CLIENT_EMAIL: "Google Cloud service-account email, with HOARD_GCS_PRIVATE_KEY",
  HOARD_GCS_PRIVATE_KEY: "Google Cloud service-account private key (PEM), with HOARD_GCS_CLIENT_EMAIL",
  HOARD_MONGODB_ENGINE: "MongoDB driver setting `engine`",
} as const;

export type EnvironmentOnlyVariable = keyof typeof environmentOnlyVariables;

const prefix = "HOARD_";

interface YargsOptions {
  key: Record<string, unknown>;
  boolean: string[];
  array: string[];
}

/** Options that are not taken from the environment: positionals and yargs' own. */
const notFromEnvironment = new Set(["help", "version", "database-url", "storage-url", "backup-url"]);

/** `HOARD_*` variables the running command did not use, for a debug line. */
let ignored: string[] = [];

/** Secrets among them are read once and removed, so that dump and restore tools do not inherit them. */
const secretVariables: readonly EnvironmentOnlyVariable[] = ["HOARD_DATABASE_URL", "HOARD_GCS_PRIVATE_KEY"];

const environmentOnly = new Map<EnvironmentOnlyVariable, string>();
for (const name of Object.keys(environmentOnlyVariables) as EnvironmentOnlyVariable[]) {
  const value = process.env[name];
  if (value !== undefined && value !== "") environmentOnly.set(name, value);
  if (secretVariables.includes(name)) delete process.env[name];
}

/** A variable of the list above; an empty value counts as unset. */
export function environmentVariable(name: EnvironmentOnlyVariable): string | undefined {
  return environmentOnly.get(name);
}

/** Whether HOARD_DEBUG asks for debug output, before the command line is parsed. */
export function debugFromEnvironment(): boolean {
  return /^(1|true|yes)$/i.test(process.env.HOARD_DEBUG?.trim() ?? "");
}

/** The `HOARD_*` variables that named no option of the command that ran, and no other known variable. */
export function ignoredVariables(): readonly string[] {
  return ignored;
}

function variableOf(option: string): string {
  return `${prefix}${option.replaceAll("-", "_").toUpperCase()}`;
}

/**
 * Gives the command's options their values from `HOARD_<OPTION>` (lower precedence than the command
 * line, higher than defaults). Call last in a command's builder, when all its options are known.
 * Values go through the same parsing and validation as the command line's.
 */
export function withEnvironment<T>(yargs: Argv<T>): Argv<T> {
  // getOptions() is public in yargs 17 but missing from its type definitions.
  const options = (yargs as unknown as { getOptions(): YargsOptions }).getOptions();
  const booleans = new Set(options.boolean);
  const arrays = new Set(options.array);
  const values: Record<string, unknown> = {};
  const used = new Set<string>(Object.keys(environmentOnlyVariables));
  for (const option of Object.keys(options.key)) {
    if (notFromEnvironment.has(option) || /[A-Z]/.test(option)) continue;
    const variable = variableOf(option);
    used.add(variable);
    const value = process.env[variable];
    if (value === undefined || value === "") continue;
    if (booleans.has(option)) values[option] = /^(1|true|yes)$/i.test(value.trim());
    else values[option] = arrays.has(option) ? [value] : value;
  }
  ignored = Object.keys(process.env)
    .filter((name) => name.startsWith(prefix) && !used.has(name))
    .sort();
  return yargs.config(values);
}
