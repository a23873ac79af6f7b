import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  type ArchiveCheck,
  type Driver,
  type DumpContext,
  HoardError,
  type InspectContext,
  type Inventory,
  type Logger,
  type RestoreContext,
  type RestoreInput,
} from "@hoard/core";
import {
  checkDumpOutput,
  connectTimeoutSecondsOf,
  type DriverSettingsBag,
  describeFound,
  findExecutable,
  locateTool,
  log,
  redactUrl,
  removeWhenClosed,
  runTool,
  runToolWithInput,
  type ToolOptions,
  targetNotEmpty,
  targetNotEmptyError,
  toolOutput,
} from "@hoard/core/plugin";
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
  explainDumpFailure,
  explainMariadbFailure,
  failedBeforeStatements,
  handshakeTimeout,
  isProgressLine,
  partialRestoreFailure,
  unreachable,
} from "./errors.js";
import { dumpScanner, dumpToolVersion, exactCountsQuery, parseCounts, parseTables, serverOf, tablesQuery } from "./inspect.js";
import { type MariadbDriverOptions, optionsFromSettings } from "./options.js";
import { countBytes, sqlDumpCheck } from "./output.js";
import { databasesIn, parseFound, systemDatabases, userObjectsQuery } from "./target.js";

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
  const timeoutSeconds = connectTimeoutSecondsOf("mariadb", options.connectTimeoutMs);
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
      throw targetNotEmpty("mariadb", connection.database, describeFound(found.get(connection.database) ?? []));
    }
    const listed = [...found].map(([database, objects]) => `${database} (${describeFound(objects)})`).join("; ");
    throw targetNotEmptyError("mariadb", `the dump restores into databases that are not empty: ${listed}`, true);
  };

  /** Runs `work` with the client and its connection arguments (credentials in a private file, removed afterwards). */
  const withClient = async <T>(context: InspectContext, work: (executable: string, base: string[]) => Promise<T>): Promise<T> => {
    const executable = await locateTool("mariadb", {
      configured: options.clientExecutable,
      names: ["mariadb", "mysql"],
      hint: installHint,
      option: "clientExecutable",
    });
    const credentials = await credentialsIn(context.workDirectory, context.logger ?? options.logger);
    try {
      return await work(executable, [...credentials.arguments, ...connectionArguments(connection), `--connect-timeout=${timeoutSeconds}`]);
    } finally {
      await credentials.remove();
    }
  };

  /** The databases an inventory covers: the URL's, or every database but the server's own. */
  const inventoriedDatabases = async (executable: string, base: string[], context: InspectContext): Promise<string[]> => {
    if (connection.database !== undefined) return [connection.database];
    const listed = await query(executable, base, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA", context);
    return listed.split("\n").filter((name) => name && !systemDatabases.has(name.toLowerCase()));
  };

  return {
    name: "mariadb",
    url: redactUrl(options.url),
    extension: "sql",

    async describe(context: InspectContext) {
      const version = await withClient(context, (executable, base) => query(executable, base, "SELECT VERSION()", context));
      const dumpExecutable = await locateTool("mariadb", {
        configured: options.dumpExecutable,
        names: ["mariadb-dump", "mysqldump"],
        hint: installHint,
        option: "dumpExecutable",
      });
      const tooled = await runTool(dumpExecutable, toolOptions(dumpExecutable, ["--version"], context));
      return { server: serverOf(version), tool: { name: basename(dumpExecutable), version: dumpToolVersion(tooled) } };
    },

    async inventory(context: InspectContext): Promise<Inventory> {
      return withClient(context, async (executable, base) => {
        const databases = await inventoriedDatabases(executable, base, context);
        if (databases.length === 0) return { items: [], exactCounts: context.exactCounts === true };
        const single = connection.database !== undefined;
        const items = parseTables(await query(executable, base, tablesQuery(databases), context), single);
        if (!context.exactCounts) return { items, exactCounts: false };
        const tables = items.filter((item) => item.kind === "table");
        const counting = exactCountsQuery(
          tables.map((item) => ({ database: item.database ?? (connection.database as string), name: item.name })),
        );
        const counts = counting ? parseCounts(await query(executable, base, counting, context)) : new Map<string, number>();
        for (const item of tables) item.count = counts.get(`${item.database ?? connection.database}\x00${item.name}`);
        return { items, exactCounts: true };
      });
    },

    async checkArchive(input: RestoreInput, context: InspectContext): Promise<ArchiveCheck> {
      if (input.kind !== "stream") {
        throw new HoardError("UNSUPPORTED_FORMAT", "mariadb: a dump is one SQL stream, not a directory of files");
      }
      const scanner = dumpScanner();
      await pipeline(input.stream, scanner.sink, { signal: context.signal });
      return scanner.result();
    },

    async prepareScratch(context: InspectContext) {
      const database = connection.database;
      if (database === undefined) {
        throw new HoardError(
          "INVALID_ARGUMENT",
          "mariadb: a drill restores into one database: name it in the URL (mariadb://host/scratch)",
        );
      }
      return withClient(context, async (executable, base) => {
        const found = await query(
          executable,
          base,
          `SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${hexLiteral(database)}`,
          context,
        );
        if (found.trim() === "1") {
          const objects = parseFound(await query(executable, base, userObjectsQuery([database]), context));
          if (objects.size > 0) throw targetNotEmpty("mariadb", database, describeFound(objects.get(database) ?? []));
          return { created: false, release: async () => {} };
        }
        await query(executable, base, `CREATE DATABASE ${quoteIdentifier(database)}`, context);
        return {
          created: true,
          // Without the drill's signal: an interrupted drill still drops what it created.
          release: () =>
            withClient({ ...context, signal: undefined }, (client, arguments_) =>
              query(client, arguments_, `DROP DATABASE IF EXISTS ${quoteIdentifier(database)}`, { logger: context.logger }),
            ).then(() => undefined),
        };
      });
    },

    async dump(context: DumpContext) {
      if (context.signal?.aborted) throw new HoardError("ABORTED", "mariadb: dump aborted before it started");
      const logger = context.logger ?? options.logger;
      const executable = await locateTool("mariadb", {
        configured: options.dumpExecutable,
        names: ["mariadb-dump", "mysqldump"],
        hint: installHint,
        option: "dumpExecutable",
      });
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
      let output: Readable;
      try {
        output = toolOutput(executable, {
          ...toolOptions(executable, args, context),
          explainFailure: explainDumpFailure,
          onStderrLine: (line) => {
            if (!connected && isProgressLine(line)) markConnected();
          },
        });
      } catch (error) {
        await credentials.remove();
        throw error;
      }
      const checked = checkDumpOutput(
        output,
        sqlDumpCheck(label, { completion: verifyCompletion, lenientStart: commentsAreOff }),
        classifyFailure,
      );
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
      checked.on("close", () => {
        markConnected();
        probing.abort();
      });
      removeWhenClosed(checked, credentials, logger, "the temporary option file");
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
        const executable = await locateTool("mariadb", {
          configured: options.clientExecutable,
          names: ["mariadb", "mysql"],
          hint: installHint,
          option: "clientExecutable",
        });
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

/** For the registry: `mariadb://` and `mysql://` URLs, with the settings bag of the CLI or a config file. */
export function createDriverFromUrl(url: string, settings: DriverSettingsBag = {}): Driver {
  return createMariadbDriver(optionsFromSettings(url, settings));
}
