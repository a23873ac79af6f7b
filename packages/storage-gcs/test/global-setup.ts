import type { TestProject } from "vitest/node";
import { startGcs } from "../../../scripts/harness/index.ts";

declare module "vitest" {
  interface ProvidedContext {
    /** The fake-gcs-server every test file of this package shares; each test makes its own buckets. */
    gcs: { endpoint: string; projectId: string };
  }
}

/** Starts one fake-gcs-server for the package's tests and stops it when they are done. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startGcs();
  project.provide("gcs", { endpoint: server.endpoint, projectId: server.projectId });
  return () => server.stop();
}
