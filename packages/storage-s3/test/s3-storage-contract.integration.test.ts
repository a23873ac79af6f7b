import { describeStorageContract } from "@hoard/core/testing";
import { createS3Storage } from "../src/index.ts";
import { connection, createBucket } from "./helpers.ts";

describeStorageContract("s3", {
  create: async () => createS3Storage({ ...connection(), bucket: await createBucket(), prefix: "some/prefix" }),
  createAnother: async () => createS3Storage({ ...connection(), bucket: await createBucket() }),
});
