import { readFile } from "node:fs/promises";
import { describeError } from "@hoard/core";
import type { Argv } from "yargs";
import { UsageError } from "../arguments.js";
import { environmentVariable } from "../environment.js";

export interface DatabaseUrlArguments {
  databaseUrlFile?: string;
}

export function withDatabaseUrlFile<T>(yargs: Argv<T>) {
  return yargs.option("database-url-file", {
    type: "string",
    describe: "read the database URL from this file (trimmed) instead of the argument, e.g. /run/secrets/db",
  });
}

/**
 * The database URL from exactly one place: the argument, HOARD_DATABASE_URL or --database-url-file.
 * The last two keep a password out of the process list (`ps` shows every argument).
 */
export async function resolveDatabaseUrl(positional: string | undefined, args: DatabaseUrlArguments): Promise<string> {
  const fromEnvironment = environmentVariable("HOARD_DATABASE_URL");
  const sources = [
    positional !== undefined && "the argument",
    fromEnvironment !== undefined && "HOARD_DATABASE_URL",
    args.databaseUrlFile !== undefined && "--database-url-file",
  ].filter((source): source is string => source !== false);
  if (sources.length === 0) {
    throw new UsageError("name the database: as an argument, in HOARD_DATABASE_URL or with --database-url-file");
  }
  if (sources.length > 1) {
    throw new UsageError(`the database URL is given twice (${sources.join(" and ")}): give it once`);
  }
  if (positional !== undefined) return positional;
  if (fromEnvironment !== undefined) return fromEnvironment.trim();
  const path = args.databaseUrlFile as string;
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`--database-url-file ${path}: ${describeError(error).replace(/^[A-Z]+: /, "")}`);
  }
  const url = text.trim();
  if (!url) throw new UsageError(`--database-url-file ${path} is empty`);
  return url;
}
