import { join } from "node:path";
import { freePort, loopbackHost } from "./network.ts";
import { findExecutable } from "./paths.ts";
import type { ProcessOwner } from "./process.ts";
import { launchInTemporaryDirectory, runCommand, runCommandOrThrow, startupError, startupTimeoutMs, waitUntil } from "./process.ts";
import { isTestName } from "./scratch.ts";
import type { RunningServer, ServerOrigin } from "./server.ts";
import { databaseCreation, databaseServer } from "./server.ts";
import { serverOwner } from "./server-user.ts";

/** A MariaDB server to talk to: from {@link startMariadb}, or from a URL with {@link connectMariadb}. */
export interface MariadbClient {
  host: string;
  port: number;
  user: string;
  /** Empty for the machine's and throwaway servers (root with no password). */
  password: string;
  /** Server URL without a database, e.g. mariadb://root@127.0.0.1:3306/. */
  url: string;
  /** URL of a database on this server. */
  databaseUrl(database: string): string;
  /**
   * Connection options for the mariadb, mariadb-dump and mysql clients (TCP, host, port, user;
   * never the password: pass {@link clientEnvironment}, which sets MYSQL_PWD when there is one).
   */
  clientArguments(): string[];
  /** process.env plus MYSQL_PWD when the server has a password. */
  clientEnvironment(): NodeJS.ProcessEnv;
  /**
   * Runs SQL with the mariadb client (no option files, batch mode, no column names) in a database
   * (default none) and returns its output.
   */
  query(sql: string, database?: string): Promise<string>;
  /** Creates a utf8mb4 database (default name `hoard_test_<random>`) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /**
   * Creates a utf8mb4 database named `<prefix>_<run tag>_<random>` and returns its URL: the run's
   * teardown drops it. Needs the client to know its run's tag.
   */
  createScratchDatabase(prefix?: string): Promise<string>;
  /** Drops a database. No error when it does not exist. */
  dropDatabase(name: string): Promise<void>;
  /** Names of the databases that hoard's tests own (`hoard_*`), whichever run made them. */
  testDatabases(): Promise<string[]>;
  /** Accounts that hoard's tests own (user `hoard_*`), whichever run made them. */
  testUsers(): Promise<Array<{ user: string; host: string }>>;
  /** Drops an account. No error when it does not exist. */
  dropUser(user: string, host: string): Promise<void>;
}

/** A MariaDB server to run tests against. */
export interface MariadbServer extends MariadbClient, RunningServer {
  origin: ServerOrigin;
}

interface MariadbConnection {
  host: string;
  port: number;
  user: string;
  password: string;
}

const machineConnection: MariadbConnection = { host: loopbackHost, port: 3306, user: "root", password: "" };
const serverDirectories = ["/usr/sbin", "/usr/local/sbin", "/usr/libexec", "/usr/local/mysql/bin"];

/**
 * A MariaDB server: the one in HOARD_TEST_MARIADB_URL; else the machine's on 127.0.0.1:3306 (root,
 * empty password) when it answers; else a throwaway one (mariadb-install-db + mariadbd on a free
 * port in a temporary directory, as an unprivileged user when root). HOARD_TEST_MARIADB=throwaway
 * skips the machine's server. Databases created through the returned object on a server the
 * harness did not start are dropped by stop().
 */
export async function startMariadb(): Promise<MariadbServer> {
  const configuredUrl = process.env.HOARD_TEST_MARIADB_URL;
  if (configuredUrl !== undefined && configuredUrl !== "") {
    return mariadbServer(parseMariadbUrl(configuredUrl), "environment", async () => {});
  }
  if (process.env.HOARD_TEST_MARIADB !== "throwaway" && (await mariadbAnswers(machineConnection))) {
    return mariadbServer(machineConnection, "machine", async () => {});
  }
  return startThrowawayMariadb();
}

function parseMariadbUrl(text: string): MariadbConnection {
  const url = new URL(text);
  if (url.protocol !== "mariadb:" && url.protocol !== "mysql:") {
    throw new Error(`HOARD_TEST_MARIADB_URL must be a mariadb:// or mysql:// URL, got ${url.protocol}`);
  }
  return {
    host: url.hostname || loopbackHost,
    port: url.port === "" ? 3306 : Number(url.port),
    user: decodeURIComponent(url.username) || "root",
    password: decodeURIComponent(url.password),
  };
}

function formatMariadbUrl(connection: MariadbConnection, database: string): string {
  const password = connection.password === "" ? "" : `:${encodeURIComponent(connection.password)}`;
  return `mariadb://${encodeURIComponent(connection.user)}${password}@${connection.host}:${connection.port}/${encodeURIComponent(database)}`;
}

function clientArguments(connection: MariadbConnection): string[] {
  return ["--protocol=TCP", `--host=${connection.host}`, `--port=${connection.port}`, `--user=${connection.user}`];
}

function clientEnvironment(connection: MariadbConnection): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = { ...process.env };
  if (connection.password === "") {
    delete environment.MYSQL_PWD;
  } else {
    environment.MYSQL_PWD = connection.password;
  }
  return environment;
}

function clientPath(): string {
  const path = findExecutable("mariadb") ?? findExecutable("mysql");
  if (path === undefined) {
    throw new Error("the mariadb client is not on PATH (install mariadb-client)");
  }
  return path;
}

/** Runs SQL with the mariadb client (no option files, batch mode) and returns its output. */
async function runSql(connection: MariadbConnection, sql: string, database?: string): Promise<string> {
  const databaseArguments = database === undefined || database === "" ? [] : [`--database=${database}`];
  return runCommandOrThrow(
    clientPath(),
    [
      "--no-defaults",
      ...clientArguments(connection),
      "--batch",
      "--skip-column-names",
      "--default-character-set=utf8mb4",
      ...databaseArguments,
      "--execute",
      sql,
    ],
    { env: clientEnvironment(connection), timeoutMs: 60_000 },
  );
}

/** A string literal for SQL in tests. */
function literal(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

async function mariadbAnswers(connection: MariadbConnection): Promise<boolean> {
  const result = await runCommand(
    clientPath(),
    ["--no-defaults", ...clientArguments(connection), "--connect-timeout=3", "--batch", "--skip-column-names", "--execute", "select 1"],
    { env: clientEnvironment(connection), timeoutMs: 10_000 },
  );
  return result.exitCode === 0 && result.stdout.trim() === "1";
}

/**
 * A client for the MariaDB server of a URL (e.g. the one a global setup provided). With a run tag,
 * createScratchDatabase makes databases that the run's teardown drops.
 */
export function connectMariadb(url: string, options: { runTag?: string | undefined } = {}): MariadbClient {
  return mariadbClient(parseMariadbUrl(url), options.runTag, () => {});
}

function mariadbClient(
  connection: MariadbConnection,
  runTag: string | undefined,
  onCreated: (name: string, created: boolean) => void,
): MariadbClient {
  const create = async (name: string): Promise<string> => {
    await runSql(connection, `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
    return formatMariadbUrl(connection, name);
  };
  return {
    host: connection.host,
    port: connection.port,
    user: connection.user,
    password: connection.password,
    url: formatMariadbUrl(connection, ""),
    databaseUrl: (database) => formatMariadbUrl(connection, database),
    clientArguments: () => clientArguments(connection),
    clientEnvironment: () => clientEnvironment(connection),
    query: (sql, database) => runSql(connection, sql, database),
    ...databaseCreation(create, onCreated, runTag, "connectMariadb"),
    async dropDatabase(name) {
      await runSql(connection, `DROP DATABASE IF EXISTS \`${name.replaceAll("`", "``")}\``);
      onCreated(name, false);
    },
    async testDatabases() {
      const output = await runSql(connection, "SHOW DATABASES LIKE 'hoard%'");
      return output.split("\n").filter(isTestName).sort();
    },
    async testUsers() {
      const output = await runSql(connection, "SELECT User, Host FROM mysql.user WHERE User LIKE 'hoard%' ORDER BY 1, 2");
      return output
        .split("\n")
        .map((line) => line.split("\t"))
        .filter(([user]) => user !== undefined && isTestName(user))
        .map(([user = "", host = ""]) => ({ user, host }));
    },
    async dropUser(user, host) {
      await runSql(connection, `DROP USER IF EXISTS ${literal(user)}@${literal(host)}`);
    },
  };
}

function mariadbServer(connection: MariadbConnection, origin: ServerOrigin, shutdown: () => Promise<void>): MariadbServer {
  return databaseServer((onCreated) => mariadbClient(connection, undefined, onCreated), origin, shutdown);
}

function requireExecutable(names: readonly string[], directories: readonly string[], hint: string): string {
  for (const name of names) {
    const path = findExecutable(name, directories);
    if (path !== undefined) {
      return path;
    }
  }
  throw new Error(`${names.join(" or ")} not found on PATH or in ${directories.join(", ")}: ${hint}`);
}

async function startThrowawayMariadb(): Promise<MariadbServer> {
  const hint = "install mariadb-server or set HOARD_TEST_MARIADB_URL";
  const serverPath = requireExecutable(["mariadbd", "mysqld"], serverDirectories, hint);
  const installPath = requireExecutable(["mariadb-install-db", "mysql_install_db"], ["/usr/bin", "/usr/local/bin"], hint);
  const owner = await serverOwner();
  return launchInTemporaryDirectory(
    "mariadb",
    async ({ directory, launch, shutdown }) => {
      const dataDirectory = join(directory, "data");
      await initializeMariadbData(installPath, dataDirectory, directory, owner);
      const port = await freePort();
      const connection: MariadbConnection = { ...machineConnection, port };
      const server = launch({
        name: "mariadbd",
        command: serverPath,
        args: [
          "--no-defaults",
          `--datadir=${dataDirectory}`,
          `--socket=${join(directory, "mariadb.sock")}`,
          `--pid-file=${join(directory, "mariadb.pid")}`,
          `--tmpdir=${directory}`,
          `--port=${port}`,
          `--bind-address=${loopbackHost}`,
          "--skip-name-resolve",
          "--character-set-server=utf8mb4",
          "--collation-server=utf8mb4_general_ci",
        ],
      });
      await waitUntil(`MariaDB answers on ${loopbackHost}:${port}`, () => mariadbAnswers(connection), { server });
      return mariadbServer(connection, "throwaway", () => shutdown("SIGTERM", 30_000));
    },
    { owner },
  );
}

async function initializeMariadbData(
  installPath: string,
  dataDirectory: string,
  workingDirectory: string,
  owner: ProcessOwner | undefined,
): Promise<void> {
  try {
    await runCommandOrThrow(
      installPath,
      ["--no-defaults", `--datadir=${dataDirectory}`, "--auth-root-authentication-method=normal", "--skip-test-db"],
      { cwd: workingDirectory, owner, timeoutMs: startupTimeoutMs() },
    );
  } catch (error) {
    throw startupError(`mariadb-install-db failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
