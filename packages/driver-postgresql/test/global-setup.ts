import type { TestProject } from "vitest/node";
import { startPostgres } from "../../../scripts/harness/index.ts";

declare module "vitest" {
  interface ProvidedContext {
    postgres: { url: string };
  }
}

/** Starts (or finds) the PostgreSQL server the tests use; databases are created per test. */
export default async function setup(project: TestProject) {
  const postgres = await startPostgres();
  project.provide("postgres", { url: postgres.url });
  return () => postgres.stop();
}
