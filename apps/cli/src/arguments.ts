import { describeError, parseDuration } from "@hoard/core";

/** The command line (or a HOARD_* variable) was wrong: exit status 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Options whose value is a number, size or duration: a value such as `-5d` after them is theirs. */
const valueOptions = new Set<string>();

/** Marks an option whose value may start with `-` and a digit (see {@link joinDashedValues}). */
export function takesValue(flag: string): void {
  valueOptions.add(flag);
}

/** yargs gives an array when a flag is repeated; the last one wins, as for other flags. */
function lastOf(value: unknown): string {
  return String(Array.isArray(value) ? value[value.length - 1] : value).trim();
}

/** A coerce function for a whole number from `minimum` to `maximum`. */
export function integerOption(flag: string, minimum: number, maximum = Number.MAX_SAFE_INTEGER) {
  valueOptions.add(flag);
  const range = maximum === Number.MAX_SAFE_INTEGER ? `of ${minimum} or more` : `from ${minimum} to ${maximum}`;
  return (value: unknown): number => {
    const text = lastOf(value);
    const number = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!(number >= minimum && number <= maximum)) {
      throw new UsageError(`invalid --${flag} "${text}": use a whole number ${range}`);
    }
    return number;
  };
}

/** A coerce function for a duration such as `30d` or `1w12h`, to milliseconds. */
export function durationOption(flag: string) {
  valueOptions.add(flag);
  return (value: unknown): number => {
    const text = lastOf(value);
    try {
      return parseDuration(text);
    } catch (error) {
      throw new UsageError(`--${flag}: ${describeError(error)}`);
    }
  };
}

/**
 * yargs reads `--older-than -5d` as a flag without a value followed by the flags `-5` and `-d`.
 * Joining such a value to its option (`--older-than=-5d`) lets the option's own check say what is
 * wrong with it. Only options registered above take part, and only values that start with `-` and
 * a digit (no option name does).
 */
export function joinDashedValues(argv: readonly string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const token = argv[index] as string;
    const next = argv[index + 1];
    if (token === "--") {
      joined.push(...argv.slice(index));
      break;
    }
    if (token.startsWith("--") && valueOptions.has(token.slice(2)) && next !== undefined && /^-\.?\d/.test(next)) {
      joined.push(`${token}=${next}`);
      index += 1;
    } else {
      joined.push(token);
    }
  }
  return joined;
}
