import type { ProvidedContext } from "vitest";
import type { TestProject } from "vitest/node";
import "./context.ts";
import type { GcsServer } from "./gcs.ts";
import { startGcs } from "./gcs.ts";
import type { MariadbServer } from "./mariadb.ts";
import { startMariadb } from "./mariadb.ts";
import type { MongoServer } from "./mongo.ts";
import { startMongo } from "./mongo.ts";
import { requireMongoTools } from "./paths.ts";
import type { PostgresServer } from "./postgres.ts";
import { startPostgres } from "./postgres.ts";
import type { S3Server } from "./s3.ts";
import { startS3 } from "./s3.ts";
import { isTestName, madeByRun, newRunTag, otherLiveRuns, registerLiveRun } from "./scratch.ts";

/** The servers a package's tests can ask for. */
export type ServerName = "postgres" | "mariadb" | "mongo" | "s3" | "gcs";

/** What {@link setupServers} starts. */
export interface SetupOptions {
  /** The servers to start (or find) and provide; "mongo" runs FerretDB on the PostgreSQL server, started for it if not asked for. */
  servers: readonly ServerName[];
  /** Also provide the paths of mongodump and mongorestore (fails, saying how to build them, when they are missing). */
  mongoTools?: boolean;
}

/** The servers of one run, as the teardown needs them. */
interface Started {
  postgres?: PostgresServer;
  mariadb?: MariadbServer;
  mongo?: MongoServer;
  s3?: S3Server;
  gcs?: GcsServer;
}

/**
 * A vitest global setup that starts the servers a package's tests need and provides them under the
 * keys declared in context.ts, plus `hoardRun` (the run's tag). Its teardown drops every database
 * and account whose name carries the run's tag (what `createScratchDatabase` made), stops the
 * servers, and then fails the run, naming them, if any `hoard_*` database or account of this run is
 * left, or if one appeared during the run without any tag while no other run was live.
 *
 *   // test/global-setup.ts
 *   export default setupServers({ servers: ["postgres"] });
 */
export function setupServers(options: SetupOptions): (project: TestProject) => Promise<() => Promise<void>> {
  return async (project) => {
    const tag = newRunTag();
    const unregister = registerLiveRun(tag);
    const started: Started = {};
    const provide = <Key extends keyof ProvidedContext>(key: Key, value: ProvidedContext[Key]): void => project.provide(key, value);
    try {
      provide("hoardRun", { tag });
      if (options.mongoTools) provide("mongoTools", requireMongoTools());
      const wants = new Set(options.servers);
      const [postgres, mariadb, s3, gcs] = await Promise.all([
        wants.has("postgres") || wants.has("mongo") ? startPostgres() : undefined,
        wants.has("mariadb") ? startMariadb() : undefined,
        wants.has("s3") ? startS3() : undefined,
        wants.has("gcs") ? startGcs() : undefined,
      ]);
      Object.assign(started, { postgres, mariadb, s3, gcs });
      if (postgres !== undefined) provide("postgres", { url: postgres.url });
      if (mariadb !== undefined) {
        provide("mariadb", { host: mariadb.host, port: mariadb.port, user: mariadb.user, password: mariadb.password, url: mariadb.url });
      }
      if (s3 !== undefined) {
        const { endpoint, region, accessKeyId, secretAccessKey } = s3;
        provide("s3", { endpoint, region, accessKeyId, secretAccessKey, bucket: await s3.createBucket() });
      }
      if (gcs !== undefined) provide("gcs", { endpoint: gcs.endpoint, projectId: gcs.projectId, bucket: await gcs.createBucket() });
      if (wants.has("mongo") && postgres !== undefined) {
        started.mongo = await startMongo(postgres);
        provide("mongo", { host: started.mongo.host, port: started.mongo.port, url: started.mongo.url });
      }
    } catch (error) {
      await stopAll(started).catch(() => {});
      unregister();
      throw error;
    }
    const before = await testNames(started);
    return async () => {
      try {
        await dropRunScratch(started, tag);
        const after = await testNames(started);
        const others = otherLiveRuns(tag);
        await stopAll(started);
        const ours = after.filter((entry) => madeByRun(nameOf(entry), tag));
        const untagged =
          others.length > 0 ? [] : after.filter((entry) => !before.includes(entry) && !/[_-][0-9a-f]{8}[_-]/.test(nameOf(entry)));
        if (ours.length > 0 || untagged.length > 0) {
          throw new Error(
            `the tests left ${[...ours, ...untagged].join(", ")} on the servers (run ${tag}): make them with ` +
              "createScratchDatabase / scratchName from @hoard/test-harness/vitest, which the teardown drops",
          );
        }
      } finally {
        unregister();
      }
    };
  };
}

/** `postgresql: hoard_pg_...`, `mariadb: hoard_user_...@%`, ...: every test-owned name on the run's shared servers. */
async function testNames(started: Started): Promise<string[]> {
  const names: string[] = [];
  if (started.postgres !== undefined) {
    for (const name of await started.postgres.testDatabases()) names.push(`postgresql database ${name}`);
  }
  if (started.mariadb !== undefined) {
    for (const name of await started.mariadb.testDatabases()) names.push(`mariadb database ${name}`);
    for (const { user, host } of await started.mariadb.testUsers()) names.push(`mariadb user ${user}@${host}`);
  }
  if (started.mongo?.origin === "environment") {
    for (const name of await started.mongo.testDatabases()) names.push(`mongodb database ${name}`);
  }
  return names.filter((entry) => isTestName(nameOf(entry)));
}

/** The name at the end of an entry of {@link testNames}. */
function nameOf(entry: string): string {
  return entry.slice(entry.lastIndexOf(" ") + 1);
}

/** Drops every database and account whose name carries the run's tag. */
async function dropRunScratch(started: Started, tag: string): Promise<void> {
  const { postgres, mariadb } = started;
  if (postgres !== undefined) {
    for (const name of await postgres.testDatabases()) {
      if (madeByRun(name, tag)) await postgres.dropDatabase(name);
    }
  }
  if (mariadb !== undefined) {
    for (const name of await mariadb.testDatabases()) {
      if (madeByRun(name, tag)) await mariadb.dropDatabase(name);
    }
    for (const { user, host } of await mariadb.testUsers()) {
      if (madeByRun(user, tag)) await mariadb.dropUser(user, host);
    }
  }
  if (started.mongo?.origin === "environment") {
    for (const name of await started.mongo.testDatabases()) {
      if (madeByRun(name, tag)) await started.mongo.dropDatabase(name);
    }
  }
}

async function stopAll(started: Started): Promise<void> {
  // FerretDB first: it keeps its data in the PostgreSQL server.
  await started.mongo?.stop();
  await Promise.all([started.postgres?.stop(), started.mariadb?.stop(), started.s3?.stop(), started.gcs?.stop()]);
}
