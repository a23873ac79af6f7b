import type { Document } from "mongodb";
import { MongoClient } from "mongodb";
import { freePort, loopbackHost } from "./network.ts";
import { requireTool } from "./paths.ts";
import type { PostgresServer } from "./postgres.ts";
import { startPostgres } from "./postgres.ts";
import { launchInTemporaryDirectory, waitUntil } from "./process.ts";
import { isTestName, scratchName } from "./scratch.ts";
import type { RunningServer } from "./server.ts";
import { randomName, stopOnce } from "./server.ts";

/** A MongoDB-compatible server to talk to: from {@link startMongo}, or from a URL with {@link connectMongo}. */
export interface MongoClientOfTests {
  /** mongodb://127.0.0.1:PORT/ */
  url: string;
  host: string;
  port: number;
  /**
   * Runs one command with the official driver (database default `admin`) and returns the reply;
   * throws unless ok is 1. For checks such as `{ listDatabases: 1, nameOnly: true }`.
   */
  command(command: Document, database?: string): Promise<Document>;
  /**
   * A database name `<prefix>_<run tag>_<random>` (MongoDB creates databases on first write): the
   * run's teardown drops it. Needs the client to know its run's tag.
   */
  scratchDatabaseName(prefix?: string): string;
  /** Drops a database. No error when it does not exist. */
  dropDatabase(name: string): Promise<void>;
  /** Names of the databases that hoard's tests own (`hoard_*`), whichever run made them. */
  testDatabases(): Promise<string[]>;
}

/** A MongoDB-compatible server: FerretDB on PostgreSQL, or the one in HOARD_TEST_MONGODB_URL. */
export interface MongoServer extends MongoClientOfTests, RunningServer {
  origin: "environment" | "throwaway";
}

/** A FerretDB this harness started: a {@link MongoServer} that can also be killed. */
export interface FerretdbServer extends MongoServer {
  origin: "throwaway";
  /**
   * Kills FerretDB at once (SIGKILL), as a crash would, and waits for it to exit; the port then
   * refuses connections. stop() still drops its PostgreSQL database afterwards.
   */
  kill(): Promise<void>;
}

/**
 * A MongoDB-compatible server. HOARD_TEST_MONGODB_URL when set; else FerretDB
 * (`.cache/bin/ferretdb`, built by scripts/install-tools.sh) on a free port with the PostgreSQL
 * backend, in a fresh database of `postgres` (or of a PostgreSQL server that this call starts and
 * stop() stops). stop() kills FerretDB and drops its database.
 */
export async function startMongo(postgres?: PostgresServer): Promise<MongoServer> {
  const configuredUrl = process.env.HOARD_TEST_MONGODB_URL;
  if (configuredUrl !== undefined && configuredUrl !== "") {
    return configuredMongo(configuredUrl);
  }
  return startFerretdb(postgres);
}

function configuredMongo(url: string): MongoServer {
  return { ...connectMongo(url), origin: "environment", stop: async () => {} };
}

/**
 * A client for the MongoDB-compatible server of a URL (e.g. the one a global setup provided). With
 * a run tag, scratchDatabaseName gives names that the run's teardown drops.
 */
export function connectMongo(url: string, options: { runTag?: string | undefined } = {}): MongoClientOfTests {
  const firstHost = new URL(url.replace(/^mongodb(\+srv)?:\/\//, "http://").replace(/,[^/]*/, ""));
  const command = (request: Document, database?: string): Promise<Document> => mongoCommand(url, request, { database });
  return {
    url,
    host: firstHost.hostname,
    port: firstHost.port === "" ? 27017 : Number(firstHost.port),
    command,
    scratchDatabaseName(prefix = "hoard_test") {
      if (options.runTag === undefined) {
        throw new Error("scratchDatabaseName needs the run's tag: connectMongo(url, { runTag })");
      }
      return scratchName(prefix, options.runTag);
    },
    async dropDatabase(name) {
      await command({ dropDatabase: 1 }, name);
    },
    async testDatabases() {
      const reply = await command({ listDatabases: 1, nameOnly: true });
      const databases = (reply.databases ?? []) as Array<{ name: string }>;
      return databases
        .map((database) => database.name)
        .filter(isTestName)
        .sort();
    },
  };
}

/**
 * Runs one command on a MongoDB-compatible server with the official driver over a connection of
 * its own (closed afterwards) and returns the reply; throws unless ok is 1.
 */
export async function mongoCommand(
  url: string,
  command: Document,
  options: { database?: string | undefined; timeoutMs?: number | undefined } = {},
): Promise<Document> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const client = new MongoClient(url, {
    directConnection: !url.startsWith("mongodb+srv:"),
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    socketTimeoutMS: 60_000,
  });
  try {
    return await client.db(options.database ?? "admin").command(command);
  } finally {
    await client.close();
  }
}

/** {@link mongoCommand} on `mongodb://host:port/`. */
export function runMongoCommand(
  host: string,
  port: number,
  command: Document,
  options: { database?: string | undefined; timeoutMs?: number | undefined } = {},
): Promise<Document> {
  return mongoCommand(`mongodb://${host}:${port}/`, command, options);
}

/**
 * Always a throwaway FerretDB (never HOARD_TEST_MONGODB_URL), for tests that must kill the server:
 * `.cache/bin/ferretdb` on a free port, on the given PostgreSQL or one this call starts.
 */
export async function startFerretdb(givenPostgres?: PostgresServer): Promise<FerretdbServer> {
  const command = requireTool("ferretdb");
  const postgres = givenPostgres ?? (await startPostgres());
  const stopOwnPostgres = async (): Promise<void> => {
    if (givenPostgres === undefined) {
      await postgres.stop();
    }
  };
  const database = randomName("hoard_ferretdb");
  return launchInTemporaryDirectory(
    "ferretdb",
    async ({ directory, launch, shutdown }) => {
      const postgresUrl = await postgres.createDatabase(database);
      const port = await freePort();
      const server = launch({
        name: "ferretdb",
        command,
        args: [
          "--handler=postgresql",
          `--listen-addr=${loopbackHost}:${port}`,
          `--state-dir=${directory}`,
          "--debug-addr=-",
          "--telemetry=disable",
          "--log-level=warn",
        ],
        // The PostgreSQL URL goes in the environment so that a password would not show in argv.
        env: { ...process.env, FERRETDB_POSTGRESQL_URL: postgresUrl },
      });
      await waitUntil(
        `FerretDB on ${loopbackHost}:${port} lists databases`,
        async () => (await runMongoCommand(loopbackHost, port, { listDatabases: 1, nameOnly: true }, { timeoutMs: 1_000 })).ok === 1,
        { server, intervalMs: 200 },
      );
      return {
        ...connectMongo(`mongodb://${loopbackHost}:${port}/`),
        origin: "throwaway",
        kill: async () => {
          await server.stop({ signal: "SIGKILL", timeoutMs: 5_000 });
        },
        stop: stopOnce(async () => {
          await shutdown("SIGTERM", 10_000);
          await postgres.dropDatabase(database);
          await stopOwnPostgres();
        }),
      };
    },
    {
      onFailure: async () => {
        await postgres.dropDatabase(database).catch(() => {});
        await stopOwnPostgres();
      },
    },
  );
}
