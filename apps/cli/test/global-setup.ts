import { setupServers } from "@hoard/test-harness/setup";

/** The CLI's end-to-end tests run against real PostgreSQL, MariaDB, FerretDB, versitygw (S3) and fake-gcs-server. */
export default setupServers({ servers: ["postgres", "mariadb", "mongo", "s3", "gcs"] });
