import { defineSettings } from "@hoard/core/plugin";

/**
 * The PostgreSQL driver's settings, besides the common ones (dump and restore options,
 * `connectTimeoutMs` from `--timeout`); everything else goes in the URL (`?sslmode=`,
 * `?connect_timeout=`, ...).
 */
export const settings = defineSettings("postgresql", "PostgreSQL", [
  {
    name: "pgBinDir",
    kind: "string",
    help: "directory of the pg_dump, pg_restore and psql to use (default: the installed ones that match the server, from PATH and /usr/lib/postgresql/<major>/bin)",
  },
]);
