import type { TestProject } from "vitest/node";
import { requireMongoTools, startMongo, startPostgres } from "../../../scripts/harness/index.ts";

declare module "vitest" {
  interface ProvidedContext {
    mongo: { url: string };
    /** mongodump and mongorestore built by scripts/install-tools.sh, given to the driver as mongodumpPath/mongorestorePath. */
    mongoTools: { mongodump: string; mongorestore: string };
  }
}

/**
 * Starts the MongoDB-compatible server the tests use: FerretDB v1.24.2 on the machine's PostgreSQL,
 * or the server in HOARD_TEST_MONGODB_URL. Each test creates its own databases on it. The tools-path
 * tests pass the tools' paths to the driver with engine "tools"; the others force engine "builtin",
 * so neither depends on what PATH holds.
 */
export default async function setup(project: TestProject) {
  // Every run tests both engines: fail here, saying how to build them, when the tools are missing.
  project.provide("mongoTools", requireMongoTools());
  const postgres = await startPostgres();
  const mongo = await startMongo(postgres);
  project.provide("mongo", { url: mongo.url });
  return async () => {
    await mongo.stop();
    await postgres.stop();
  };
}
