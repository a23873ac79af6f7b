import { Readable } from "node:stream";
import type { Logger } from "@hoard/core";
import {
  checkDumpOutput,
  type DumpCheck,
  log,
  type PrivateFile,
  removeWhenClosed,
  runToolWithInput,
  toolOutput,
  writePrivateFile,
} from "@hoard/core/plugin";
import { type ArchiveCollectionMetadata, archiveMagicNumber } from "./archive-format.js";
import { peekPrelude } from "./archive-reader.js";
import { missingDatabase } from "./builtin-dump.js";
import { parseMongoUrl, withoutDatabase, withTimeouts } from "./connection-string.js";
import { complaintOf, type ToolComplaint, toolError } from "./errors.js";
import { parseMetadata } from "./metadata.js";

/** A private configuration file for one run of a tool; `remove` deletes it (and its directory) and may be called more than once. */
export type ToolConfiguration = PrivateFile;

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
export function writeToolConfiguration(parent: string, uri: string): Promise<ToolConfiguration> {
  return writePrivateFile(parent, "mongodb-tool-", "config.yaml", toolConfigurationText(uri));
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
  /** `--numInsertionWorkersPerCollection` when above 1 (see {@link insertionWorkers}). */
  insertionWorkers?: number;
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
  const choosesWorkers = options.restoreOptions.some((option) =>
    /^--(numInsertionWorkersPerCollection|maintainInsertionOrder)(=|$)/.test(option),
  );
  if (options.insertionWorkers !== undefined && options.insertionWorkers > 1 && !choosesWorkers) {
    args.push(`--numInsertionWorkersPerCollection=${options.insertionWorkers}`);
  }
  args.push(...options.restoreOptions);
  return args;
}

/**
 * How many insertion workers mongorestore gets per collection: `requested` (the driver's
 * insertsInFlight, as the built-in engine keeps that many insert batches in flight), or 1 when
 * the archive's prelude holds a capped collection (several workers would reorder its documents,
 * and mongorestore 100.18 does not prevent it) or metadata hoard cannot read.
 */
export function insertionWorkers(collections: readonly ArchiveCollectionMetadata[], requested: number, archiveName: string): number {
  if (requested <= 1) return 1;
  for (const collection of collections) {
    try {
      if (parseMetadata(collection.metadata, collection.collection, archiveName).options?.capped === true) return 1;
    } catch {
      return 1;
    }
  }
  return requested;
}

/** FerretDB v1's answer to the `ns` field mongorestore adds to index specs (FerretDB#4638). */
export const nsRejected = /Index option "ns" is unknown/;

const advice: Record<ToolComplaint, string> = {
  unauthenticated: "authentication failed: check the user, password and authSource in the URL",
  unreachable: "cannot reach the server: check the host and port in the URL",
  "access-denied": "the user lacks a privilege the tool needs",
};

/** Turns the tools' usual complaints into advice. */
export function explainToolFailure(stderr: string): string | undefined {
  const complaint = complaintOf(stderr);
  return complaint ? advice[complaint] : undefined;
}

/** `2024-01-15T10:23:46.501+0000<TAB>` in front of every line the tools log. */
const timestampPrefix = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?\s+/;
/** mongorestore's last line, success or not (mongorestore/main/mongorestore.go). */
const summaryLine = /^(\d+) document\(s\) restored successfully\. (\d+) document\(s\) failed to restore\.?$/;
const failureLine = /\bfailed\b|\berror\b|\bE\d{5}\b|\bfatal\b|^panic:|\bcannot\b|\bunable to\b|\binvalid\b|\bnot authorized\b/i;
const maximumFailureLines = 3;
const maximumLineLength = 300;

/** What a tool's stderr says about a failure: the lines that name it, and mongorestore's counts. */
export interface ToolFailureReport {
  /** The lines that say what failed, the final `Failed: ...` first; at most three, without timestamps. */
  lines: string[];
  /** From mongorestore's summary line, when it printed one. */
  restored?: number;
  failed?: number;
}

/**
 * Reads a tool's stderr (the tail core keeps) for the lines that say what went wrong, instead of the
 * last line, which for mongorestore is its summary ("23838 document(s) restored successfully. 0
 * document(s) failed to restore.") even when it failed.
 */
export function readToolFailure(stderr: string): ToolFailureReport {
  const lines = stderr
    .split(/\r?\n/)
    .map((line) => line.replace(timestampPrefix, "").trim())
    .filter((line) => line !== "");
  const report: ToolFailureReport = { lines: [] };
  const fatal: string[] = [];
  const others: string[] = [];
  for (const line of lines) {
    const summary = summaryLine.exec(line);
    if (summary) {
      report.restored = Number(summary[1]);
      report.failed = Number(summary[2]);
      continue;
    }
    if (/^Failed:/.test(line)) fatal.push(line);
    else if (failureLine.test(line)) others.push(line);
  }
  const chosen: string[] = [];
  for (const line of [...fatal.reverse(), ...others]) {
    const shortened = line.length > maximumLineLength ? `${line.slice(0, maximumLineLength)}...` : line;
    if (!chosen.includes(shortened)) chosen.push(shortened);
    if (chosen.length === maximumFailureLines) break;
  }
  // Nothing looks like a failure: the last line that is not the summary is the best there is.
  if (chosen.length === 0) {
    const last = lines.filter((line) => !summaryLine.test(line)).at(-1);
    if (last) chosen.push(last.length > maximumLineLength ? `${last.slice(0, maximumLineLength)}...` : last);
  }
  report.lines = chosen;
  return report;
}

/** The failure part of mongodump's message: what failed, and advice when the complaint is a known one. */
export function explainDumpFailure(stderr: string): string | undefined {
  const { lines } = readToolFailure(stderr);
  const parts = [...lines];
  const explained = explainToolFailure(stderr);
  if (explained) parts.push(explained);
  return parts.length > 0 ? parts.join("; ") : undefined;
}

/**
 * The failure part of mongorestore's message: the failing line(s), advice for known complaints,
 * and what state the database is left in.
 */
export function explainRestoreFailure(stderr: string): string {
  const { lines, restored } = readToolFailure(stderr);
  const parts = [...lines];
  const explained = explainToolFailure(stderr);
  if (explained) parts.push(explained);
  if (nsRejected.test(stderr)) {
    parts.push(
      "the server rejects the ns field that mongorestore adds to every index spec (as FerretDB v1 does, FerretDB#4638): the documents are restored without their indexes; hoard creates them itself unless mongorestore options choose the namespaces, else use the built-in engine (--mongodb-engine builtin) for this server",
    );
  }
  parts.push(
    restored !== undefined && restored > 0
      ? `the database is partially restored (${restored} document(s) were restored before the failure)`
      : "the database may be partially restored",
  );
  return parts.join("; ");
}

export interface ToolRunOptions {
  executable: string;
  url: string;
  /** Applied as connectTimeoutMS and serverSelectionTimeoutMS in the URI unless it sets them. */
  connectTimeoutMs: number;
  /** Where the private configuration file goes. */
  workDirectory: string;
  logger?: Logger;
  signal?: AbortSignal;
}

const gzipMagic = Buffer.from([0x1f, 0x8b]);

/**
 * mongodump's output must be an archive: it must start with the archive magic number (6D E2 99 81,
 * 0x8199e26d little-endian) or, for `--gzip`, the gzip header. A dump option that sends the dump
 * elsewhere (`--out=dir`, `--archive=file`) leaves stdout empty or filled with something else.
 */
export const archiveCheck: DumpCheck = {
  plugin: "mongodb",
  tool: "mongodump",
  format: "archive",
  redirects: "--out or --archive=<file>",
  length: 4,
  accepts: (head) => head.length >= 4 && (head.readUInt32LE(0) === archiveMagicNumber || head.subarray(0, 2).equals(gzipMagic)),
  explain: (head) =>
    head.length === 0
      ? "it wrote nothing there"
      : head.length < 4
        ? `only ${head.length} byte(s)`
        : `it starts with ${head.subarray(0, 4).toString("hex")}, not the archive magic number 6de29981`,
};

/**
 * Passes mongodump's stdout on after checking that it is an archive ({@link archiveCheck}): when it
 * is not, the stream fails with TOOL_FAILED, so nothing is stored. Errors are passed through
 * `mapError`. Destroying the returned stream destroys the source.
 */
export function expectArchive(source: Readable, mapError: (error: unknown) => unknown = (error) => error): Readable {
  return checkDumpOutput(source, archiveCheck, mapError);
}

/**
 * Reads the prelude of mongodump's (plain) archive and fails with NOT_FOUND when it lists no
 * collection of `database`: mongodump exits 0 with an empty archive for a database that does not
 * exist, and hoard would store a backup of nothing. The bytes read are replayed. A gzip archive
 * (`--gzip` among the dump options) is passed on unchecked. Destroying the result destroys `output`.
 */
export function expectCollections(output: Readable, database: string, url: string, logger?: Logger): Readable {
  async function* checked(): AsyncGenerator<Buffer> {
    const iterator = output[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const first = await iterator.next();
    if (first.done) return;
    async function* replay(): AsyncGenerator<Buffer> {
      yield first.value;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    }
    const replayed = Readable.from(replay(), { objectMode: false });
    if (first.value.subarray(0, 2).equals(gzipMagic)) {
      log(logger, "debug", "mongodb: mongodump writes gzip (--gzip): its archive is stored without checking which collections it holds");
      yield* replayed;
      return;
    }
    const peeked = await peekPrelude(replayed, { name: "mongodump's output" });
    if (!peeked.collections.some((collection) => collection.database === database)) {
      peeked.stream.destroy();
      throw missingDatabase(database, url);
    }
    yield* peeked.stream;
  }
  const stream = Readable.from(checked(), { objectMode: false });
  stream.once("close", () => output.destroy());
  return stream;
}

/**
 * Runs `mongodump --archive` and returns its stdout, checked to be an archive ({@link expectArchive}).
 * The stream fails when mongodump exits non-zero and ends only after it exited 0 (core's toolOutput);
 * the configuration file is removed as soon as the stream closes, whichever way.
 */
export async function toolDump(options: ToolRunOptions & { dumpOptions: readonly string[] }): Promise<Readable> {
  const configuration = await writeToolConfiguration(options.workDirectory, withTimeouts(options.url, options.connectTimeoutMs));
  try {
    const output = toolOutput(options.executable, {
      label: "mongodump",
      args: mongodumpArguments(configuration.path, options.dumpOptions),
      signal: options.signal,
      logger: options.logger,
      explainFailure: explainDumpFailure,
    });
    removeWhenClosed(output, configuration, options.logger, "the temporary configuration file");
    return expectArchive(output, (error) => toolError(error, options));
  } catch (error) {
    await configuration.remove();
    throw error;
  }
}

/** Feeds the archive to `mongorestore --archive`; the configuration file is removed however it ends. */
export async function toolRestore(
  input: Readable,
  options: ToolRunOptions & { drop: boolean; restoreOptions: readonly string[]; insertionWorkers?: number },
): Promise<void> {
  // A database in the URI would make mongorestore filter the archive instead of renaming it.
  const uri = withTimeouts(withoutDatabase(options.url), options.connectTimeoutMs);
  const configuration = await writeToolConfiguration(options.workDirectory, uri);
  try {
    await runToolWithInput(
      options.executable,
      {
        label: "mongorestore",
        args: mongorestoreArguments(configuration.path, {
          database: parseMongoUrl(options.url).database,
          drop: options.drop,
          restoreOptions: options.restoreOptions,
          insertionWorkers: options.insertionWorkers,
        }),
        signal: options.signal,
        logger: options.logger,
        explainFailure: explainRestoreFailure,
      },
      input,
    );
  } catch (error) {
    throw toolError(error, options);
  } finally {
    await configuration.remove();
  }
}
