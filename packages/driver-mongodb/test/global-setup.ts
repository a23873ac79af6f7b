import { setupServers } from "@hoard/test-harness/setup";

/**
 * Starts the MongoDB-compatible server the tests use: FerretDB v1.24.2 on the machine's PostgreSQL,
 * or the server in HOARD_TEST_MONGODB_URL. Each test creates its own databases on it. Every run
 * tests both engines, so the setup fails, saying how to build them, when mongodump and mongorestore
 * are missing: the tools-path tests pass their paths to the driver with engine "tools"; the others
 * force engine "builtin", so neither depends on what PATH holds.
 */
export default setupServers({ servers: ["mongo"], mongoTools: true });
