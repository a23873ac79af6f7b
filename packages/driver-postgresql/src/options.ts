import type { Logger } from "@hoard/core";
import { type DriverSettingsBag, readDriverSettings } from "@hoard/core/plugin";
import { settings } from "./settings.js";

/** Options of the PostgreSQL driver. */
export interface PostgresDriverOptions {
  /**
   * `postgresql://user:password@host:port/database?sslmode=...`. The password (in the user
   * information or as `?password=`) is handed to the tools as PGPASSWORD in their environment,
   * and `?sslpassword=` through a private temporary service file, never on their command line.
   * Without a password, the tools' usual sources apply (PGPASSWORD, ~/.pgpass, peer or trust
   * authentication).
   */
  url: string;
  /** Extra pg_dump arguments, e.g. `["--exclude-table=audit_log"]`. */
  dumpOptions?: string[];
  /** Extra pg_restore or psql arguments, e.g. `["--no-owner", "--no-acl"]` for pg_restore. */
  restoreOptions?: string[];
  /**
   * Directory holding the pg_dump, pg_restore and psql to use (`--pg-bin-dir`), and no others.
   * Without it, hoard asks the server its version and picks from the installed tools (each
   * directory of PATH, `/usr/lib/postgresql/<major>/bin`, `/usr/pgsql-<major>/bin`): for a dump,
   * the server's own major, else the nearest newer one (pg_dump refuses newer servers); for a
   * restore, one that reads the archive, preferring the server's major.
   */
  binDirectory?: string;
  /**
   * Parallel jobs (`--pg-jobs`, at least 2). A dump runs `pg_dump --format=directory --jobs=N`
   * into the work directory (the whole dump, compressed per file by pg_dump, is on local disk
   * before it is stored; the object is a `.dump.tar`), and a restore of a directory backup runs
   * `pg_restore --jobs=N`, which cannot run in one transaction: a failure leaves the database
   * partially restored. Without it: a single custom-format stream, restored in one transaction.
   */
  jobs?: number;
  /**
   * How long the tools wait for the server to accept a connection and answer, in milliseconds
   * (PGCONNECT_TIMEOUT, whole seconds, at least 2). A host that never answers fails with
   * UNREACHABLE. A `connect_timeout` in the URL takes precedence.
   * @default 15_000
   */
  connectTimeoutMs?: number;
  logger?: Logger;
}

/** The driver's options for a URL and a settings bag (the registry's and the CLI's way in). */
export function optionsFromSettings(url: string, bag: DriverSettingsBag = {}): PostgresDriverOptions {
  const { common, values } = readDriverSettings(settings, bag);
  const binDirectory = values.pgBinDir as string | undefined;
  const jobs = values.pgJobs as number | undefined;
  return { url, ...common, ...(binDirectory !== undefined && { binDirectory }), ...(jobs !== undefined && { jobs }) };
}
