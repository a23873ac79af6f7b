import { defineSettings } from "@hoard/core/plugin";

/**
 * The MariaDB driver's settings. It has none of its own yet: it takes the common driver settings
 * (dump and restore options, `connectTimeoutMs` from `--timeout`); its other options
 * (`allDatabases`, `createDatabase`, `verifyCompletion`, the executables) are for library callers.
 */
export const settings = defineSettings("mariadb", "MariaDB", []);
