import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { type Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StringDecoder } from "node:string_decoder";
import {
  type Driver,
  type DriverSettings,
  type DumpContext,
  defaultNetworkTimeoutMs,
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
  describeAddress,
  hexLiteral,
  parseMariadbUrl,
  quoteIdentifier,
  writeCredentials,
} from "./connection.js";
import {
  classifyFailure,
  explainMariadbFailure,
  failedBeforeStatements,
  handshakeTimeout,
  partialRestoreFailure,
  unreachable,
} from "./failures.js";

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
  /**
   * How long to wait for the server to accept a connection and answer, in milliseconds (whole
   * seconds are used). The client gets `--connect-timeout`; mariadb-dump has no such option, so
   * when it has neither connected (its `--verbose` progress on stderr) nor written anything within
   * this time, the client asks the server, and the dump is stopped when that gets no answer
   * either. A host that never answers fails with UNREACHABLE.
   * @default 15_000
   */
  connectTimeoutMs?: number;
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
  const commentsAreOff = dumpOptions.some((option) => commentsOff.test(option));
  const verifyCompletion = options.verifyCompletion ?? !commentsAreOff;
  const target = connection.database === undefined ? "the server's databases" : `database ${quoteIdentifier(connection.database)}`;
  const timeoutSeconds = connectTimeoutSeconds(options.connectTimeoutMs);
  const address = describeAddress(connection);

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

  /** Runs SQL with the client (connect timeout included) and returns its rows, tab-separated. */
  const query = async (executable: string, base: string[], sql: string, context: { signal?: AbortSignal; logger?: Logger }) => {
    const args = [...base, "--batch", "--raw", "--skip-column-names", "--default-character-set=utf8mb4", "--execute", sql];
    try {
      return await runTool(executable, toolOptions(executable, args, context));
    } catch (error) {
      throw classifyFailure(handshakeTimeout(error, address, timeoutSeconds));
    }
  };

  /**
   * Whether the server answers the client within the connect timeout: false when it does not (or
   * cannot be reached, or there is no client to ask), true when it answers, even with an error
   * such as a wrong password.
   */
  const serverAnswers = async (credentialArguments: string[], signal: AbortSignal): Promise<boolean> => {
    const executable = await findExecutable([options.clientExecutable ?? "mariadb", "mysql"]);
    if (!executable) return false;
    const base = [...credentialArguments, ...connectionArguments(connection), `--connect-timeout=${timeoutSeconds}`];
    try {
      await query(executable, base, "SELECT 1", { signal });
      return true;
    } catch (error) {
      return !(HoardError.isInstance(error) && error.code === "UNREACHABLE");
    }
  };

  /** Fails with TARGET_NOT_EMPTY, before anything is changed, when one of `databases` holds anything. */
  const checkEmpty = async (executable: string, base: string[], databases: string[], context: RestoreContext) => {
    if (databases.length === 0) return;
    const found = parseFound(await query(executable, base, userObjectsQuery(databases), context));
    if (found.size === 0) return;
    if (connection.database !== undefined) {
      throw new HoardError(
        "TARGET_NOT_EMPTY",
        `mariadb: ${connection.database} is not empty (${describeFound(found.get(connection.database) ?? [])}); use --replace to restore over it`,
      );
    }
    const listed = [...found].map(([database, objects]) => `${database} (${describeFound(objects)})`).join("; ");
    throw new HoardError(
      "TARGET_NOT_EMPTY",
      `mariadb: the dump restores into databases that are not empty: ${listed}; use --replace to restore over them`,
    );
  };

  return {
    name: "mariadb",
    url: redactUrl(options.url),
    extension: "sql",

    async dump(context: DumpContext) {
      if (context.signal?.aborted) throw new HoardError("ABORTED", "mariadb: dump aborted before it started");
      const logger = context.logger ?? options.logger;
      const executable = await locate(options.dumpExecutable, ["mariadb-dump", "mysqldump"], "dumpExecutable");
      const label = basename(executable);
      const credentials = await credentialsIn(context.workDirectory, logger);
      const what = connection.database === undefined ? ["--all-databases", "--flush-privileges"] : ["--", connection.database];
      // --verbose: progress on stderr tells the connect guard below that the tool got past connecting.
      const args = [...credentials.arguments, ...connectionArguments(connection), ...dumpFlags, "--verbose", ...dumpOptions, ...what];
      log(logger, "debug", `dumping ${target} with ${executable}`);
      let connected = false;
      let guard: NodeJS.Timeout | undefined;
      const markConnected = () => {
        connected = true;
        clearTimeout(guard);
      };
      // Every debug line this logger gets is a line of the tool's stderr (core logs them as `label: line`).
      const toolLogger: Logger = {
        event(event) {
          if (!connected && event.type === "log" && isProgressLine(event.message.slice(label.length + 2))) markConnected();
          logger?.event(event);
        },
      };
      let output: Readable;
      try {
        output = toolOutput(executable, {
          ...toolOptions(executable, args, { signal: context.signal, logger: toolLogger }),
          explainFailure: explainDumpFailure,
        });
      } catch (error) {
        await credentials.remove();
        throw error;
      }
      const checked = dumpCheck(label, { completion: verifyCompletion, lenientStart: commentsAreOff });
      // mariadb-dump has no connect timeout: a host that takes the connection and never answers would hang it forever.
      // No progress within the timeout is not proof, though: with --lock-all-tables or --master-data the tool waits for
      // FLUSH TABLES WITH READ LOCK before it says anything. So the client, which has a connect timeout, asks the
      // server first; only when that gets no answer either is the dump stopped.
      const probing = new AbortController();
      guard = setTimeout(() => {
        if (connected) return;
        serverAnswers(credentials.arguments, probing.signal).then((answers) => {
          if (!connected && !answers) checked.destroy(unreachable(address, timeoutSeconds));
        });
      }, timeoutSeconds * 1000);
      output.once("data", markConnected);
      output.on("error", (error) => checked.destroy(classifyFailure(error) as Error));
      output.pipe(checked);
      checked.on("close", () => {
        markConnected();
        probing.abort();
        output.destroy();
        credentials.remove().catch((error: unknown) => {
          log(logger, "warn", `could not remove the temporary option file: ${describeError(error)}`);
        });
      });
      return { kind: "stream", stream: checked };
    },

    async restore(input: RestoreInput, context: RestoreContext) {
      if (input.kind !== "stream") {
        throw new HoardError("UNSUPPORTED_FORMAT", "mariadb: restores read one SQL stream, not a directory of files");
      }
      const logger = context.logger ?? options.logger;
      let source: Readable = input.stream;
      // An input that fails before the client reads it must not crash the process; it is checked below.
      source.on("error", () => {});
      let counted: Readable | undefined;
      let fed = 0;
      let reported = 0;
      let credentials: ClientCredentials | undefined;
      let spool: string | undefined;
      let clientStarted = false;
      try {
        const executable = await locate(options.clientExecutable, ["mariadb", "mysql"], "clientExecutable");
        credentials = await credentialsIn(context.workDirectory, logger);
        const base = [...credentials.arguments, ...connectionArguments(connection), `--connect-timeout=${timeoutSeconds}`];
        if (!context.replace) {
          if (connection.database !== undefined) {
            await checkEmpty(executable, base, [connection.database], context);
          } else {
            // Which databases the SQL restores into (CREATE DATABASE, USE) is only known once it was read to the end.
            let databases: string[];
            if (input.path) {
              databases = await databasesIn(createReadStream(input.path), new Writable({ write: (_chunk, _encoding, done) => done() }));
            } else {
              spool = join(context.workDirectory, `mariadb-restore-${randomBytes(6).toString("hex")}.sql`);
              databases = await databasesIn(source, createWriteStream(spool, { mode: 0o600, flags: "wx" }), context.signal);
              source = createReadStream(spool);
            }
            await checkEmpty(
              executable,
              base,
              databases.filter((name) => !systemDatabases.has(name.toLowerCase())),
              context,
            );
          }
        }
        // Whoever may create tables in the database (CREATE on `db.*`) may also create it: no privilege the restore does not need anyway.
        if (connection.database !== undefined && (options.createDatabase ?? true)) {
          await query(executable, base, `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(connection.database)}`, context);
        }
        if (source.errored) throw source.errored;
        if (context.signal?.aborted) throw new HoardError("ABORTED", "mariadb: restore aborted before it started");
        counted = countBytes(source, (bytes) => {
          fed = bytes;
          if (logger && Date.now() - reported >= 1000) {
            reported = Date.now();
            logger.event({ type: "progress", phase: "restore", bytes });
          }
        });
        counted.on("error", () => {});
        const database = connection.database === undefined ? [] : [`--database=${connection.database}`];
        log(logger, "debug", `restoring into ${target} with ${executable}`);
        const args = [...base, ...restoreFlags, ...database, ...(options.restoreOptions ?? [])];
        clientStarted = true;
        await runToolWithInput(executable, toolOptions(executable, args, context), counted);
      } catch (error) {
        counted?.destroy();
        source.destroy();
        const classified = classifyFailure(handshakeTimeout(error, address, timeoutSeconds));
        const mayBePartial = clientStarted && fed > 0 && !failedBeforeStatements(classified);
        if (context.signal?.aborted || (HoardError.isInstance(classified) && classified.code === "ABORTED")) {
          const into = connection.database ?? "the server's databases";
          const state =
            connection.database === undefined ? "the databases may be partially restored" : "the database may be partially restored";
          throw new HoardError(
            "ABORTED",
            mayBePartial
              ? `mariadb: restore into ${into} aborted; ${state}`
              : `mariadb: restore into ${into} aborted before anything was restored`,
            { cause: classified, detail: HoardError.isInstance(classified) ? classified.detail : undefined },
          );
        }
        throw mayBePartial ? partialRestoreFailure(classified, target) : classified;
      } finally {
        await credentials?.remove();
        if (spool) await rm(spool, { force: true });
      }
    },
  };
}

/** Databases the server keeps for itself; an all-databases dump restores `mysql`, which is never empty. */
const systemDatabases = new Set(["mysql", "information_schema", "performance_schema", "sys"]);

/** The connect timeout in whole seconds, at least 1. */
function connectTimeoutSeconds(milliseconds: number | undefined): number {
  const value = milliseconds ?? defaultNetworkTimeoutMs;
  if (!Number.isFinite(value) || value <= 0) {
    throw new HoardError("INVALID_ARGUMENT", `mariadb: invalid connect timeout ${String(milliseconds)} ms: use a positive number`);
  }
  return Math.max(1, Math.ceil(value / 1000));
}

/** A `--verbose` progress line of mariadb-dump other than the one it writes before connecting. */
function isProgressLine(line: string): boolean {
  return line.startsWith("-- ") && !line.startsWith("-- Connecting to ");
}

/** The dump's failures, without its `--verbose` progress lines (which would otherwise be the "last line"). */
function explainDumpFailure(stderr: string): string | undefined {
  const explained = explainMariadbFailure(stderr);
  if (explained) return explained;
  const lines = stderr
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  const last = lines.filter((line) => !line.startsWith("-- ")).at(-1);
  if (last) return last;
  const step = lines.at(-1);
  return step ? `last step: ${step.replace(/^-- /, "")}` : undefined;
}

const kindOrder = ["table", "view", "sequence", "procedure", "function", "package", "package body", "event"];

/**
 * Tables, views, sequences, routines and events in the given databases: one row per database and
 * kind with its count and the first two names. Names are compared as bytes (hex literals): no
 * escaping to get wrong and no case folding.
 */
function userObjectsQuery(databases: string[]): string {
  const list = databases.map(hexLiteral).join(", ");
  return `SELECT db, kind, COUNT(*), SUBSTRING_INDEX(GROUP_CONCAT(name ORDER BY name SEPARATOR '\x1f'), '\x1f', 2) FROM (
  SELECT TABLE_SCHEMA AS db, CASE TABLE_TYPE WHEN 'VIEW' THEN 'view' WHEN 'SEQUENCE' THEN 'sequence' ELSE 'table' END AS kind, TABLE_NAME AS name
    FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (${list})
  UNION ALL SELECT ROUTINE_SCHEMA, LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN (${list})
  UNION ALL SELECT EVENT_SCHEMA, 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN (${list})
) found GROUP BY db, kind`;
}

interface FoundObjects {
  kind: string;
  count: number;
  examples: string[];
}

function parseFound(output: string): Map<string, FoundObjects[]> {
  const found = new Map<string, FoundObjects[]>();
  for (const row of output.split("\n")) {
    if (!row) continue;
    const [database = "", kind = "", count = "0", examples = ""] = row.split("\t");
    const entries = found.get(database) ?? [];
    entries.push({ kind, count: Number(count), examples: examples.split("\x1f").filter(Boolean) });
    found.set(database, entries);
  }
  for (const entries of found.values()) entries.sort((a, b) => kindOrder.indexOf(a.kind) - kindOrder.indexOf(b.kind));
  return found;
}

/** `3 tables, 1 view, e.g. customers, orders`. */
function describeFound(found: FoundObjects[]): string {
  const counts = found.map(({ kind, count }) => `${count} ${count === 1 ? kind : kind === "package body" ? "package bodies" : `${kind}s`}`);
  const examples = found.flatMap((entry) => entry.examples).slice(0, 2);
  return `${counts.join(", ")}${examples.length > 0 ? `, e.g. ${examples.join(", ")}` : ""}`;
}

const databaseStatement =
  /^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:DATABASE|SCHEMA)\s+(?:\/\*!\d*\s*)?(?:IF\s+NOT\s+EXISTS\s*)?(?:\*\/\s*)?|USE\s+)(`(?:[^`]|``)+`|[^\s;`]+)/i;

/** How much of a line is kept to look for a database statement; longer lines (rows of data) are cut. */
const scannedLineLength = 4096;

/**
 * Copies `source` to `sink` and returns the databases its SQL creates or switches to (`CREATE
 * DATABASE`, `USE`), reading line by line with bounded memory.
 */
async function databasesIn(source: Readable, sink: Writable, signal?: AbortSignal): Promise<string[]> {
  const names = new Set<string>();
  const decoder = new StringDecoder("utf8");
  let line = "";
  const scan = (text: string, final: boolean) => {
    const parts = text.split("\n");
    const last = final ? undefined : parts.pop();
    for (const [index, part] of parts.entries()) {
      const whole = index === 0 ? line + part : part;
      const match = databaseStatement.exec(whole.slice(0, scannedLineLength));
      const name = match?.[1];
      if (name) names.add(name.startsWith("`") ? name.slice(1, -1).replaceAll("``", "`") : name);
    }
    line = last === undefined ? "" : (parts.length === 0 ? line + last : last).slice(0, scannedLineLength);
  };
  const scanner = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      scan(decoder.write(chunk), false);
      callback(null, chunk);
    },
    flush(callback) {
      scan(decoder.end(), true);
      callback();
    },
  });
  await pipeline(source, scanner, sink, { signal });
  return [...names];
}

/** For the registry: `mariadb://` and `mysql://` URLs. */
export function createDriverFromUrl(url: string, settings: DriverSettings = {}): Driver {
  return createMariadbDriver({
    url,
    dumpOptions: settings.dumpOptions,
    restoreOptions: settings.restoreOptions,
    connectTimeoutMs: settings.connectTimeoutMs,
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

const tailLength = 256;

/** How mariadb-dump and mysqldump output begins: the sandbox-mode line (MariaDB 10.11.8 and later) or the banner comment. */
const dumpStarts = ["/*M!999999", "-- MariaDB dump", "-- MySQL dump"];
const headLength = Math.max(...dumpStarts.map((start) => start.length));

/**
 * Passes the dump through, checking both ends:
 * - its first bytes must be how mariadb-dump starts (see `dumpStarts`; with comments turned off,
 *   older versions start with a `/*!` versioned comment instead): a dump option that redirects
 *   the output (`--result-file`) would otherwise leave an empty backup that looks fine. Nothing is
 *   passed on before this is checked.
 * - with `completion`, its last line must be `-- Dump completed`: a tool killed in a way that
 *   still exits 0 leaves a truncated dump that would otherwise be stored as a good one. Only the
 *   last bytes are kept, so memory stays flat.
 */
export function dumpCheck(label: string, options: { completion: boolean; lenientStart: boolean }): Transform {
  let head: Buffer | undefined = Buffer.alloc(0);
  let tail = Buffer.alloc(0);
  const startsWell = (bytes: Buffer) => {
    const text = bytes.toString("latin1");
    return dumpStarts.some((start) => text.startsWith(start)) || (options.lenientStart && text.startsWith("/*!"));
  };
  const noDump = () =>
    new HoardError("TOOL_FAILED", `${label} produced no SQL dump on its output (does a --dump-option redirect it, e.g. --result-file?)`);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      tail = chunk.length >= tailLength ? Buffer.from(chunk.subarray(-tailLength)) : Buffer.concat([tail, chunk]).subarray(-tailLength);
      if (head === undefined) return callback(null, chunk);
      head = Buffer.concat([head, chunk]);
      if (head.length < headLength) return callback();
      if (!startsWell(head)) return callback(noDump());
      const pending = head;
      head = undefined;
      callback(null, pending);
    },
    flush(callback) {
      if (head !== undefined) {
        if (!startsWell(head)) return callback(noDump());
        this.push(head);
      }
      if (!options.completion || /(^|\n)-- Dump completed[^\n]*\n*$/.test(tail.toString("latin1"))) return callback();
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
