import type { Readable } from "node:stream";
import {
  type Driver,
  type DriverSettings,
  type DumpContext,
  HoardError,
  type Logger,
  parseUrl,
  peekStream,
  type RestoreContext,
  type RestoreInput,
  redactUrl,
  requireExecutable,
  runTool,
  runToolWithInput,
  type ToolOptions,
  toolOutput,
} from "@hoard/core";

/** Options of the PostgreSQL driver. */
export interface PostgresDriverOptions {
  /**
   * `postgresql://user:password@host:port/database?sslmode=...`. The password is handed to the tools
   * as PGPASSWORD in their environment, never on their command line. Without a password, the
   * tools' usual sources apply (PGPASSWORD, ~/.pgpass, peer or trust authentication).
   */
  url: string;
  /** Extra pg_dump arguments, e.g. `["--exclude-table=audit_log"]`. */
  dumpOptions?: string[];
  /** Extra pg_restore or psql arguments, e.g. `["--no-owner", "--no-acl"]` for pg_restore. */
  restoreOptions?: string[];
  /** Directory holding pg_dump, pg_restore and psql, when they are not on PATH. */
  binDirectory?: string;
  logger?: Logger;
}

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

/** Turns the usual PostgreSQL tool failures into a message a person can act on. */
export function explainPostgresFailure(stderr: string): string | undefined {
  const line = (pattern: RegExp) =>
    stderr
      .split("\n")
      .find((text) => pattern.test(text))
      ?.trim();
  const authentication = line(/password authentication failed|no password supplied|authentication failed/i);
  if (authentication) return `authentication failed: check the user and password in the URL (${authentication})`;
  const missing = line(/database ".*" does not exist/i);
  if (missing) return missing.replace(/^.*?(database ".*" does not exist).*$/i, "$1");
  const refused = line(/could not connect|Connection refused|could not translate host name/i);
  if (refused) return `cannot reach the server: ${refused}`;
  const versionMismatch = line(/server version mismatch/i);
  if (versionMismatch) return `${versionMismatch}: use client tools at least as new as the server`;
  const firstError = line(/\bERROR:|\berror:/);
  if (!firstError) return undefined;
  const cleaned = firstError.replace(/^(pg_restore|pg_dump|psql)(:[^:]*:\d+)?:\s*(error:\s*)?/, "").replace(/\s+/g, " ");
  if (/already exists/.test(cleaned)) {
    return `${cleaned} (restore into an empty database, or pass --restore-option=--clean --restore-option=--if-exists)`;
  }
  return cleaned;
}

interface Connection {
  /** The URL without password, for `--dbname`. */
  connectionString: string;
  env: Record<string, string | undefined>;
  database: string;
}

function connectionOf(url: string): Connection {
  const parsed = parseUrl(url, "PostgreSQL URL");
  const password = decodeURIComponent(parsed.password);
  parsed.password = "";
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (!database) {
    throw new HoardError("INVALID_ARGUMENT", `PostgreSQL URL names no database: ${redactUrl(url)} (add /dbname)`);
  }
  parsed.protocol = "postgresql:";
  return {
    connectionString: parsed.toString(),
    database,
    env: password ? { PGPASSWORD: password } : {},
  };
}

/**
 * The PostgreSQL driver. Dumps one database with `pg_dump --format=custom --compress=0`: the custom
 * format keeps everything pg_restore needs to rebuild schema, data, sequences, views, functions and
 * types exactly, lets a restore run in one transaction, and stays streamable; hoard compresses it
 * (gzip) on the way to storage instead of pg_dump, so it is not compressed twice.
 */
export function createPostgresDriver(options: PostgresDriverOptions): Driver {
  const connection = connectionOf(options.url);
  const tool = (name: string) => requireExecutable([options.binDirectory ? `${options.binDirectory}/${name}` : name], installHint);
  const toolOptions = (label: string, args: string[], signal: AbortSignal | undefined, logger: Logger | undefined): ToolOptions => ({
    label,
    args,
    env: connection.env,
    signal,
    logger: logger ?? options.logger,
    explainFailure: explainPostgresFailure,
  });

  return {
    name: "postgresql",
    url: redactUrl(options.url),
    extension: "dump",

    async dump({ signal, logger }: DumpContext) {
      const args = [
        "--format=custom",
        "--compress=0",
        "--no-password",
        ...(options.dumpOptions ?? []),
        `--dbname=${connection.connectionString}`,
      ];
      return { kind: "stream", stream: toolOutput(await tool("pg_dump"), toolOptions("pg_dump", args, signal, logger)) };
    },

    async restore(input: RestoreInput, { signal, logger }: RestoreContext) {
      const dbname = `--dbname=${connection.connectionString}`;
      const extra = options.restoreOptions ?? [];
      if (input.kind === "directory") {
        const args = ["--format=directory", "--no-password", "--exit-on-error", "--single-transaction", ...extra, dbname, input.path];
        await inOneTransaction(runTool(await tool("pg_restore"), toolOptions("pg_restore", args, signal, logger)));
        return;
      }
      const peeked = await peekStream(input.stream, 512);
      if (peeked.head.length === 0) throw new HoardError("CORRUPT_ARCHIVE", "the backup is empty: nothing to restore");
      const format = detectDumpFormat(peeked.head);
      if (format === "custom" || format === "tar") {
        const args = ["--no-password", "--exit-on-error", "--single-transaction", ...extra, dbname];
        await inOneTransaction(runToolWithInput(await tool("pg_restore"), toolOptions("pg_restore", args, signal, logger), peeked.stream));
      } else if (format === "sql") {
        const args = ["--no-password", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction", ...extra, dbname];
        await inOneTransaction(runToolWithInput(await tool("psql"), toolOptions("psql", args, signal, logger), peeked.stream));
      } else {
        await restoreCluster(
          await tool("psql"),
          toolOptions("psql", ["--no-password", "--no-psqlrc", "--quiet", ...extra, dbname], signal, logger),
          peeked.stream,
        );
      }
    },
  };
}

/** Waits for a restore that ran in one transaction and says so when it fails: nothing was changed. */
async function inOneTransaction(restoring: Promise<unknown>): Promise<void> {
  try {
    await restoring;
  } catch (error) {
    if (!HoardError.isInstance(error) || error.code === "ABORTED") throw error;
    throw new HoardError(error.code, `${error.message}; the restore ran in one transaction, so the database was left unchanged`, {
      cause: error,
      detail: error.detail,
    });
  }
}

/**
 * Restores a pg_dumpall script. It creates roles and databases, which cannot run in one
 * transaction, and it usually meets roles that already exist (the bootstrap superuser at least):
 * those errors are tolerated, any other error fails the restore.
 */
async function restoreCluster(executable: string, toolOptions: ToolOptions, stream: Readable): Promise<void> {
  const stderr = await runToolWithInput(executable, toolOptions, stream);
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

/** For the registry: `postgresql://` and `postgres://` URLs. */
export function createDriverFromUrl(url: string, settings: DriverSettings = {}): Driver {
  return createPostgresDriver({
    url,
    dumpOptions: settings.dumpOptions,
    restoreOptions: settings.restoreOptions,
    logger: settings.logger,
  });
}
