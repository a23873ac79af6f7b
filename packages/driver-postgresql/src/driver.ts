import { createReadStream, createWriteStream } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, pipeline as pipeStreams, type Readable } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import {
  type ArchiveCheck,
  type Driver,
  type DumpContext,
  type DumpOutput,
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
  type FoundObjects,
  log,
  peekStream,
  redactUrl,
  removeWhenClosed,
  runTool,
  runToolWithInput,
  startTool,
  type ToolOptions,
  type ToolProcess,
  targetNotEmpty,
  targetNotEmptyError,
  toolOutput,
} from "@hoard/core/plugin";
import {
  chooseDumpClient,
  chooseRestoreClient,
  installedClients,
  type PostgresClientTools,
  parseServerVersion,
  type RestoreClientChoice,
  type ServerVersion,
} from "./clients.js";
import { connectTimeoutSeconds, parsePostgresUrl, toolEnvironment } from "./connection.js";
import { mergeDataChunks } from "./data-chunks.js";
import {
  archiveDumpedBy,
  type DumpedBy,
  needsSettingsFilter,
  readArchiveHeader,
  scriptDumpedBy,
  settingsFilter,
  tarDumpedBy,
} from "./dump-origin.js";
import { clusterRestoreFailure, connectTimeoutFailure, explainPostgresFailure, type RestorePhase, restoreFailure } from "./errors.js";
import { inventoryQuery, parseInventory, quoteIdentifier, quoteLiteral, scriptScanner, serverVersionQuery } from "./inspect.js";
import { optionsFromSettings, type PostgresDriverOptions } from "./options.js";
import { otherDatabasesQuery, parseFound, parseRestoreChecks, restoreChecksQuery, userObjectsQuery } from "./target.js";

/** What the first bytes of a dump say it is. */
export type PostgresDumpFormat = "custom" | "tar" | "cluster-sql" | "sql";

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
  let installed: Promise<PostgresClientTools[]> | undefined;
  /** The installed client tools, newest first (looked for once per driver). */
  const clients = (signal?: AbortSignal) => {
    installed ??= installedClients(options.binDirectory, signal);
    installed.catch(() => {
      installed = undefined;
    });
    return installed;
  };
  /** The newest installed tool: psql for queries (it speaks to older and newer servers), pg_restore to read an archive. */
  const newest = async (name: "psql" | "pg_restore", signal?: AbortSignal) => {
    const [client] = await clients(signal);
    if (!client) {
      throw new HoardError(
        "TOOL_NOT_FOUND",
        options.binDirectory !== undefined
          ? `postgresql: no pg_dump in ${options.binDirectory} (--pg-bin-dir)`
          : "postgresql: the PostgreSQL client tools were not found on PATH or in /usr/lib/postgresql/*/bin: install them (Debian: postgresql-client) or give --pg-bin-dir",
      );
    }
    return client.path(name);
  };
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
      return await runTool(await newest("psql", signal), toolOptions("psql", args, env, signal, logger));
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

  /**
   * Runs the first query of a dump or a restore. This is the first connection: its failure (a
   * wrong password, a missing database) is said as hoard's, not as psql's, which the user did not
   * ask to run.
   */
  const firstQuery = async (sql: string, env: Record<string, string | undefined>, signal?: AbortSignal, logger?: Logger) => {
    try {
      return await query(sql, env, signal, logger);
    } catch (error) {
      if (!HoardError.isInstance(error) || error.code !== "TOOL_FAILED") throw error;
      const reason = error.message.replace(/^psql failed \([^)]*\):\s*/, "");
      throw new HoardError(versionQueryCode(reason), `postgresql: cannot ask the server its version: ${reason}`, {
        cause: error,
        detail: error.detail,
      });
    }
  };

  /** The server's version, asked with psql before a dump (to choose the tools). */
  const serverVersion = async (env: Record<string, string | undefined>, signal?: AbortSignal, logger?: Logger): Promise<ServerVersion> => {
    const output = await firstQuery(serverVersionQuery, env, signal, logger);
    const [numeric = "", text = ""] = output.replaceAll("\x1e", "").split("\x1f\x1d");
    return parseServerVersion(numeric, text);
  };

  /**
   * What a restore asks first, in one psql call: the server's version (to choose the tools) and,
   * with `contents`, what the target holds (for the non-empty rule).
   */
  const restoreChecks = async (contents: boolean, env: Record<string, string | undefined>, signal?: AbortSignal, logger?: Logger) => {
    const checks = parseRestoreChecks(await firstQuery(restoreChecksQuery(contents), env, signal, logger));
    return { ...checks, server: parseServerVersion(checks.versionNumber, checks.versionText) };
  };

  /** TARGET_NOT_EMPTY when the target holds user objects, or (for a cluster script) the server holds other databases. */
  const refuseNotEmpty = (found: FoundObjects[], otherDatabases: FoundObjects[] | undefined) => {
    if (found.length > 0) throw targetNotEmpty("postgresql", connection.database, describeFound(found));
    if (otherDatabases && otherDatabases.length > 0) {
      throw targetNotEmptyError("postgresql", `the server is not empty for a cluster dump (${describeFound(otherDatabases)})`);
    }
  };

  /** The pg_dump for this server: its major, else the nearest newer one; TOOL_NOT_FOUND naming the version needed. */
  const dumpClient = async (env: Record<string, string | undefined>, signal?: AbortSignal, logger?: Logger) => {
    const server = await serverVersion(env, signal, logger);
    return { server, client: chooseDumpClient(await clients(signal), server, options.binDirectory) };
  };

  /**
   * `pg_dump --format=directory --jobs=N` into a directory of the work directory: the workers share
   * the leader's snapshot, so the dump is as consistent as a single one, and each compresses its
   * files (pg_dump's own choice: gzip, or what a `--dump-option=--compress=...` says). The whole
   * dump is on local disk before core archives it (tar) on its way to storage. The output says it
   * is compressed when the archive's header does, so core does not compress it again
   * (`.dump.tar`) unless the backup names a compression; with `--compress=0` core compresses the
   * tar stream instead.
   */
  const parallelDump = async (
    jobs: number,
    env: Record<string, string | undefined>,
    workDirectory: string,
    signal: AbortSignal | undefined,
    logger: Logger | undefined,
  ): Promise<DumpOutput> => {
    const { server, client } = await dumpClient(env, signal, logger);
    const directory = join(workDirectory, "postgresql-directory-dump");
    log(
      logger ?? options.logger,
      "info",
      `postgresql: pg_dump ${client.version} --format=directory --jobs=${jobs} of PostgreSQL ${server.text} into ${directory}: the whole dump is on local disk before it is stored`,
    );
    const args = ["--format=directory", `--jobs=${jobs}`, `--file=${directory}`, "--no-password", ...(options.dumpOptions ?? []), dbname];
    try {
      await runTool(client.path("pg_dump"), toolOptions("pg_dump", args, env, signal, logger));
    } catch (error) {
      throw unreachable(error);
    }
    const head = await readHead(join(directory, "toc.dat")).catch(() => Buffer.alloc(0));
    const header = readArchiveHeader(head);
    if (!header?.dumpedBy) {
      throw new HoardError(
        "TOOL_FAILED",
        `pg_dump wrote no directory-format dump into ${directory} (does a --dump-option redirect it, e.g. --file, or change its format?)`,
      );
    }
    // What the header says, not what the options asked: a --dump-option=--compress=0 gives files core should compress.
    const compression = header.compression ?? "an algorithm this hoard does not know";
    log(
      logger ?? options.logger,
      "info",
      `postgresql: pg_dump wrote ${await directoryBytes(directory)} bytes into ${directory} (${compression === "none" ? "uncompressed" : `each table's file compressed with ${compression}`})`,
    );
    return {
      kind: "directory",
      path: directory,
      ...(compression !== "none" && { compressed: `${compression}, each table's file by pg_dump` }),
    };
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
    // With jobs, pg_restore --jobs cannot run in one transaction.
    atomicRestore: options.jobs === undefined,

    async describe({ signal, logger, workDirectory }: InspectContext) {
      const server = await withEnvironment(workDirectory, (env) => serverVersion(env, signal, logger));
      const installedTools = await clients(signal);
      let client: PostgresClientTools;
      try {
        client = chooseDumpClient(installedTools, server, options.binDirectory);
      } catch {
        // No pg_dump fits: the dump says so (once, as the backup's error), not a warning here too.
        return { server: { product: "PostgreSQL", version: server.text } };
      }
      return { server: { product: "PostgreSQL", version: server.text }, tool: { name: "pg_dump", version: client.version } };
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
          await newest("pg_restore", signal),
          toolOptions("pg_restore", ["--format=directory", "--file=-", input.path], {}, signal, logger),
          undefined,
          scanner.sink,
        );
        return withFormat("directory format", scanner.result());
      }
      const peeked = await peekStream(input.stream, headBytes);
      if (peeked.head.length === 0) throw new HoardError("CORRUPT_ARCHIVE", "postgresql: the archive is empty");
      const format = detectDumpFormat(peeked.head);
      if (format === "custom" || format === "tar") {
        // pg_restore turns the whole archive into the script it would run: every entry and every block of data is read.
        await runScript(
          await newest("pg_restore", signal),
          toolOptions("pg_restore", ["--file=-"], {}, signal, logger),
          peeked.stream,
          scanner.sink,
        );
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

    async dump({ signal, logger, workDirectory }: DumpContext): Promise<DumpOutput> {
      const environment = await toolEnvironment(connection, timeoutSeconds, workDirectory);
      if (options.jobs !== undefined) {
        try {
          return await parallelDump(options.jobs, environment.env, workDirectory, signal, logger);
        } finally {
          await environment.remove();
        }
      }
      const args = ["--format=custom", "--compress=0", "--no-password", ...(options.dumpOptions ?? []), dbname];
      let output: Readable;
      try {
        // Before anything runs: a server newer than every installed pg_dump fails here, with the version needed.
        const { server, client } = await dumpClient(environment.env, signal, logger);
        log(
          logger ?? options.logger,
          "debug",
          `postgresql: pg_dump ${client.version} from ${client.directory} for PostgreSQL ${server.text}`,
        );
        output = toolOutput(client.path("pg_dump"), toolOptions("pg_dump", args, environment.env, signal, logger));
      } catch (error) {
        await environment.remove();
        throw unreachable(error);
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
      /** pg_restore into the server: straight, or (tools newer than the server) its script through the settings filter into psql. */
      const runRestore = async (choice: RestoreClientChoice, server: ServerVersion, formatArgs: string[], from: Readable | string) => {
        const { client } = choice;
        const source = typeof from === "string" ? [from] : [];
        const input = typeof from === "string" ? undefined : from;
        phase = "transaction";
        const { jobs } = options;
        if (jobs !== undefined && !input && !choice.newerThanServer) {
          log(
            logger ?? options.logger,
            "info",
            `postgresql: pg_restore --jobs=${jobs}: not in one transaction (pg_restore cannot run parallel jobs in one); a failure leaves ${connection.database} partially restored`,
          );
          phase = "parallel";
          const args = ["--no-password", "--exit-on-error", `--jobs=${jobs}`, ...formatArgs, ...clean, ...extra, dbname, ...source];
          await runTool(client.path("pg_restore"), toolOptions("pg_restore", args, env, signal, logger));
          return;
        }
        if (jobs !== undefined) {
          log(
            logger ?? options.logger,
            "info",
            `postgresql: --pg-jobs is not used for this restore: ${input ? "pg_restore --jobs needs a directory or a file, and this backup is a stream" : `pg_restore ${client.version} is newer than the server, so its script runs through psql`}; it runs in one transaction`,
          );
        }
        if (!choice.newerThanServer) {
          const args = ["--no-password", "--exit-on-error", "--single-transaction", ...formatArgs, ...clean, ...extra, dbname, ...source];
          const restoreOptions = toolOptions("pg_restore", args, env, signal, logger);
          if (input) await runToolWithInput(client.path("pg_restore"), restoreOptions, input);
          else await runTool(client.path("pg_restore"), restoreOptions);
          return;
        }
        log(
          logger ?? options.logger,
          "info",
          `postgresql: pg_restore ${client.version} is newer than the server (PostgreSQL ${server.text}): its script runs through psql in one transaction, without the settings PostgreSQL ${server.major} does not know`,
        );
        const script = scriptOutput(
          client.path("pg_restore"),
          toolOptions("pg_restore", ["--file=-", "--exit-on-error", ...formatArgs, ...clean, ...extra, ...source], {}, signal, logger),
          input,
        );
        await runToolWithInput(
          client.path("psql"),
          toolOptions("psql", [...psqlScriptArgs, "--single-transaction", dbname], env, signal, logger),
          filtered(script, server.major, logger),
        );
      };
      try {
        // One psql call for the server's version and (without replace) what the target holds, while
        // the backup's first bytes come in: each call is a process and a connection.
        const checking = restoreChecks(!replace, env, signal, logger);
        checking.catch(() => {});
        // The input may fail while the checks are still out, with nobody reading it yet: what reads it
        // later learns of the failure from its errored state; the event must not crash the process.
        if (input.kind === "stream") input.stream.on("error", () => {});
        if (input.kind === "directory") {
          const [checked, head] = await Promise.allSettled([checking, readHead(join(input.path, "toc.dat"))]);
          if (checked.status === "rejected") throw checked.reason;
          if (head.status === "rejected") throw head.reason;
          const { server, found } = checked.value;
          const dumpedBy = archiveDumpedBy(head.value);
          if (!replace) refuseNotEmpty(found, undefined);
          const choice = chooseRestoreClient(await clients(signal), server, dumpedBy, options.binDirectory);
          await runRestore(choice, server, ["--format=directory"], input.path);
          return;
        }
        const [checked, peeked] = await Promise.allSettled([checking, peekStream(input.stream, headBytes)]);
        // The server's answer first: an unreachable server is the error, whatever the backup holds.
        if (checked.status === "rejected") throw checked.reason;
        if (peeked.status === "rejected") throw peeked.reason;
        const { server, found, otherDatabases } = checked.value;
        stream = peeked.value.stream;
        const head = peeked.value.head;
        if (head.length === 0) throw new HoardError("CORRUPT_ARCHIVE", "the backup is empty: nothing to restore");
        const format = detectDumpFormat(head);
        const dumpedBy: DumpedBy | undefined =
          format === "custom" ? archiveDumpedBy(head) : format === "tar" ? tarDumpedBy(head) : scriptDumpedBy(head);
        if (!replace) refuseNotEmpty(found, format === "cluster-sql" ? otherDatabases : undefined);
        if (signal?.aborted) throw new HoardError("ABORTED", "postgresql: restore aborted before it started");
        if (format === "custom" || format === "tar") {
          const choice = chooseRestoreClient(await clients(signal), server, dumpedBy, options.binDirectory);
          // hoard's own dumps are uncompressed custom-format archives: one chunk per row, which
          // pg_restore would send to the server as a message per row (data-chunks.ts).
          if (format === "custom" && readArchiveHeader(head)?.compression === "none") stream = mergeDataChunks(stream);
          await runRestore(choice, server, [], stream);
          return;
        }
        // A script: psql of any version runs it; the newest knows the most of pg_dump's meta-commands (\restrict).
        const psql = await newest("psql", signal);
        if (format === "sql") {
          phase = "transaction";
          await runToolWithInput(
            psql,
            toolOptions("psql", [...psqlScriptArgs, "--single-transaction", ...extra, dbname], env, signal, logger),
            filtered(stream, server.major, logger),
          );
        } else {
          // A cluster script cannot run in one transaction: read it to its end first, so a damaged or
          // truncated input fails before psql runs any of it.
          stream = await spooled(stream, workDirectory, signal);
          phase = "cluster";
          await restoreCluster(
            psql,
            toolOptions("psql", ["--no-password", "--no-psqlrc", "--quiet", ...extra, dbname], env, signal, logger),
            filtered(stream, server.major, logger),
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

/** How much of a dump is looked at before a restore: its format, and the pg_dump that wrote it (a tar's toc.dat header follows its first 512 bytes). */
const headBytes = 2048;

const psqlScriptArgs = ["--no-password", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"];

/** The first bytes of a file (a directory dump's toc.dat). */
async function readHead(path: string): Promise<Buffer> {
  const file = await open(path, "r").catch((error: unknown) => {
    throw new HoardError("CORRUPT_ARCHIVE", `postgresql: the directory dump has no readable toc.dat (${String(error)})`, { cause: error });
  });
  try {
    const buffer = Buffer.alloc(headBytes);
    const { bytesRead } = await file.read(buffer, 0, headBytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** The bytes of the files under `directory` (a directory dump's disk use). */
async function directoryBytes(directory: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(directory, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/**
 * A script for a server of `serverMajor`: without the settings it does not know (see
 * settingsFilter), or the stream as it is when it knows them all. A failure of the script fails
 * the filtered stream, so psql is killed before it sees the end of its input.
 */
function filtered(script: Readable, serverMajor: number, logger: Logger | undefined): Readable {
  if (!needsSettingsFilter(serverMajor)) return script;
  const filter = settingsFilter(serverMajor, (line) =>
    log(logger, "info", `postgresql: left out "${line}": PostgreSQL ${serverMajor} does not know this setting`),
  );
  return pipeStreams(script, filter, () => {});
}

/**
 * pg_restore writing its script (`--file=-`) with `input` (or none, for a directory) on stdin: a
 * stream that ends only after pg_restore exited 0, and fails otherwise (or when the input fails),
 * so psql never commits half a script. Destroying it kills pg_restore.
 */
function scriptOutput(executable: string, options: ToolOptions, input: Readable | undefined): Readable {
  const tool = startTool(executable, options, input ? "pipe" : "ignore");
  const output = new PassThrough();
  output.on("error", () => {});
  const stdout = tool.child.stdout;
  if (!stdout) throw new HoardError("INTERNAL", "pg_restore: no stdout");
  const stdoutEnded = new Promise<void>((resolve) => stdout.once("end", resolve));
  stdout.pipe(output, { end: false });
  const fed = feedInput(tool, input);
  Promise.all([tool.exited, stdoutEnded]).then(
    () => {
      const failure = fed.failure();
      if (failure) {
        output.destroy(failure as Error);
        return;
      }
      fed.done();
      output.end();
    },
    // The input's failure (a damaged download or decompression) is why the tool died.
    (error: unknown) => output.destroy((fed.failure() ?? error) as Error),
  );
  output.on("close", () => {
    if (!output.writableFinished) {
      tool.kill();
      input?.destroy();
    }
  });
  return output;
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
  const fed = feedInput(tool, input);
  try {
    await Promise.all([tool.exited, scanned]);
  } catch (error) {
    input?.destroy();
    // The input's failure (a damaged download or decompression) is why the tool died.
    throw fed.failure() ?? error;
  }
  fed.done();
}

/**
 * Feeds `input` to the tool's stdin, as core's runToolWithInput does: when the input fails, the
 * tool is killed before it sees the end of its input; the tool may stop reading early and exit 0
 * (pg_restore leaves a tar archive's end-of-archive padding unread; a closed pipe is then EPIPE or
 * a premature close), and then its exit status, not the pipe, decides.
 */
function feedInput(tool: ToolProcess, input: Readable | undefined): { failure(): unknown; done(): void } {
  let inputError: unknown;
  let inputDone = input === undefined;
  const stdin = tool.child.stdin;
  if (input && stdin) {
    stdin.on("error", () => {});
    finished(input, { writable: false }).then(
      () => {
        inputDone = true;
        stdin.end();
      },
      (error: unknown) => {
        inputError = error;
        tool.kill();
      },
    );
    input.pipe(stdin, { end: false });
  }
  return {
    failure: () => inputError,
    // The tool exited 0: stop feeding it whatever it did not read.
    done: () => {
      if (!inputDone) input?.destroy();
    },
  };
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

/**
 * The code of a failed first question to the server, from the explained reason: the backup stops
 * there (core does not go on to the dump) when the database is missing, the login is refused or
 * the server cannot be reached.
 */
function versionQueryCode(reason: string): "NOT_FOUND" | "UNAUTHENTICATED" | "UNREACHABLE" | "TOOL_FAILED" {
  if (/^database ".*" does not exist$/.test(reason)) return "NOT_FOUND";
  if (/^authentication failed|role ".*" does not exist/.test(reason)) return "UNAUTHENTICATED";
  if (/^cannot reach the server/.test(reason)) return "UNREACHABLE";
  return "TOOL_FAILED";
}
