import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Readable, Transform } from "node:stream";
import {
  type Driver,
  type DriverSettings,
  type DumpContext,
  defaultNetworkTimeoutMs,
  describeError,
  HoardError,
  type Logger,
  log,
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
   * `postgresql://user:password@host:port/database?sslmode=...`. The password (in the user
   * information or as `?password=`) is handed to the tools as PGPASSWORD in their environment,
   * and `?sslpassword=` through a private temporary service file, never on their command line.
   * Without a password, the tools' usual sources apply (PGPASSWORD, ~/.pgpass, peer or trust
   * authentication).
   */
  url: string;
  /** Extra pg_dump arguments, e.g. `["--exclude-table=audit_log"]`. */
  dumpOptions?: string[];
  /** Extra pg_restore or psql arguments, e.g. `["--no-owner", "--no-acl"]` for pg_restore. */
  restoreOptions?: string[];
  /** Directory holding pg_dump, pg_restore and psql, when they are not on PATH. */
  binDirectory?: string;
  /**
   * How long the tools wait for the server to accept a connection and answer, in milliseconds
   * (PGCONNECT_TIMEOUT, whole seconds, at least 2). A host that never answers fails with
   * UNREACHABLE. A `connect_timeout` in the URL takes precedence.
   * @default 15_000
   */
  connectTimeoutMs?: number;
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
  if (/already exists/.test(cleaned)) return `${cleaned} (restore into an empty database, or use --replace)`;
  return cleaned;
}

/** Where and as whom the tools connect, with the secrets taken out of the URL. */
export interface PostgresConnection {
  /** The URL for `--dbname`: without the password, `password=` or `sslpassword=`. */
  connectionString: string;
  database: string;
  password?: string;
  sslPassword?: string;
  /** `host:port` (or the socket directory) for messages. */
  address: string;
}

/** Query parameters that carry secrets: they never reach a command line. */
const secretParameters = new Set(["password", "sslpassword"]);

/** The longest sslpassword a PostgreSQL 15 service file line holds (libpq reads lines of up to 1023 bytes). */
const maxServiceFileValueBytes = 1000;

function decodePart(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    // Never the URL or the text: it may be (part of) the password.
    throw new HoardError("INVALID_ARGUMENT", `postgresql: the ${what} in the database URL is badly percent-encoded: write % as %25`, {
      cause: error,
    });
  }
}

/**
 * Reads a `postgresql://` URL and takes the secrets out of it: the password from the user
 * information or `?password=`, and `?sslpassword=`. The rest of the query is passed on as it was
 * written (libpq decodes it; re-encoding it would turn spaces into `+`, which libpq keeps).
 */
export function parsePostgresUrl(url: string): PostgresConnection {
  const parsed = parseUrl(url, "PostgreSQL URL");
  let password = decodePart(parsed.password, "password") || undefined;
  decodePart(parsed.username, "user name");
  parsed.password = "";
  let sslPassword: string | undefined;
  const kept: string[] = [];
  for (const part of parsed.search.replace(/^\?/, "").split("&")) {
    if (!part) continue;
    const equals = part.indexOf("=");
    const key = decodePart(equals < 0 ? part : part.slice(0, equals), "query");
    if (!secretParameters.has(key)) {
      kept.push(part);
      continue;
    }
    const value = decodePart(equals < 0 ? "" : part.slice(equals + 1), key);
    if (key === "password") password = value || undefined;
    else sslPassword = value || undefined;
  }
  parsed.search = kept.length > 0 ? `?${kept.join("&")}` : "";
  const database = decodePart(parsed.pathname.replace(/^\//, ""), "database name");
  if (!database) {
    throw new HoardError("INVALID_ARGUMENT", `postgresql: the URL names no database: ${redactUrl(url)} (add /dbname)`);
  }
  if (sslPassword !== undefined) {
    if (/[\r\n]|\s$/.test(sslPassword) || Buffer.byteLength(sslPassword) > maxServiceFileValueBytes) {
      throw new HoardError(
        "INVALID_ARGUMENT",
        `postgresql: the sslpassword in the database URL cannot be handed to the tools safely: it must not end in whitespace, hold a line break or be longer than ${maxServiceFileValueBytes} bytes`,
      );
    }
    if (kept.some((part) => /^service=/i.test(part))) {
      throw new HoardError(
        "INVALID_ARGUMENT",
        "postgresql: the database URL cannot have both sslpassword= and service=: put the sslpassword in the service",
      );
    }
  }
  parsed.protocol = "postgresql:";
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    connectionString: parsed.toString(),
    database,
    password,
    sslPassword,
    address: host ? `${host}:${parsed.port || "5432"}` : `the local socket (port ${parsed.port || "5432"})`,
  };
}

/** The connect timeout in whole seconds as libpq takes it: at least 2 (libpq raises 1 to 2). */
export function connectTimeoutSeconds(milliseconds: number | undefined): number {
  const value = milliseconds ?? defaultNetworkTimeoutMs;
  if (!Number.isFinite(value) || value <= 0) {
    throw new HoardError("INVALID_ARGUMENT", `postgresql: invalid connect timeout ${String(milliseconds)} ms: use a positive number`);
  }
  return Math.max(2, Math.ceil(value / 1000));
}

/** The tools' environment for one dump or restore, and how to clean up after it. */
interface ToolEnvironment {
  env: Record<string, string | undefined>;
  /** Removes the service file, if one was written; safe to call more than once. */
  remove(): Promise<void>;
}

/**
 * The password goes into PGPASSWORD. libpq has no environment variable for sslpassword, so it
 * goes into a private connection service file (mode 0600, in a fresh 0700 directory under the
 * work directory) named by PGSERVICEFILE and PGSERVICE; libpq takes from a service only what the
 * connection string does not set.
 */
async function toolEnvironment(connection: PostgresConnection, timeoutSeconds: number, workDirectory: string): Promise<ToolEnvironment> {
  const env: Record<string, string | undefined> = { PGCONNECT_TIMEOUT: String(timeoutSeconds) };
  if (connection.password) env.PGPASSWORD = connection.password;
  if (!connection.sslPassword) return { env, remove: async () => {} };
  const directory = await mkdtemp(join(workDirectory, "postgresql-"));
  const file = join(directory, "pg_service.conf");
  try {
    await writeFile(file, `[hoard]\nsslpassword=${connection.sslPassword}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  env.PGSERVICEFILE = file;
  env.PGSERVICE = "hoard";
  let removed: Promise<void> | undefined;
  return {
    env,
    remove: () => {
      removed ??= rm(directory, { recursive: true, force: true });
      return removed;
    },
  };
}

/**
 * Turns libpq's "timeout expired" into UNREACHABLE naming the host (as libpq names it) and the
 * timeout; any other error is returned as it is.
 */
export function connectTimeoutFailure(error: unknown, fallbackAddress: string, timeoutSeconds: number): unknown {
  if (!HoardError.isInstance(error) || error.code === "ABORTED" || !error.detail || !/failed: timeout expired/.test(error.detail)) {
    return error;
  }
  const tcp = /connection to server at "([^"]+)"(?: \([^)]*\))?, port (\d+) failed: timeout expired/.exec(error.detail);
  const socket = /connection to server on socket "([^"]+)" failed: timeout expired/.exec(error.detail);
  const address = tcp ? `${tcp[1]}:${tcp[2]}` : (socket?.[1] ?? fallbackAddress);
  return new HoardError("UNREACHABLE", `postgresql: no answer from ${address} within ${timeoutSeconds} s`, {
    cause: error,
    detail: error.detail,
  });
}

/**
 * Passes pg_dump's output on only once its first bytes are a custom-format header (`PGDMP`): a
 * dump option that redirects the dump (`--file`) or changes its format would otherwise leave an
 * empty or foreign backup that looks fine.
 */
export function customFormatCheck(): Transform {
  const magic = Buffer.from("PGDMP", "latin1");
  let head = Buffer.alloc(0);
  let checked = false;
  const failure = () =>
    new HoardError("TOOL_FAILED", "pg_dump produced no custom-format dump on its output (does a --dump-option redirect it, e.g. --file?)");
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (checked) return callback(null, chunk);
      head = Buffer.concat([head, chunk]);
      if (head.length < magic.length) return callback();
      if (!head.subarray(0, magic.length).equals(magic)) return callback(failure());
      checked = true;
      callback(null, head);
    },
    flush(callback) {
      callback(checked ? null : failure());
    },
  });
}

const objectKinds: Record<string, [string, string]> = {
  table: ["table", "tables"],
  view: ["view", "views"],
  "materialized view": ["materialized view", "materialized views"],
  sequence: ["sequence", "sequences"],
  "foreign table": ["foreign table", "foreign tables"],
  type: ["type", "types"],
  function: ["function", "functions"],
  procedure: ["procedure", "procedures"],
  aggregate: ["aggregate", "aggregates"],
  schema: ["schema", "schemas"],
  database: ["other database", "other databases"],
};

/**
 * What a user put in the connected database: relations, sequences, types, functions and schemas
 * outside pg_catalog, information_schema and the toast and temporary schemas, leaving out the
 * `public` schema itself, implicit array and multirange types, table row types, and members of
 * extensions (created by CREATE EXTENSION, as template1 may hold). One row per kind: kind, count,
 * the first two names.
 */
const userObjectsQuery = String.raw`
WITH spaces AS (
  SELECT oid, nspname FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'
), members AS (
  SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
), found AS (
  SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind,
         CASE WHEN s.nspname = 'public' THEN format('%I', c.relname) ELSE format('%I.%I', s.nspname, c.relname) END AS name
  FROM pg_class c JOIN spaces s ON s.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND (c.oid) NOT IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
  UNION ALL
  SELECT 'type', CASE WHEN s.nspname = 'public' THEN format('%I', t.typname) ELSE format('%I.%I', s.nspname, t.typname) END
  FROM pg_type t JOIN spaces s ON s.oid = t.typnamespace
  WHERE t.typtype <> 'm'
    AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
    AND NOT EXISTS (SELECT 1 FROM pg_type element WHERE element.typarray = t.oid)
    AND (t.oid) NOT IN (SELECT objid FROM members WHERE classid = 'pg_type'::regclass)
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
         CASE WHEN s.nspname = 'public' THEN format('%I', p.proname) ELSE format('%I.%I', s.nspname, p.proname) END
  FROM pg_proc p JOIN spaces s ON s.oid = p.pronamespace
  WHERE (p.oid) NOT IN (SELECT objid FROM members WHERE classid = 'pg_proc'::regclass)
  UNION ALL
  SELECT 'schema', format('%I', s.nspname) FROM spaces s
  WHERE s.nspname <> 'public' AND (s.oid) NOT IN (SELECT objid FROM members WHERE classid = 'pg_namespace'::regclass)
)
SELECT kind, count(*), array_to_string((array_agg(name ORDER BY name))[1:2], chr(31)) FROM found GROUP BY kind`;

/** Databases a cluster script could restore over: all but the templates, `postgres` and the connected one. */
const otherDatabasesQuery = `
SELECT 'database', count(*), array_to_string((array_agg(format('%I', datname) ORDER BY datname))[1:2], chr(31))
FROM pg_database WHERE datname NOT IN ('template0', 'template1', 'postgres') AND datname <> current_database() HAVING count(*) > 0`;

interface FoundObjects {
  kind: string;
  count: number;
  examples: string[];
}

function parseFound(output: string): FoundObjects[] {
  const order = Object.keys(objectKinds);
  return output
    .replace(/\n$/, "")
    .split("\x1e")
    .map((row) => row.replace(/^\n/, ""))
    .filter((row) => row.trim() !== "")
    .map((row) => {
      const [kind = "", count = "0", examples = ""] = row.split("\x1f\x1d");
      return { kind, count: Number(count), examples: examples.split("\x1f").filter(Boolean) };
    })
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
}

/** `3 tables, 1 sequence, e.g. customers, orders`. */
function describeFound(found: FoundObjects[]): string {
  const counts = found.map(({ kind, count }) => {
    const [one, many] = objectKinds[kind] ?? [kind, `${kind}s`];
    return `${count} ${count === 1 ? one : many}`;
  });
  const examples = found.flatMap((entry) => entry.examples).slice(0, 2);
  return `${counts.join(", ")}${examples.length > 0 ? `, e.g. ${examples.join(", ")}` : ""}`;
}

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

  /** Runs a query with psql (connect timeout included) and returns its records. */
  const query = async (sql: string, env: Record<string, string | undefined>, signal?: AbortSignal, logger?: Logger) => {
    const args = [
      "--no-password",
      "--no-psqlrc",
      "--quiet",
      "--no-align",
      "--tuples-only",
      "--field-separator=\x1f\x1d",
      "--record-separator=\x1e",
      "--set=ON_ERROR_STOP=1",
      dbname,
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
    if (found.length > 0) {
      throw new HoardError(
        "TARGET_NOT_EMPTY",
        `postgresql: ${connection.database} is not empty (${describeFound(found)}); use --replace to restore over it`,
      );
    }
    if (!cluster) return;
    const others = parseFound(await query(otherDatabasesQuery, env, signal, logger));
    if (others.length > 0) {
      throw new HoardError(
        "TARGET_NOT_EMPTY",
        `postgresql: the server is not empty for a cluster dump (${describeFound(others)}); use --replace to restore over it`,
      );
    }
  };

  return {
    name: "postgresql",
    url: redactUrl(options.url),
    extension: "dump",

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
      const checked = customFormatCheck();
      output.on("error", (error) => checked.destroy(unreachable(error) as Error));
      output.pipe(checked);
      checked.on("close", () => {
        output.destroy();
        environment.remove().catch((error: unknown) => {
          log(logger ?? options.logger, "warn", `could not remove the temporary service file: ${describeError(error)}`);
        });
      });
      return { kind: "stream", stream: checked };
    },

    async restore(input: RestoreInput, { signal, logger, workDirectory, replace }: RestoreContext) {
      const extra = options.restoreOptions ?? [];
      const clean = replace ? ["--clean", "--if-exists"] : [];
      const environment = await toolEnvironment(connection, timeoutSeconds, workDirectory);
      const { env } = environment;
      let stream: Readable | undefined = input.kind === "stream" ? input.stream : undefined;
      /** What a failure leaves: nothing yet, one transaction's worth (rolled back), or a cluster script's partial work. */
      let phase: "checking" | "transaction" | "cluster" = "checking";
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

/**
 * Says what a failed restore left behind. Custom, tar, directory and plain SQL restores run in one
 * transaction, so a failure or an abort leaves the database unchanged; a cluster script cannot, and
 * restoreCluster says so itself; a failure while checking the target changed nothing.
 */
function restoreFailure(error: unknown, database: string, phase: "checking" | "transaction" | "cluster"): unknown {
  if (!HoardError.isInstance(error) || phase === "cluster") return error;
  if (error.code === "ABORTED") {
    const message =
      phase === "transaction"
        ? `postgresql: restore into ${database} aborted; it ran in one transaction, which was rolled back, so the database was left unchanged`
        : `postgresql: restore into ${database} aborted before it started; the database was not touched`;
    return new HoardError("ABORTED", message, { cause: error, detail: error.detail });
  }
  if (phase === "checking" || error.code === "UNREACHABLE") return error;
  return new HoardError(error.code, `${error.message}; the restore ran in one transaction, so the database was left unchanged`, {
    cause: error,
    detail: error.detail,
  });
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
    if (!HoardError.isInstance(error)) throw error;
    const what = error.code === "ABORTED" ? "postgresql: restore of a cluster dump aborted" : error.message;
    throw new HoardError(error.code, `${what}; databases and roles it created may be partially restored`, {
      cause: error,
      detail: error.detail,
    });
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

/** For the registry: `postgresql://` and `postgres://` URLs. */
export function createDriverFromUrl(url: string, settings: DriverSettings = {}): Driver {
  return createPostgresDriver({
    url,
    dumpOptions: settings.dumpOptions,
    restoreOptions: settings.restoreOptions,
    connectTimeoutMs: settings.connectTimeoutMs,
    logger: settings.logger,
  });
}
