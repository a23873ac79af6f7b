import type { TestProject } from "vitest/node";
import { startMongo, startPostgres } from "../../../scripts/harness/index.ts";

declare module "vitest" {
  interface ProvidedContext {
    mongo: { url: string };
  }
}

/**
 * Starts the MongoDB-compatible server the tests use: FerretDB v1.24.2 on the machine's PostgreSQL,
 * or the server in HOARD_TEST_MONGODB_URL. Each test creates its own databases on it.
 */
export default async function setup(project: TestProject) {
  const postgres = await startPostgres();
  const mongo = await startMongo(postgres);
  project.provide("mongo", { url: mongo.url });
  return async () => {
    await mongo.stop();
    await postgres.stop();
  };
}
