import type { Argv } from "yargs";

/**
 * Every environment variable hoard reads is read here. Three kinds:
 * - `HOARD_<OPTION>` for each option of the running command (`--s3-endpoint` from
 *   `HOARD_S3_ENDPOINT`, `--prefix` from `HOARD_PREFIX`); a flag on the command line wins over the
 *   environment. Plugins' options come from their settings declarations (see plugins.ts).
 * - Secrets the plugins declare (`HOARD_GCS_PRIVATE_KEY`): only from the environment, never flags.
 * - The ones below, which are not options because their values are secrets or have no flag.
 * Any other `HOARD_*` variable is ignored (a debug line names it), so a stray one in a container
 * never breaks a command.
 */
export const environmentOnlyVariables = {
  HOARD_DATABASE_URL: "the database URL for backup and restore, instead of the argument (keeps a password out of `ps`)",
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
const secretVariables: readonly EnvironmentOnlyVariable[] = ["HOARD_DATABASE_URL"];

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

/** Plugins' secrets, read once by {@link takeSecretVariables}. */
const secrets = new Map<string, string>();

/**
 * Reads the plugins' secret variables and removes them from the environment, so that dump and
 * restore tools do not inherit them. An empty value counts as unset.
 */
export function takeSecretVariables(names: readonly string[]): void {
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined && value !== "") secrets.set(name, value);
    delete process.env[name];
  }
}

/** A secret variable read by {@link takeSecretVariables}. */
export function secretVariable(name: string): string | undefined {
  return secrets.get(name);
}

/** An option made from a plugin's settings declaration. */
export interface DeclaredOption {
  variable: string;
  /** Its variable is read as a secret, never as the (refused) flag's value. */
  secret: boolean;
  /**
   * Parses the variable's text, for booleans: yargs would turn any text into false before the
   * option's own parser sees it.
   */
  parse?: (text: string) => unknown;
}

const declaredOptions = new Map<string, DeclaredOption>();

export function declareSettingOption(option: string, declaration: DeclaredOption): void {
  declaredOptions.set(option, declaration);
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
  const used = new Set<string>([...Object.keys(environmentOnlyVariables), ...secrets.keys()]);
  for (const option of Object.keys(options.key)) {
    if (notFromEnvironment.has(option) || /[A-Z]/.test(option)) continue;
    const declared = declaredOptions.get(option);
    const variable = declared?.variable ?? variableOf(option);
    used.add(variable);
    if (declared?.secret) continue;
    const value = process.env[variable];
    if (value === undefined || value === "") continue;
    if (declared?.parse) values[option] = declared.parse(value);
    else if (booleans.has(option)) values[option] = /^(1|true|yes)$/i.test(value.trim());
    else values[option] = arrays.has(option) ? [value] : value;
  }
  ignored = Object.keys(process.env)
    .filter((name) => name.startsWith(prefix) && !used.has(name))
    .sort();
  return yargs.config(values);
}
