import { setupServers } from "@hoard/test-harness/setup";

/** Starts (or finds) the MariaDB server the tests use; each test file creates its own scratch databases and accounts, dropped at teardown. */
export default setupServers({ servers: ["mariadb"] });
