import { join } from "node:path";
import type { BsonDocument } from "./mongo-wire.ts";
import { runMongoCommand } from "./mongo-wire.ts";
import { freePort, loopbackHost } from "./network.ts";
import { requireTool } from "./paths.ts";
import type { PostgresServer } from "./postgres.ts";
import { startPostgres } from "./postgres.ts";
import type { ManagedProcess } from "./process.ts";
import { makeTemporaryDirectory, removeTemporaryDirectory, startProcess, waitUntil } from "./process.ts";
import type { RunningServer } from "./server.ts";
import { randomName, stopOnce } from "./server.ts";

/** A MongoDB-compatible server: FerretDB on PostgreSQL, or the one in HOARD_TEST_MONGODB_URL. */
export interface MongoServer extends RunningServer {
  origin: "environment" | "throwaway";
  /** mongodb://127.0.0.1:PORT/ */
  url: string;
  host: string;
  port: number;
  /**
   * Runs one command with a minimal OP_MSG client (no driver, no authentication) and returns the
   * reply; throws unless ok is 1. For checks such as `{ listDatabases: 1, nameOnly: true }`.
   */
  command(command: BsonDocument, database?: string): Promise<BsonDocument>;
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
  const firstHost = new URL(url.replace(/^mongodb(\+srv)?:\/\//, "http://").replace(/,[^/]*/, ""));
  const host = firstHost.hostname;
  const port = firstHost.port === "" ? 27017 : Number(firstHost.port);
  return {
    origin: "environment",
    url,
    host,
    port,
    command: (command, database) => runMongoCommand(host, port, command, { database }),
    stop: async () => {},
  };
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
  const directory = makeTemporaryDirectory("ferretdb");
  let server: ManagedProcess | undefined;
  try {
    const postgresUrl = await postgres.createDatabase(database);
    const port = await freePort();
    server = startProcess({
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
      logPath: join(directory, "ferretdb.log"),
      cwd: directory,
    });
    const ask = (request: BsonDocument, name?: string): Promise<BsonDocument> =>
      runMongoCommand(loopbackHost, port, request, { database: name });
    await waitUntil(
      `FerretDB on ${loopbackHost}:${port} lists databases`,
      async () => (await ask({ listDatabases: 1, nameOnly: true })).ok === 1,
      { server, intervalMs: 200 },
    );
    const running = server;
    return {
      origin: "throwaway",
      url: `mongodb://${loopbackHost}:${port}/`,
      host: loopbackHost,
      port,
      command: ask,
      kill: async () => {
        await running.stop({ signal: "SIGKILL", timeoutMs: 5_000 });
      },
      stop: stopOnce(async () => {
        await running.stop({ signal: "SIGTERM", timeoutMs: 10_000 });
        await postgres.dropDatabase(database);
        await stopOwnPostgres();
        await removeTemporaryDirectory(directory);
      }),
    };
  } catch (error) {
    await server?.stop({ signal: "SIGKILL" });
    await postgres.dropDatabase(database).catch(() => {});
    await stopOwnPostgres();
    await removeTemporaryDirectory(directory);
    throw error;
  }
}
