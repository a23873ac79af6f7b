import { isAbsolute, resolve } from "node:path";
import { HoardError, type Logger } from "@hoard/core";
import { type DriverSettingsBag, readDriverSettings } from "@hoard/core/plugin";
import { settings } from "./settings.js";

/** Options of the SQLite driver. */
export interface SqliteDriverOptions {
  /**
   * The database file: `sqlite:///absolute/path/to/shop.db`, or `sqlite:relative/path/shop.db`,
   * resolved against the working directory when the driver is created. The path is
   * percent-decoded (`%20` is a space, `%3F` a `?`, `%23` a `#`, `%25` a `%`).
   */
  url: string;
  /**
   * How long sqlite3 waits for a lock that another program holds on the database file, in
   * milliseconds (its busy timeout), before it gives up with "database is locked".
   * @default 15_000
   */
  lockTimeoutMs?: number;
  /** The sqlite3 program, a name looked up on PATH or a path. @default sqlite3 */
  executable?: string;
  logger?: Logger;
}

/**
 * The absolute path of the database file a `sqlite:` URL names. INVALID_ARGUMENT for a URL with
 * a host, a query or a fragment, no path, or a bad percent-encoding.
 */
export function parseSqliteUrl(url: string): string {
  const match = /^sqlite:(.*)$/is.exec(url);
  if (!match) throw invalidUrl(url, "it does not start with sqlite:");
  let rest = match[1] ?? "";
  if (/[?#]/.test(rest)) throw invalidUrl(url, "it has a query or a fragment (write ? as %3F and # as %23 in a file name)");
  if (rest.startsWith("//")) {
    const slash = rest.indexOf("/", 2);
    const host = rest.slice(2, slash < 0 ? undefined : slash);
    if (host !== "" && host.toLowerCase() !== "localhost") {
      throw invalidUrl(url, `it names a host (${host}): SQLite databases are local files, use sqlite:///absolute/path`);
    }
    rest = slash < 0 ? "" : rest.slice(slash);
  }
  let path: string;
  try {
    path = decodeURIComponent(rest);
  } catch (error) {
    throw invalidUrl(url, "its path is badly percent-encoded (write % as %25)", error);
  }
  if (path === "" || path === "/") throw invalidUrl(url, "it names no file");
  if (path.includes("\0")) throw invalidUrl(url, "its path holds a NUL character");
  // Always absolute: sqlite3 would take `:memory:` or `file:...` as something else than a file,
  // and an argument starting with `-` as an option.
  return isAbsolute(path) ? resolve(path) : resolve(process.cwd(), path);
}

function invalidUrl(url: string, reason: string, cause?: unknown): HoardError {
  return new HoardError("INVALID_ARGUMENT", `sqlite: invalid database URL ${url}: ${reason}`, { cause });
}

/**
 * The driver's options for a URL and a settings bag (the registry's and the CLI's way in). The
 * common `connectTimeoutMs` (`--timeout`) is the lock timeout. Dump and restore options are
 * refused: sqlite3 takes no options that would change what `.dump` writes or how it is read back.
 */
export function optionsFromSettings(url: string, bag: DriverSettingsBag = {}): SqliteDriverOptions {
  const { common } = readDriverSettings(settings, bag);
  if (common.dumpOptions?.length || common.restoreOptions?.length) {
    throw new HoardError("INVALID_ARGUMENT", "sqlite: --dump-option and --restore-option are not supported: sqlite3 takes none");
  }
  return {
    url,
    logger: common.logger,
    ...(common.connectTimeoutMs !== undefined && { lockTimeoutMs: common.connectTimeoutMs }),
  };
}
