import { HoardError } from "@hoard/core";
import { describeError, secondsText } from "@hoard/core/plugin";

/** What a failure is about, for the messages. */
export interface FailureContext {
  /** The database file. */
  file: string;
  /** What was being done, for a failure without a better message: `dump of /srv/shop.db`. */
  doing: string;
  /** The lock timeout in force, for "database is locked". */
  lockTimeoutMs: number;
}

/**
 * sqlite3's last error line without its prefix: `Error: in prepare, database is locked (5)` gives
 * `database is locked (5)`, `Parse error near line 5: incomplete input` stays as it is.
 */
export function explainSqliteFailure(stderr: string): string | undefined {
  const line = stderr
    .split("\n")
    .map((text) => text.trim())
    .filter(Boolean)
    .at(-1);
  return line?.replace(/^Error:\s*/, "").replace(/^(?:in prepare|stepping),\s*/, "");
}

/**
 * The one converter from sqlite3's failures to HoardError, by SQLite's result codes and messages:
 * locked (SQLITE_BUSY) and damaged files, files that are no database, a full disk, and files that
 * may not be opened or written. `error` is what the kit's process helpers threw (TOOL_FAILED with
 * sqlite3's stderr as its detail) or the text of an error sqlite3 wrote into a dump.
 */
export function toSqliteError(error: unknown, context: FailureContext): HoardError {
  if (HoardError.isInstance(error) && error.code !== "TOOL_FAILED" && error.code !== "INTERNAL") {
    return error.message.startsWith("sqlite: ")
      ? error
      : new HoardError(error.code, `sqlite: ${error.message}`, { cause: error, detail: error.detail });
  }
  const text =
    typeof error === "string"
      ? error
      : ((HoardError.isInstance(error) && error.detail !== undefined ? explainSqliteFailure(error.detail) : undefined) ??
        describeError(error));
  const options = { cause: typeof error === "string" ? undefined : error, detail: HoardError.isInstance(error) ? error.detail : text };
  const { file } = context;
  if (/database (?:table )?is locked|\((?:5|6)\)$/.test(text)) {
    return new HoardError(
      "TOOL_FAILED",
      `sqlite: ${file} is locked by another program (waited ${secondsText(context.lockTimeoutMs)}); try again, or wait longer with --timeout`,
      options,
    );
  }
  if (/file is not a database|\(26\)$/.test(text)) {
    return new HoardError("INVALID_ARGUMENT", `sqlite: ${file} is not an SQLite database`, options);
  }
  if (/malformed|\(11\)$/.test(text)) {
    return new HoardError(
      "TOOL_FAILED",
      `sqlite: ${file} is damaged (${text}); check it with sqlite3 ${JSON.stringify(file)} "PRAGMA integrity_check"`,
      options,
    );
  }
  if (/database or disk is full|\(13\)$/.test(text)) {
    return new HoardError("DISK_FULL", `sqlite: ${context.doing} failed: no space left for ${file}`, options);
  }
  if (/unable to open|readonly database|permission denied|access permission|\((?:3|8|14|23)\)$/i.test(text)) {
    return new HoardError("ACCESS_DENIED", `sqlite: ${context.doing} failed: ${text}`, options);
  }
  return new HoardError("TOOL_FAILED", `sqlite: ${context.doing} failed: ${text}`, options);
}

/** How sqlite3's `.dump` reports an error, in a comment on its output: `/**** ERROR: (5) database is locked *****` and a slash. */
const dumpErrorPattern = /\/\*{4} ERROR: \((\d+)\) (.*?) \*{5}\//g;

/**
 * Checks the last bytes of a `.dump`: it ends with `COMMIT;` when it is whole. sqlite3 exits 0
 * even when the dump failed (a locked or damaged file, a file that is no database), and ends the
 * dump with `ROLLBACK; -- due to errors` instead; the error it wrote before that names the cause.
 */
export function checkDumpEnd(tail: Buffer, context: FailureContext): HoardError | undefined {
  const text = tail.toString("utf8");
  if (/(?:^|\n)COMMIT;\n*$/.test(text)) return undefined;
  const reported = [...text.matchAll(dumpErrorPattern)].at(-1);
  if (reported) return toSqliteError(`${reported[2]} (${reported[1]})`, context);
  if (/(?:^|\n)ROLLBACK; -- due to errors\n*$/.test(text)) {
    return new HoardError("TOOL_FAILED", `sqlite: sqlite3 reported errors during the ${context.doing}; nothing was stored`);
  }
  return new HoardError(
    "TOOL_FAILED",
    `sqlite: sqlite3 exited successfully, but its ${context.doing} does not end with COMMIT: it is incomplete and was not stored`,
  );
}
