import { defineSettings } from "@hoard/core/plugin";

/**
 * The SQLite driver's settings. It has none of its own: the database is a file named by the URL,
 * and the common `connectTimeoutMs` (`--timeout`) is how long sqlite3 waits for a lock that
 * another program holds on that file.
 */
export const settings = defineSettings("sqlite", "SQLite", []);
