import { setupServers } from "@hoard/test-harness/setup";

/** Starts one fake-gcs-server for the package's tests and stops it when they are done; each test makes its own buckets. */
export default setupServers({ servers: ["gcs"] });
