import { describeStorageContract } from "@hoard/core/testing";
import { createGcsStorage } from "../src/index.ts";
import { createBucket, emulator } from "./emulator.ts";

// The shared suite, against fake-gcs-server: each storage gets a fresh bucket and lives under a prefix, so keys are
// shown to be relative to it.
describeStorageContract("gcs", {
  async create() {
    return createGcsStorage({ bucket: await createBucket(), prefix: "some/prefix", apiEndpoint: emulator().endpoint });
  },
  async createAnother() {
    return createGcsStorage({ bucket: await createBucket(), prefix: "other/prefix", apiEndpoint: emulator().endpoint });
  },
});
