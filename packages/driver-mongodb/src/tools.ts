import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { type Logger, runToolWithInput, toolOutput } from "@hoard/core";
import { parseMongoUrl, withoutDatabase } from "./connection-string.js";

/** A private configuration file for one run of a tool; `remove` deletes it (and its directory) and may be called more than once. */
export interface ToolConfiguration {
  path: string;
  remove(): Promise<void>;
}

/**
 * The YAML that the MongoDB Database Tools read with `--config` (common/options/options.go
 * `ParseConfigFile`: keys `uri`, `password`, `sslPEMKeyPassword`). The URI is written as a YAML
 * double-quoted scalar; JSON string escaping is a subset of YAML's, so any character survives.
 */
export function toolConfigurationText(uri: string): string {
  return `uri: ${JSON.stringify(uri)}\n`;
}

/**
 * Writes the URI into a new private directory under `parent` (mode 0700) as a file of mode 0600,
 * so the password never reaches argv or the environment of other processes.
 */
export async function writeToolConfiguration(parent: string, uri: string): Promise<ToolConfiguration> {
  const directory = await mkdtemp(join(parent, "mongodb-tool-"));
  const path = join(directory, "config.yaml");
  const remove = () => rm(directory, { recursive: true, force: true });
  try {
    await writeFile(path, toolConfigurationText(uri), { mode: 0o600, flag: "wx" });
  } catch (error) {
    await remove();
    throw error;
  }
  return { path, remove };
}

/** mongodump's arguments: the configuration file, the archive on stdout, then the user's options as they are. */
export function mongodumpArguments(configurationPath: string, dumpOptions: readonly string[]): string[] {
  return [`--config=${configurationPath}`, "--archive", ...dumpOptions];
}

export interface MongorestoreArgumentOptions {
  /** The database the URL names; every namespace of the archive is renamed into it. */
  database: string | undefined;
  drop: boolean;
  restoreOptions: readonly string[];
}

/**
 * mongorestore's arguments: the configuration file, the archive on stdin, `--drop` when asked,
 * then the renaming into the URL's database (`--nsFrom='$db$.$collection$'`, mongorestore/ns/ns.go:
 * a variable matches lazily, and database names hold no dots), unless the user renames or filters
 * namespaces themselves, then the user's options as they are.
 */
export function mongorestoreArguments(configurationPath: string, options: MongorestoreArgumentOptions): string[] {
  const args = [`--config=${configurationPath}`, "--archive"];
  if (options.drop && !options.restoreOptions.includes("--drop")) args.push("--drop");
  const choosesNamespaces = options.restoreOptions.some(
    (option) => /^--(nsFrom|nsTo|nsInclude|db)(=|$)/.test(option) || /^-d/.test(option),
  );
  if (options.database !== undefined && !choosesNamespaces) {
    args.push("--nsFrom=$db$.$collection$", `--nsTo=${options.database}.$collection$`);
  }
  args.push(...options.restoreOptions);
  return args;
}

/** Turns the tools' usual complaints into advice. */
export function explainToolFailure(stderr: string): string | undefined {
  if (/authentication failed|AuthenticationFailed|auth error/i.test(stderr)) {
    return "authentication failed: check the user, password and authSource in the URL";
  }
  if (/server selection error|no reachable servers|connection refused|connect: connection/i.test(stderr)) {
    return "cannot reach the server: check the host and port in the URL";
  }
  if (/not authorized|Unauthorized/i.test(stderr)) return "the user lacks a privilege the tool needs";
  return undefined;
}

export interface ToolRunOptions {
  executable: string;
  url: string;
  /** Where the private configuration file goes. */
  workDirectory: string;
  logger?: Logger;
  signal?: AbortSignal;
}

/**
 * Runs `mongodump --archive` and returns its stdout. The stream fails when mongodump exits non-zero
 * and ends only after it exited 0 (core's toolOutput); the configuration file is removed as soon as
 * the stream closes, whichever way.
 */
export async function toolDump(options: ToolRunOptions & { dumpOptions: readonly string[] }): Promise<Readable> {
  const configuration = await writeToolConfiguration(options.workDirectory, options.url);
  try {
    const stream = toolOutput(options.executable, {
      label: "mongodump",
      args: mongodumpArguments(configuration.path, options.dumpOptions),
      signal: options.signal,
      logger: options.logger,
      explainFailure: explainToolFailure,
    });
    stream.once("close", () => {
      configuration.remove().catch(() => {});
    });
    return stream;
  } catch (error) {
    await configuration.remove();
    throw error;
  }
}

/** Feeds the archive to `mongorestore --archive`; the configuration file is removed however it ends. */
export async function toolRestore(
  input: Readable,
  options: ToolRunOptions & { drop: boolean; restoreOptions: readonly string[] },
): Promise<void> {
  // A database in the URI would make mongorestore filter the archive instead of renaming it.
  const configuration = await writeToolConfiguration(options.workDirectory, withoutDatabase(options.url));
  try {
    await runToolWithInput(
      options.executable,
      {
        label: "mongorestore",
        args: mongorestoreArguments(configuration.path, {
          database: parseMongoUrl(options.url).database,
          drop: options.drop,
          restoreOptions: options.restoreOptions,
        }),
        signal: options.signal,
        logger: options.logger,
        explainFailure: explainToolFailure,
      },
      input,
    );
  } finally {
    await configuration.remove();
  }
}
