import { createReadStream, createWriteStream } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  type ArchiveCheck,
  type Driver,
  type DumpContext,
  HoardError,
  type InspectContext,
  type Logger,
  type RestoreContext,
  type RestoreInput,
} from "@hoard/core";
import {
  checkDumpOutput,
  type DriverSettingsBag,
  type DumpCheck,
  describeFound,
  peekStream,
  redactUrl,
  removeWhenClosed,
  requireExecutable,
  runTool,
  runToolWithInput,
  startTool,
  type ToolOptions,
  targetNotEmpty,
  targetNotEmptyError,
  toolOutput,
} from "@hoard/core/plugin";
import { connectTimeoutSeconds, parsePostgresUrl, toolEnvironment } from "./connection.js";
import { clusterRestoreFailure, connectTimeoutFailure, explainPostgresFailure, type RestorePhase, restoreFailure } from "./errors.js";
import {
  inventoryQuery,
  parseInventory,
  quoteIdentifier,
  quoteLiteral,
  scriptScanner,
  serverVersionQuery,
  toolVersion,
} from "./inspect.js";
import { optionsFromSettings, type PostgresDriverOptions } from "./options.js";
import { otherDatabasesQuery, parseFound, userObjectsQuery } from "./target.js";

/** What the first bytes of a dump say it is. */
export type PostgresDumpFormat = "custom" | "tar" | "cluster-sql" | "sql";

const installHint = "install the PostgreSQL client tools (Debian: postgresql-client) in a version at least as new as the server";

/**
 * Recognises a dump by content: pg_dump's custom format starts with `PGDMP`, its tar format has a
 * ustar header, pg_dumpall writes a cluster-dump banner, anything else is taken as plain SQL.
 */
export function detectDumpFormat(head: Buffer): PostgresDumpFormat {
  if (head.subarray(0, 5).toString("latin1") === "PGDMP") return "custom";
  if (head.length >= 262 && head.subarray(257, 262).toString("latin1") === "ustar") return "tar";
  if (/^(--\s*\n)?--\s*PostgreSQL database cluster dump/m.test(head.toString("utf8"))) return "cluster-sql";
  return "sql";
}

const customFormatMagic = Buffer.from("PGDMP", "latin1");

/**
 * pg_dump's output must start with the custom format's header (`PGDMP`): a dump option that
 * redirects the dump (`--file`) or changes its format would otherwise leave an empty or foreign
 * backup that looks fine.
 */
export const customFormatCheck: DumpCheck = {
  tool: "pg_dump",
  format: "custom-format dump",
  redirects: "--file",
  length: customFormatMagic.length,
  accepts: (head) => head.subarray(0, customFormatMagic.length).equals(customFormatMagic),
};

/**
 * The PostgreSQL driver. Dumps one database with `pg_dump --format=custom --compress=0`: the custom
 * format keeps everything pg_restore needs to rebuild schema, data, sequences, views, functions and
 * types exactly, lets a restore run in one transaction, and stays streamable; hoard compresses it
 * (gzip) on the way to storage instead of pg_dump, so it is not compressed twice.
 */
export function createPostgresDriver(options: PostgresDriverOptions): Driver {
  const connection = parsePostgresUrl(options.url);
  const timeoutSeconds = connectTimeoutSeconds(options.connectTimeoutMs);
  const tool = (name: string) => requireExecutable([options.binDirectory ? `${options.binDirectory}/${name}` : name], installHint);
  const toolOptions = (
    label: string,
    args: string[],
    env: Record<string, string | undefined>,
    signal: AbortSignal | undefined,
    logger: Logger | undefined,
  ): ToolOptions => ({
    label,
    args,
    env,
    signal,
    logger: logger ?? options.logger,
    explainFailure: explainPostgresFailure,
  });
  const unreachable = (error: unknown) => connectTimeoutFailure(error, connection.address, timeoutSeconds);
  const dbname = `--dbname=${connection.connectionString}`;

  /** Runs a query with psql (connect timeout included) and returns its records; `database` is `--dbname=` of another database of the server. */
  const query = async (sql: string, env: Record<string, string | undefined>, signal?: AbortSignal, logger?: Logger, database = dbname) => {
    const args = [
      "--no-password",
      "--no-psqlrc",
      "--quiet",
      "--no-align",
      "--tuples-only",
      "--field-separator=\x1f\x1d",
      "--record-separator=\x1e",
      "--set=ON_ERROR_STOP=1",
      database,
      "--command",
      sql,
    ];
    try {
      return await runTool(await tool("psql"), toolOptions("psql", args, env, signal, logger));
    } catch (error) {
      throw unreachable(error);
    }
  };

  /** Fails with TARGET_NOT_EMPTY, before anything is changed, when the target holds user objects. */
  const checkEmpty = async (cluster: boolean, env: Record<string, string | undefined>, signal?: AbortSignal, logger?: Logger) => {
    const found = parseFound(await query(userObjectsQuery, env, signal, logger));
    if (found.length > 0) throw targetNotEmpty("postgresql", connection.database, describeFound(found));
    if (!cluster) return;
    const others = parseFound(await query(otherDatabasesQuery, env, signal, logger));
    if (others.length > 0) {
      throw targetNotEmptyError("postgresql", `the server is not empty for a cluster dump (${describeFound(others)})`);
    }
  };

  /** Runs `work` with the tools' environment (the password, a service file) for one call, removed afterwards. */
  const withEnvironment = async <T>(workDirectory: string, work: (env: Record<string, string | undefined>) => Promise<T>): Promise<T> => {
    const environment = await toolEnvironment(connection, timeoutSeconds, workDirectory);
    try {
      return await work(environment.env);
    } finally {
      await environment.remove();
    }
  };

  /** `--dbname=` of the server's maintenance database, where a scratch database is created and dropped. */
  const maintenance = (() => {
    const url = new URL(connection.connectionString);
    url.pathname = "/postgres";
    return `--dbname=${url.toString()}`;
  })();

  return {
    name: "postgresql",
    url: redactUrl(options.url),
    extension: "dump",
    // Custom, tar, directory and plain SQL restores run in one transaction; a cluster script is read to its end before psql runs it.
    atomicRestore: true,

    async describe({ signal, logger, workDirectory }: InspectContext) {
      const version = await withEnvironment(workDirectory, (env) => query(serverVersionQuery, env, signal, logger));
      const dumpTool = await tool("pg_dump");
      const tooled = await runTool(dumpTool, toolOptions("pg_dump", ["--version"], {}, signal, logger));
      return {
        server: { product: "PostgreSQL", version: toolVersion(version.replaceAll("\x1e", "")) },
        tool: { name: "pg_dump", version: toolVersion(tooled) },
      };
    },

    async inventory({ signal, logger, workDirectory, exactCounts }: InspectContext) {
      const exact = exactCounts === true;
      const output = await withEnvironment(workDirectory, (env) => query(inventoryQuery(exact), env, signal, logger));
      return parseInventory(output, exact);
    },

    async checkArchive(input: RestoreInput, { signal, logger }: InspectContext): Promise<ArchiveCheck> {
      const scanner = scriptScanner();
      if (input.kind === "directory") {
        await runScript(
          await tool("pg_restore"),
          toolOptions("pg_restore", ["--format=directory", "--file=-", input.path], {}, signal, logger),
          undefined,
          scanner.sink,
        );
        return withFormat("directory format", scanner.result());
      }
      const peeked = await peekStream(input.stream, 512);
      if (peeked.head.length === 0) throw new HoardError("CORRUPT_ARCHIVE", "postgresql: the archive is empty");
      const format = detectDumpFormat(peeked.head);
      if (format === "custom" || format === "tar") {
        // pg_restore turns the whole archive into the script it would run: every entry and every block of data is read.
        await runScript(await tool("pg_restore"), toolOptions("pg_restore", ["--file=-"], {}, signal, logger), peeked.stream, scanner.sink);
      } else {
        await pipeline(peeked.stream, scanner.sink, { signal });
      }
      return withFormat(
        format === "custom" ? "custom format" : format === "tar" ? "tar format" : format === "sql" ? "plain SQL" : "cluster SQL",
        scanner.result(),
      );
    },

    async prepareScratch({ signal, logger, workDirectory }: InspectContext) {
      const database = connection.database;
      const exists = await withEnvironment(workDirectory, (env) =>
        query(`SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(database)}`, env, signal, logger, maintenance),
      );
      if (exists.replaceAll("\x1e", "").trim() === "1") {
        await withEnvironment(workDirectory, (env) => checkEmpty(false, env, signal, logger));
        return { created: false, release: async () => {} };
      }
      await withEnvironment(workDirectory, (env) =>
        query(`CREATE DATABASE ${quoteIdentifier(database)}`, env, signal, logger, maintenance),
      );
      return {
        created: true,
        // Without the drill's signal: an interrupted drill still drops what it created.
        release: () =>
          withEnvironment(workDirectory, (env) =>
            query(`DROP DATABASE IF EXISTS ${quoteIdentifier(database)}`, env, undefined, logger, maintenance),
          ).then(() => undefined),
      };
    },

    async dump({ signal, logger, workDirectory }: DumpContext) {
      const environment = await toolEnvironment(connection, timeoutSeconds, workDirectory);
      const args = ["--format=custom", "--compress=0", "--no-password", ...(options.dumpOptions ?? []), dbname];
      let output: Readable;
      try {
        output = toolOutput(await tool("pg_dump"), toolOptions("pg_dump", args, environment.env, signal, logger));
      } catch (error) {
        await environment.remove();
        throw error;
      }
      const checked = checkDumpOutput(output, customFormatCheck, unreachable);
      removeWhenClosed(checked, environment, logger ?? options.logger, "the temporary service file");
      return { kind: "stream", stream: checked };
    },

    async restore(input: RestoreInput, { signal, logger, workDirectory, replace }: RestoreContext) {
      const extra = options.restoreOptions ?? [];
      const clean = replace ? ["--clean", "--if-exists"] : [];
      const environment = await toolEnvironment(connection, timeoutSeconds, workDirectory);
      const { env } = environment;
      let stream: Readable | undefined = input.kind === "stream" ? input.stream : undefined;
      /** What a failure leaves: nothing yet, one transaction's worth (rolled back), or a cluster script's partial work. */
      let phase: RestorePhase = "checking";
      try {
        if (input.kind === "directory") {
          if (!replace) await checkEmpty(false, env, signal, logger);
          const args = [
            "--format=directory",
            "--no-password",
            "--exit-on-error",
            "--single-transaction",
            ...clean,
            ...extra,
            dbname,
            input.path,
          ];
          phase = "transaction";
          await runTool(await tool("pg_restore"), toolOptions("pg_restore", args, env, signal, logger));
          return;
        }
        const peeked = await peekStream(input.stream, 512);
        stream = peeked.stream;
        if (peeked.head.length === 0) throw new HoardError("CORRUPT_ARCHIVE", "the backup is empty: nothing to restore");
        const format = detectDumpFormat(peeked.head);
        if (!replace) await checkEmpty(format === "cluster-sql", env, signal, logger);
        if (signal?.aborted) throw new HoardError("ABORTED", "postgresql: restore aborted before it started");
        if (format === "custom" || format === "tar") {
          const args = ["--no-password", "--exit-on-error", "--single-transaction", ...clean, ...extra, dbname];
          phase = "transaction";
          await runToolWithInput(await tool("pg_restore"), toolOptions("pg_restore", args, env, signal, logger), stream);
        } else if (format === "sql") {
          const args = ["--no-password", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction", ...extra, dbname];
          phase = "transaction";
          await runToolWithInput(await tool("psql"), toolOptions("psql", args, env, signal, logger), stream);
        } else {
          // A cluster script cannot run in one transaction: read it to its end first, so a damaged or
          // truncated input fails before psql runs any of it.
          stream = await spooled(stream, workDirectory, signal);
          phase = "cluster";
          await restoreCluster(
            await tool("psql"),
            toolOptions("psql", ["--no-password", "--no-psqlrc", "--quiet", ...extra, dbname], env, signal, logger),
            stream,
          );
        }
      } catch (error) {
        stream?.destroy();
        throw restoreFailure(unreachable(error), connection.database, phase);
      } finally {
        await environment.remove();
      }
    },
  };
}

/** The stream written to a private file in `directory`, and read back from it. */
async function spooled(stream: Readable, directory: string, signal: AbortSignal | undefined): Promise<Readable> {
  const file = join(directory, "postgresql-cluster.sql");
  await pipeline(stream, createWriteStream(file, { mode: 0o600, flags: "wx" }), { signal });
  return createReadStream(file);
}

function withFormat(format: string, check: ArchiveCheck): ArchiveCheck {
  return { ...check, summary: `${format}, ${check.summary}` };
}

/**
 * Runs pg_restore with `input` (or none, for a directory) on stdin and its script on stdout into
 * `sink`; waits for all three. A failing input kills the tool, and fails the check.
 */
async function runScript(
  executable: string,
  options: ToolOptions,
  input: Readable | undefined,
  sink: NodeJS.WritableStream,
): Promise<void> {
  const tool = startTool(executable, options, input ? "pipe" : "ignore");
  const stdout = tool.child.stdout;
  if (!stdout) throw new HoardError("INTERNAL", "pg_restore: no stdout");
  const scanned = pipeline(stdout, sink);
  scanned.catch(() => tool.kill());
  let fed: Promise<void> = Promise.resolve();
  if (input && tool.child.stdin) {
    const stdin = tool.child.stdin;
    stdin.on("error", () => {});
    fed = pipeline(input, stdin).catch((error: unknown) => {
      tool.kill();
      throw error;
    });
    fed.catch(() => {});
  }
  try {
    await Promise.all([fed, tool.exited, scanned]);
  } catch (error) {
    input?.destroy();
    // The input's failure (a damaged download or decompression) is why the tool died.
    const inputError = await fed.then(
      () => undefined,
      (failure: unknown) => failure,
    );
    throw inputError ?? error;
  }
}

/**
 * Restores a pg_dumpall script. It creates roles and databases, which cannot run in one
 * transaction, and it usually meets roles that already exist (the bootstrap superuser at least):
 * those errors are tolerated, any other error fails the restore.
 */
async function restoreCluster(executable: string, toolOptions: ToolOptions, stream: Readable): Promise<void> {
  let stderr: string;
  try {
    stderr = await runToolWithInput(executable, toolOptions, stream);
  } catch (error) {
    throw clusterRestoreFailure(error);
  }
  const errors = stderr
    .split("\n")
    .filter((line) => /\bERROR:/.test(line))
    .filter((line) => !/role ".*" already exists/.test(line));
  if (errors.length > 0) {
    throw new HoardError(
      "TOOL_FAILED",
      `psql reported ${errors.length} error(s) restoring a cluster dump, first: ${errors[0]?.replace(/^psql:\s*/, "")}; databases and roles it created may be partially restored`,
      { detail: errors.join("\n") },
    );
  }
}

/** For the registry: `postgresql://` and `postgres://` URLs, with the settings bag of the CLI or a config file. */
export function createDriverFromUrl(url: string, settings: DriverSettingsBag = {}): Driver {
  return createPostgresDriver(optionsFromSettings(url, settings));
}
