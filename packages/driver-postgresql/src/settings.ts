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
  {
    name: "pgJobs",
    kind: "integer",
    minimum: 2,
    maximum: 64,
    help: "parallel jobs: dump with pg_dump --format=directory --jobs N (needs local disk for the whole dump; stored as .dump.tar) and restore directory backups with pg_restore --jobs N (not in one transaction)",
  },
]);
