import { randomBytes } from "node:crypto";
import { scratchName } from "./scratch.ts";

/** A server started (or found) by the harness. */
export interface RunningServer {
  /** Stops the server if the harness started it, and removes what the harness made. Idempotent. */
  stop(): Promise<void>;
}

/** Where a database server came from. */
export type ServerOrigin =
  /** Given by an environment variable (HOARD_TEST_*_URL). */
  | "environment"
  /** Already running on the machine at its standard port. */
  | "machine"
  /** Started by the harness on a free port with a temporary data directory. */
  | "throwaway";

/** Wraps a stop function so that it runs at most once. */
export function stopOnce(stop: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= stop();
    return stopping;
  };
}

/**
 * A database server of the harness: its client, made with a callback that hears of every database
 * it creates or drops, and a stop() that drops those still there (unless the server is a throwaway
 * one, removed whole) and then calls `shutdown`.
 */
export function databaseServer<Client extends { dropDatabase(name: string): Promise<void> }>(
  makeClient: (onCreated: (name: string, created: boolean) => void) => Client,
  origin: ServerOrigin,
  shutdown: () => Promise<void>,
): Client & RunningServer & { origin: ServerOrigin } {
  const createdDatabases = new Set<string>();
  const client = makeClient((name, created) => {
    if (created) createdDatabases.add(name);
    else createdDatabases.delete(name);
  });
  return {
    ...client,
    origin,
    stop: stopOnce(async () => {
      if (origin !== "throwaway") {
        for (const name of [...createdDatabases]) {
          await client.dropDatabase(name);
        }
      }
      await shutdown();
    }),
  };
}

/**
 * createDatabase and createScratchDatabase of a database client: `create(name)` makes the database
 * and returns its URL, `onCreated` hears of it, and scratch names need the run's tag (else the
 * error names `connect`, the function that takes it).
 */
export function databaseCreation(
  create: (name: string) => Promise<string>,
  onCreated: (name: string, created: boolean) => void,
  runTag: string | undefined,
  connect: string,
): { createDatabase(name?: string): Promise<string>; createScratchDatabase(prefix?: string): Promise<string> } {
  const createDatabase = async (name = randomName("hoard_test")): Promise<string> => {
    assertPlainIdentifier(name);
    const url = await create(name);
    onCreated(name, true);
    return url;
  };
  return {
    createDatabase,
    createScratchDatabase(prefix = "hoard_test") {
      if (runTag === undefined) {
        throw new Error(`createScratchDatabase needs the run's tag: ${connect}(url, { runTag })`);
      }
      return createDatabase(scratchName(prefix, runTag));
    },
  };
}

/** A random lowercase name with a prefix, for databases and buckets. */
export function randomName(prefix: string, separator = "_"): string {
  return `${prefix}${separator}${randomBytes(6).toString("hex")}`;
}

/** Throws unless the name is a plain SQL identifier (letters, digits, underscore). */
export function assertPlainIdentifier(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`not a plain database name (letters, digits and _ only, at most 63): ${JSON.stringify(name)}`);
  }
}
