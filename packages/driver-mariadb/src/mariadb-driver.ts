import { basename } from "node:path";
import { PassThrough, type Readable, Transform } from "node:stream";
import {
  type Driver,
  type DriverSettings,
  type DumpContext,
  describeError,
  findExecutable,
  HoardError,
  type Logger,
  log,
  type RestoreContext,
  type RestoreInput,
  redactUrl,
  requireExecutable,
  runTool,
  runToolWithInput,
  type ToolOptions,
  toolOutput,
} from "@hoard/core";
import {
  type ClientCredentials,
  competingOptionFile,
  connectionArguments,
  parseMariadbUrl,
  quoteIdentifier,
  writeCredentials,
} from "./connection.js";
import { classifyFailure, explainMariadbFailure, failedBeforeStatements, partialRestoreFailure } from "./failures.js";

/** Options of the MariaDB driver. */
export interface MariadbDriverOptions {
  /**
   * `mariadb://user:password@host:port/database` (or `mysql://`). Without a database
   * (`mariadb://user:password@host:port`) the driver dumps every database. `?socket=/path`
   * connects through a Unix socket. The password reaches the tools through a private temporary
   * option file, never their command line.
   */
  url: string;
  /** Extra mariadb-dump arguments, after hoard's own so they can override them, e.g. `["--ignore-table=db.audit"]`. */
  dumpOptions?: string[];
  /** Extra mariadb client arguments for restores, e.g. `["--force"]`. */
  restoreOptions?: string[];
  /**
   * Dump every database with `--all-databases` (the `mysql` system database with its accounts
   * included) and restore such a dump as it is. Must agree with the URL: true needs a URL without
   * a database, false one with a database.
   * @default true when the URL names no database
   */
  allDatabases?: boolean;
  /**
   * Create the URL's database (`CREATE DATABASE`, server defaults) before a restore when it does
   * not exist.
   * @default true
   */
  createDatabase?: boolean;
  /**
   * Fail a dump whose output does not end with mariadb-dump's `-- Dump completed` line, which
   * catches a tool that was cut short but still exited 0.
   * @default true, unless dumpOptions turn comments off (`--compact`, `--skip-comments`)
   */
  verifyCompletion?: boolean;
  /** The dump program, a name looked up on PATH or a path. @default mariadb-dump, else mysqldump */
  dumpExecutable?: string;
  /** The client program for restores, a name looked up on PATH or a path. @default mariadb, else mysql */
  clientExecutable?: string;
  logger?: Logger;
}

const installHint =
  "install the MariaDB client programs (Debian/Ubuntu: apt install mariadb-client; Alpine: apk add mariadb-client; macOS: brew install mariadb)";

/**
 * What every dump gets, and why:
 * - `--single-transaction` reads all InnoDB tables in one consistent snapshot without locking
 *   them; `--skip-lock-tables` because LOCK TABLES would end that snapshot's transaction (and
 *   needs a privilege the snapshot does not). Non-transactional tables (MyISAM, Aria) are read
 *   as they are at that moment.
 * - `--routines --events --triggers`: procedures, functions and events are off by default
 *   (triggers are on; named anyway so the list says everything a dump carries).
 * - `--hex-blob`: binary columns as hex literals, so no byte depends on character set handling.
 * - `--default-character-set=utf8mb4`: text reaches the dump unaltered, emoji included.
 * - `--quick`: rows are streamed, not buffered in the tool's memory.
 * - `--max-allowed-packet=1G`: the client's limit, so a large row never fails on the client side.
 */
const dumpFlags = [
  "--single-transaction",
  "--skip-lock-tables",
  "--quick",
  "--routines",
  "--events",
  "--triggers",
  "--hex-blob",
  "--default-character-set=utf8mb4",
  "--max-allowed-packet=1G",
];

/**
 * What every restore gets: `--binary-mode` sends the SQL to the server as it is (no `\r\n`
 * rewriting, and client commands such as `\!` that run programs are refused) while DELIMITER still
 * works for routines and triggers; utf8mb4 and a large packet limit as for dumps.
 */
const restoreFlags = ["--binary-mode", "--default-character-set=utf8mb4", "--max-allowed-packet=1G"];

const commentsOff = /^--(?:loose-)?(?:(?:skip|disable)-comments|comments=(?:0|false|off)|compact)$/i;

/**
 * The MariaDB (and MySQL) driver. Dumps with mariadb-dump (or mysqldump) as plain SQL, `.sql`.
 * One database is dumped without `--databases`, so the SQL has no CREATE DATABASE or USE and
 * restores into whatever database the restore URL names; a URL without a database dumps all of
 * them with `--all-databases`. Restores feed the SQL to the mariadb (or mysql) client.
 */
export function createMariadbDriver(options: MariadbDriverOptions): Driver {
  const connection = parseMariadbUrl(options.url);
  const allDatabases = options.allDatabases ?? connection.database === undefined;
  if (allDatabases && connection.database !== undefined) {
    throw new HoardError("INVALID_ARGUMENT", `mariadb: allDatabases needs a URL without a database: ${redactUrl(options.url)}`);
  }
  if (!allDatabases && connection.database === undefined) {
    throw new HoardError("INVALID_ARGUMENT", `mariadb: the URL names no database: ${redactUrl(options.url)} (add /database)`);
  }
  const dumpOptions = options.dumpOptions ?? [];
  const verifyCompletion = options.verifyCompletion ?? !dumpOptions.some((option) => commentsOff.test(option));
  const target = connection.database === undefined ? "the server's databases" : `database ${quoteIdentifier(connection.database)}`;

  /** The tools' arguments for the password, after a warning when the user's option file would override it. */
  const credentialsIn = async (directory: string, logger: Logger | undefined): Promise<ClientCredentials> => {
    const competing = connection.password ? await competingOptionFile() : undefined;
    if (competing) log(logger, "warn", `${competing} sets a password, which the MariaDB tools use instead of the URL's`);
    return writeCredentials(connection.password, directory);
  };

  const toolOptions = (executable: string, args: string[], context: { signal?: AbortSignal; logger?: Logger }): ToolOptions => ({
    label: basename(executable),
    args,
    signal: context.signal,
    logger: context.logger ?? options.logger,
    explainFailure: explainMariadbFailure,
  });

  return {
    name: "mariadb",
    url: redactUrl(options.url),
    extension: "sql",

    async dump(context: DumpContext) {
      if (context.signal?.aborted) throw new HoardError("ABORTED", "mariadb: dump aborted before it started");
      const executable = await locate(options.dumpExecutable, ["mariadb-dump", "mysqldump"], "dumpExecutable");
      const credentials = await credentialsIn(context.workDirectory, context.logger ?? options.logger);
      const what = connection.database === undefined ? ["--all-databases", "--flush-privileges"] : ["--", connection.database];
      const args = [...credentials.arguments, ...connectionArguments(connection), ...dumpFlags, ...dumpOptions, ...what];
      log(context.logger ?? options.logger, "debug", `dumping ${target} with ${executable}`);
      let output: Readable;
      try {
        output = toolOutput(executable, toolOptions(executable, args, context));
      } catch (error) {
        await credentials.remove();
        throw error;
      }
      const checked = verifyCompletion ? completionCheck(basename(executable)) : new PassThrough();
      output.on("error", (error) => checked.destroy(classifyFailure(error) as Error));
      output.pipe(checked);
      checked.on("close", () => {
        output.destroy();
        credentials.remove().catch((error: unknown) => {
          log(context.logger ?? options.logger, "warn", `could not remove the temporary option file: ${describeError(error)}`);
        });
      });
      return { kind: "stream", stream: checked };
    },

    async restore(input: RestoreInput, context: RestoreContext) {
      if (input.kind !== "stream") {
        throw new HoardError("UNSUPPORTED_FORMAT", "mariadb: restores read one SQL stream, not a directory of files");
      }
      const { stream } = input;
      const logger = context.logger ?? options.logger;
      let fed = 0;
      let reported = 0;
      const counted = countBytes(stream, (bytes) => {
        fed = bytes;
        if (logger && Date.now() - reported >= 1000) {
          reported = Date.now();
          logger.event({ type: "progress", phase: "restore", bytes });
        }
      });
      // An input that fails before the client reads it must not crash the process; it is checked below.
      counted.on("error", () => {});
      let credentials: ClientCredentials | undefined;
      let clientStarted = false;
      try {
        const executable = await locate(options.clientExecutable, ["mariadb", "mysql"], "clientExecutable");
        credentials = await credentialsIn(context.workDirectory, logger);
        const base = [...credentials.arguments, ...connectionArguments(connection)];
        if (connection.database !== undefined && (options.createDatabase ?? true)) {
          await ensureDatabase(executable, base, connection.database, (args) => toolOptions(executable, args, context));
        }
        if (counted.errored) throw counted.errored;
        if (context.signal?.aborted) throw new HoardError("ABORTED", "mariadb: restore aborted before it started");
        const database = connection.database === undefined ? [] : [`--database=${connection.database}`];
        log(logger, "debug", `restoring into ${target} with ${executable}`);
        const args = [...base, ...restoreFlags, ...database, ...(options.restoreOptions ?? [])];
        clientStarted = true;
        await runToolWithInput(executable, toolOptions(executable, args, context), counted);
      } catch (error) {
        counted.destroy();
        const classified = classifyFailure(error);
        const mayBePartial = clientStarted && fed > 0 && !failedBeforeStatements(classified);
        throw mayBePartial ? partialRestoreFailure(classified, target) : classified;
      } finally {
        await credentials?.remove();
      }
    },
  };
}

/** For the registry: `mariadb://` and `mysql://` URLs. */
export function createDriverFromUrl(url: string, settings: DriverSettings = {}): Driver {
  return createMariadbDriver({
    url,
    dumpOptions: settings.dumpOptions,
    restoreOptions: settings.restoreOptions,
    logger: settings.logger,
  });
}

/** The configured program, or the first of `names` on PATH; TOOL_NOT_FOUND says what to install. */
async function locate(configured: string | undefined, names: string[], option: string): Promise<string> {
  if (configured === undefined) return requireExecutable(names, `${installHint}, or set ${option}`);
  const found = await findExecutable([configured]);
  if (!found) throw new HoardError("TOOL_NOT_FOUND", `mariadb: ${option} ${configured} is not an executable program: ${installHint}`);
  return found;
}

/**
 * Creates the database unless it exists. Whoever may create tables in it (CREATE on `db.*`) may
 * also create the database itself, so this needs no privilege the restore does not need anyway.
 */
async function ensureDatabase(
  executable: string,
  base: string[],
  database: string,
  toolOptions: (args: string[]) => ToolOptions,
): Promise<void> {
  await runTool(
    executable,
    toolOptions([...base, "--default-character-set=utf8mb4", "--execute", `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(database)}`]),
  );
}

const tailLength = 256;

/**
 * Passes the dump through and fails at its end unless the last line is mariadb-dump's
 * `-- Dump completed`: a tool killed in a way that still exits 0 leaves a truncated dump that
 * would otherwise be stored as a good one. Keeps only the last bytes, so memory stays flat.
 */
export function completionCheck(label: string): Transform {
  let tail = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      tail = chunk.length >= tailLength ? Buffer.from(chunk.subarray(-tailLength)) : Buffer.concat([tail, chunk]).subarray(-tailLength);
      callback(null, chunk);
    },
    flush(callback) {
      if (/(^|\n)-- Dump completed[^\n]*\n*$/.test(tail.toString("latin1"))) return callback();
      callback(
        new HoardError(
          "TOOL_FAILED",
          `${label} exited successfully, but its output does not end with "-- Dump completed": the dump is incomplete and was not stored`,
        ),
      );
    },
  });
}

/** Counts the bytes that pass, reporting the running total; errors of `source` are passed on. */
function countBytes(source: Readable, onCount: (bytes: number) => void): Readable {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      onCount(bytes);
      callback(null, chunk);
    },
  });
  source.on("error", (error) => counter.destroy(error));
  counter.on("close", () => source.destroy());
  return source.pipe(counter);
}
