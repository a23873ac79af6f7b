import type { Logger } from "@hoard/core";
import { type DriverSettingsBag, readDriverSettings } from "@hoard/core/plugin";
import { settings } from "./settings.js";

/** Options of the MariaDB driver. */
export interface MariadbDriverOptions {
  /**
   * `mariadb://user:password@host:port/database` (or `mysql://`). Without a database
   * (`mariadb://user:password@host:port`) the driver dumps every database. `?socket=/path`
   * connects through a Unix socket. The password reaches the tools through a private temporary
   * option file, never their command line.
   */
  url: string;
  /** Extra mariadb-dump arguments, after hoard's own so they can override them, e.g. `["--ignore-table=db.audit"]`. */
  dumpOptions?: string[];
  /** Extra mariadb client arguments for restores, e.g. `["--force"]`. */
  restoreOptions?: string[];
  /**
   * Dump every database with `--all-databases` (the `mysql` system database with its accounts
   * included) and restore such a dump as it is. Must agree with the URL: true needs a URL without
   * a database, false one with a database.
   * @default true when the URL names no database
   */
  allDatabases?: boolean;
  /**
   * Create the URL's database (`CREATE DATABASE`, server defaults) before a restore when it does
   * not exist.
   * @default true
   */
  createDatabase?: boolean;
  /**
   * Fail a dump whose output does not end with mariadb-dump's `-- Dump completed` line, which
   * catches a tool that was cut short but still exited 0.
   * @default true, unless dumpOptions turn comments off (`--compact`, `--skip-comments`)
   */
  verifyCompletion?: boolean;
  /** The dump program, a name looked up on PATH or a path. @default mariadb-dump, else mysqldump */
  dumpExecutable?: string;
  /** The client program for restores, a name looked up on PATH or a path. @default mariadb, else mysql */
  clientExecutable?: string;
  /**
   * How long to wait for the server to accept a connection and answer, in milliseconds (whole
   * seconds are used). The client gets `--connect-timeout`; mariadb-dump has no such option, so
   * when it has neither connected (its `--verbose` progress on stderr) nor written anything within
   * this time, the client asks the server, and the dump is stopped when that gets no answer
   * either. A host that never answers fails with UNREACHABLE.
   * @default 15_000
   */
  connectTimeoutMs?: number;
  logger?: Logger;
}

/** The driver's options for a URL and a settings bag (the registry's and the CLI's way in). */
export function optionsFromSettings(url: string, bag: DriverSettingsBag = {}): MariadbDriverOptions {
  const { common } = readDriverSettings(settings, bag);
  return { url, ...common };
}
