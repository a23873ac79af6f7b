import { rm, stat } from "node:fs/promises";
import { basename } from "node:path";
import { pipeline, type Readable, Transform } from "node:stream";
import { pipeline as pipelineAsync } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import type { ArchiveCheck, Driver, DumpContext, InspectContext, Inventory, RestoreContext, RestoreInput } from "@hoard/core";
import {
  checkDumpOutput,
  type DriverSettingsBag,
  findExecutable,
  HoardError,
  log,
  peekStream,
  requireExecutable,
  runTool,
  runToolWithInput,
  type ToolOptions,
  toolOutput,
} from "@hoard/core/plugin";
import { checkDumpEnd, explainSqliteFailure, type FailureContext, toSqliteError } from "./errors.js";
import { countsQuery, dumpScanner, parseCounts, parseSchema, schemaQuery, sqliteVersion } from "./inspect.js";
import { optionsFromSettings, parseSqliteUrl, type SqliteDriverOptions } from "./options.js";
import { checkTarget, prepareTemporaryFile, type RestoreTarget } from "./target.js";

const installHint =
  "install the sqlite3 program (Debian/Ubuntu: apt install sqlite3; Alpine: apk add sqlite; macOS: it comes with the system)";
const defaultLockTimeoutMs = 15_000;

/**
 * What every sqlite3 run gets: `-init /dev/null` so a `~/.sqliterc` changes nothing; `-bail` so
 * the first error stops it; `-safe` so nothing it reads can run programs, touch other files or
 * load extensions (`.shell`, `.output`, `ATTACH`, `writefile()`, `load_extension()` are refused),
 * which matters when it reads a backup back.
 */
const baseArguments = ["-init", "/dev/null", "-bail", "-safe"];

/**
 * The settings `.dump` leaves out, written as PRAGMAs in front of it, so a restore gets them back:
 * the page size and auto-vacuum mode (only settable before the first table), the application's
 * `user_version` and `application_id`, and WAL mode.
 */
const settingsQuery = [
  "SELECT printf('PRAGMA page_size=%d;', page_size) FROM pragma_page_size",
  "SELECT printf('PRAGMA auto_vacuum=%d;', auto_vacuum) FROM pragma_auto_vacuum",
  "SELECT printf('PRAGMA user_version=%d;', user_version) FROM pragma_user_version",
  "SELECT printf('PRAGMA application_id=%d;', application_id) FROM pragma_application_id",
  "SELECT 'PRAGMA journal_mode=WAL;' FROM pragma_journal_mode WHERE journal_mode = 'wal'",
].join(" UNION ALL ");

/** How a dump begins: the driver's PRAGMAs, or (a dump made with `sqlite3 file .dump` alone) sqlite3's own first lines. */
const dumpStarts = ["PRAGMA page_size=", "PRAGMA foreign_keys=OFF;", "BEGIN TRANSACTION;"];
const headLength = Math.max(...dumpStarts.map((start) => start.length));

/**
 * The SQLite driver. Dumps a database file with `sqlite3 .dump` as SQL (`.sql`), in one read
 * transaction, and restores such a dump into a new file beside the target that replaces the
 * target only once the restore succeeded.
 */
export function createSqliteDriver(options: SqliteDriverOptions): Driver {
  const file = parseSqliteUrl(options.url);
  const lockTimeoutMs = options.lockTimeoutMs ?? defaultLockTimeoutMs;
  if (!Number.isFinite(lockTimeoutMs) || lockTimeoutMs < 0) {
    throw new HoardError("INVALID_ARGUMENT", `sqlite: lockTimeoutMs must be a number of milliseconds, not ${String(lockTimeoutMs)}`);
  }
  const busyTimeout = ["-cmd", `.timeout ${Math.ceil(lockTimeoutMs)}`];

  const locate = async (): Promise<string> => {
    if (options.executable === undefined) return requireExecutable(["sqlite3"], installHint);
    const found = await findExecutable([options.executable]);
    if (!found) throw new HoardError("TOOL_NOT_FOUND", `sqlite: ${options.executable} is not an executable program: ${installHint}`);
    return found;
  };

  const toolOptions = (executable: string, args: string[], context: DumpContext | RestoreContext | InspectContext): ToolOptions => ({
    label: basename(executable),
    args,
    signal: context.signal,
    logger: context.logger ?? options.logger,
    explainFailure: explainSqliteFailure,
  });

  return {
    name: "sqlite",
    url: `sqlite://${pathToFileURL(file).pathname}`,
    extension: "sql",
    // A restore writes a new file that replaces the target only once sqlite3 succeeded with the whole dump.
    atomicRestore: true,

    async describe(context: InspectContext) {
      const executable = await locate();
      const version = sqliteVersion(await runTool(executable, toolOptions(executable, ["-version"], context)));
      return { server: { product: "SQLite", version }, tool: { name: "sqlite3", version } };
    },

    async inventory(context: InspectContext): Promise<Inventory> {
      await checkSource(file);
      const executable = await locate();
      const failure: FailureContext = { file, doing: `inventory of ${file}`, lockTimeoutMs };
      const ask = (sql: string) =>
        runTool(
          executable,
          toolOptions(executable, [...baseArguments, ...busyTimeout, "-readonly", "-list", "-noheader", file, sql], context),
        ).catch((error: unknown) => {
          throw toSqliteError(error, failure);
        });
      const items = parseSchema(await ask(schemaQuery));
      if (!context.exactCounts) return { items, exactCounts: false };
      const counting = countsQuery(items.filter((item) => item.kind === "table").map((item) => item.name));
      const counts = counting ? parseCounts(await ask(counting)) : new Map<string, number>();
      for (const item of items) if (item.kind === "table") item.count = counts.get(item.name);
      return { items, exactCounts: true };
    },

    async checkArchive(input: RestoreInput, context: InspectContext): Promise<ArchiveCheck> {
      if (input.kind !== "stream") throw new HoardError("UNSUPPORTED_FORMAT", "sqlite: a dump is one SQL stream, not a directory of files");
      const scanner = dumpScanner();
      await pipelineAsync(input.stream, scanner.sink, { signal: context.signal });
      return scanner.result();
    },

    async prepareScratch(context: InspectContext) {
      const executable = await locate();
      const target = await checkTarget(file, {
        replace: false,
        query: (args) => runTool(executable, toolOptions(executable, [...baseArguments, ...busyTimeout, ...args], context)),
        failure: { file, doing: `check of ${file}`, lockTimeoutMs },
      });
      if (target.existing) return { created: false, release: async () => {} };
      return {
        created: true,
        release: async () => {
          for (const suffix of ["", "-wal", "-shm", "-journal"]) await rm(`${target.path}${suffix}`, { force: true });
        },
      };
    },

    async dump(context: DumpContext) {
      if (context.signal?.aborted) throw new HoardError("ABORTED", "sqlite: dump aborted before it started");
      await checkSource(file);
      const executable = await locate();
      const failure: FailureContext = { file, doing: `dump of ${file}`, lockTimeoutMs };
      log(context.logger ?? options.logger, "debug", `dumping ${file} with ${executable}`);
      // BEGIN ... COMMIT around everything: the settings and `.dump` (whose own SAVEPOINT nests in
      // it) read one snapshot. Its shared lock keeps writers from committing until the dump is
      // done; in WAL mode they go on, and the dump does not see what they write.
      const args = [...baseArguments, ...busyTimeout, "-readonly", file, "BEGIN", settingsQuery, ".dump", "COMMIT"];
      const output = toolOutput(executable, toolOptions(executable, args, context));
      let peeked: { head: Buffer; stream: Readable };
      try {
        peeked = await peekStream(output, headLength);
      } catch (error) {
        output.destroy();
        throw toSqliteError(error, failure);
      }
      const head = peeked.head.toString("latin1");
      if (!dumpStarts.some((start) => head.startsWith(start))) {
        output.destroy();
        throw new HoardError(
          "TOOL_FAILED",
          `sqlite: ${executable} produced no SQL dump (it began with ${shown(peeked.head)}): is it sqlite3?`,
        );
      }
      const stream = checkDumpOutput(
        peeked.stream,
        {
          tool: basename(executable),
          format: "SQL dump",
          redirects: "",
          plugin: "sqlite",
          // The start was checked above.
          length: 0,
          accepts: () => true,
          end: { length: 1024, check: (tail) => checkDumpEnd(tail, failure) },
        },
        (error) => toSqliteError(error, failure),
      );
      return { kind: "stream", stream };
    },

    async restore(input: RestoreInput, context: RestoreContext) {
      if (input.kind !== "stream") {
        throw new HoardError("UNSUPPORTED_FORMAT", "sqlite: restores read one SQL stream, not a directory of files");
      }
      const logger = context.logger ?? options.logger;
      input.stream.on("error", () => {});
      let target: RestoreTarget | undefined;
      let started = false;
      try {
        if (context.signal?.aborted) throw new HoardError("ABORTED", `sqlite: restore into ${file} aborted before it started`);
        const executable = await locate();
        target = await checkTarget(file, {
          replace: context.replace ?? false,
          query: (args) => runTool(executable, toolOptions(executable, [...baseArguments, ...busyTimeout, ...args], context)),
          failure: { file, doing: `check of ${file}`, lockTimeoutMs },
        });
        started = true;
        // peekStream waits for bytes forever on a stream that failed already (during the checks).
        if (input.stream.errored) throw input.stream.errored;
        const peeked = await peekStream(input.stream, headLength);
        const head = peeked.head.toString("latin1");
        if (!dumpStarts.some((start) => head.startsWith(start))) {
          throw new HoardError(
            "UNSUPPORTED_FORMAT",
            `sqlite: the backup is not an SQLite dump (it begins with ${shown(peeked.head)}), perhaps one made by another driver`,
          );
        }
        // Joined at once, so a failure of the input from now on reaches sqlite3's feed.
        const sql = requireCommit(peeked.stream);
        if (context.signal?.aborted) throw new HoardError("ABORTED", `sqlite: restore into ${file} aborted before it started`);
        const temporary = await prepareTemporaryFile(target);
        log(logger, "debug", `restoring into ${temporary.path}, then moving it to ${target.path}`);
        // `.mode off`: statements that print (a PRAGMA, a SELECT in a foreign file) print nothing.
        const args = [...baseArguments, "-cmd", ".mode off", temporary.path];
        try {
          await runToolWithInput(executable, toolOptions(executable, args, context), sql);
          await temporary.moveIntoPlace();
        } finally {
          await temporary.remove();
        }
      } catch (error) {
        input.stream.destroy();
        if (!started) throw toSqliteError(error, { file, doing: `restore into ${file}`, lockTimeoutMs });
        // Failures after the checks: sqlite3 wrote (if anything) a temporary file, which is gone now.
        const unchanged = target?.existing ? `${file} was not changed` : `${file} was not created`;
        if (context.signal?.aborted || (HoardError.isInstance(error) && error.code === "ABORTED")) {
          throw new HoardError("ABORTED", `sqlite: restore into ${file} aborted; ${unchanged}`, { cause: error });
        }
        const converted = toSqliteError(error, { file, doing: `restore into ${file}`, lockTimeoutMs });
        if (converted.code === "ALREADY_EXISTS") throw converted;
        throw new HoardError(converted.code, `${converted.message}; ${unchanged}`, { cause: error, detail: converted.detail });
      }
    },
  };
}

/** For the registry: `sqlite:///absolute/path` and `sqlite:relative/path` URLs. */
export function createDriverFromUrl(url: string, settings: DriverSettingsBag = {}): Driver {
  return createSqliteDriver(optionsFromSettings(url, settings));
}

/** NOT_FOUND for a database file that does not exist: sqlite3 would create an empty one and dump that. */
async function checkSource(file: string): Promise<void> {
  let found: Awaited<ReturnType<typeof stat>>;
  try {
    found = await stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new HoardError("NOT_FOUND", `sqlite: ${file} does not exist`, { cause: error });
    if (code === "EACCES") throw new HoardError("ACCESS_DENIED", `sqlite: cannot read ${file}: permission denied`, { cause: error });
    throw error;
  }
  if (!found.isFile()) throw new HoardError("INVALID_ARGUMENT", `sqlite: ${file} is not a file`);
}

/**
 * Passes the dump on and fails it, before its end reaches sqlite3, when it does not end with
 * `COMMIT;`: sqlite3 would take a dump cut off between two statements as whole, roll its open
 * transaction back at the end and exit 0, leaving an empty database.
 */
function requireCommit(source: Readable): Readable {
  let tail = "";
  const checked = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      tail = (tail + chunk.toString("latin1")).slice(-64);
      callback(null, chunk);
    },
    flush(callback) {
      if (/(?:^|\n)COMMIT;\s*$/.test(tail)) return callback();
      callback(new HoardError("CORRUPT_ARCHIVE", "sqlite: the backup ends before its COMMIT: it is truncated"));
    },
  });
  // pipeline() also passes on a failure that came before it was called, and destroys both on either's failure.
  pipeline(source, checked, () => {});
  return checked;
}

/** The first bytes of something that is not a dump, printable: `"mysqldump: ..."`. */
function shown(head: Buffer): string {
  return JSON.stringify(head.toString("latin1").replace(/[^\x20-\x7e]/g, "."));
}
