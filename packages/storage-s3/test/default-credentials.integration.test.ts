import { Readable } from "node:stream";
import { afterEach, expect, inject, it } from "vitest";
import { createStorageFromUrl } from "../src/index.ts";
import { createBucket } from "./helpers.ts";

// This file runs in its own worker, so changing process.env here touches no other test.
const saved = { ...process.env };

afterEach(() => {
  for (const name of [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
  ]) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

it("takes credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY through the SDK's default chain, and us-east-1 when no region is set", async () => {
  const s3 = inject("s3");
  process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
  delete process.env.AWS_REGION;
  delete process.env.AWS_PROFILE;
  // No shared files: the region chain must fall back to us-east-1, versitygw's region.
  process.env.AWS_CONFIG_FILE = "/nonexistent/aws-config";
  process.env.AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/aws-credentials";
  const bucket = await createBucket();
  const storage = createStorageFromUrl(`s3://${bucket}/env`, { s3Endpoint: s3.endpoint });
  await storage.upload("from-env.txt", Readable.from([Buffer.from("environment credentials")]));
  expect((await storage.stat("from-env.txt"))?.size).toBe(23);
});
