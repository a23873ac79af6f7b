import type { TestProject } from "vitest/node";
import { startS3 } from "../../../scripts/harness/index.ts";

/** What the tests get from `inject("s3")`: a running versitygw and its root credentials. */
export interface ProvidedS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

declare module "vitest" {
  interface ProvidedContext {
    s3: ProvidedS3;
  }
}

/** Starts one versitygw for the whole run; tests create their own buckets. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startS3();
  project.provide("s3", {
    endpoint: server.endpoint,
    region: server.region,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
  });
  return () => server.stop();
}
