import { setupServers } from "@hoard/test-harness/setup";

/** Starts (or finds) the PostgreSQL server the tests use; each test creates its own scratch databases, dropped at teardown. */
export default setupServers({ servers: ["postgres"] });
