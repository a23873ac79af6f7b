/**
 * For test files and their helpers (inside vitest's workers): clients for the servers the package's
 * global setup ({@link setupServers} in `@hoard/test-harness/setup`) provided, which know the run's
 * tag so that what they create is dropped at teardown.
 */
import { inject } from "vitest";
import "./context.ts";
import type { MariadbClient } from "./mariadb.ts";
import { connectMariadb } from "./mariadb.ts";
import type { MongoClientOfTests } from "./mongo.ts";
import { connectMongo } from "./mongo.ts";
import type { PostgresClient } from "./postgres.ts";
import { connectPostgres } from "./postgres.ts";
import { scratchName as runScratchName } from "./scratch.ts";

export type { ProvidedGcs, ProvidedMariadb, ProvidedMongo, ProvidedPostgres, ProvidedRun, ProvidedS3 } from "./context.ts";
export * from "./faults.ts";

/** The run's tag, from the global setup. */
export function runTag(): string {
  const run = inject("hoardRun");
  if (run === undefined) {
    throw new Error("no hoardRun provided: the package's test/global-setup.ts must be setupServers() from @hoard/test-harness/setup");
  }
  return run.tag;
}

/** `<prefix>_<run tag>_<random>`: a database, user or bucket name that the run's teardown recognises and drops. */
export function scratchName(prefix: string, separator = "_"): string {
  return runScratchName(prefix, runTag(), separator);
}

/** The PostgreSQL server of the run: `query(sql)`, `createScratchDatabase(prefix)`. */
export function testPostgres(url = inject("postgres").url): PostgresClient {
  return connectPostgres(url, { runTag: runTag() });
}

/** The MariaDB server of the run: `query(sql)`, `createScratchDatabase(prefix)`. */
export function testMariadb(url = inject("mariadb").url): MariadbClient {
  return connectMariadb(url, { runTag: runTag() });
}

/** The MongoDB-compatible server of the run: `command(document)`, `scratchDatabaseName(prefix)`. */
export function testMongo(url = inject("mongo").url): MongoClientOfTests {
  return connectMongo(url, { runTag: runTag() });
}
