import { setupServers } from "@hoard/test-harness/setup";

/** Starts one versitygw for the whole run; tests create their own buckets. */
export default setupServers({ servers: ["s3"] });
