import { HoardError } from "@hoard/core";
import { noAnswerError } from "@hoard/core/plugin";

/** Turns the usual PostgreSQL tool failures into a message a person can act on (core's `explainFailure`). */
export function explainPostgresFailure(stderr: string): string | undefined {
  const line = (pattern: RegExp) =>
    stderr
      .split("\n")
      .find((text) => pattern.test(text))
      ?.trim();
  const authentication = line(/password authentication failed|no password supplied|authentication failed/i);
  if (authentication) return `authentication failed: check the user and password in the URL (${authentication})`;
  const missing = line(/database ".*" does not exist/i);
  if (missing) return missing.replace(/^.*?(database ".*" does not exist).*$/i, "$1");
  const refused = line(/could not connect|Connection refused|could not translate host name/i);
  if (refused) return `cannot reach the server: ${refused}`;
  const versionMismatch = line(/server version mismatch/i);
  if (versionMismatch) return `${versionMismatch}: use client tools at least as new as the server`;
  const firstError = line(/\bERROR:|\berror:/);
  if (!firstError) return undefined;
  const cleaned = firstError.replace(/^(pg_restore|pg_dump|psql)(:[^:]*:\d+)?:\s*(error:\s*)?/, "").replace(/\s+/g, " ");
  if (/already exists/.test(cleaned)) return `${cleaned} (restore into an empty database, or use --replace)`;
  return cleaned;
}

/**
 * Turns libpq's "timeout expired" into UNREACHABLE naming the host (as libpq names it) and the
 * timeout; any other error is returned as it is.
 */
export function connectTimeoutFailure(error: unknown, fallbackAddress: string, timeoutSeconds: number): unknown {
  if (!HoardError.isInstance(error) || error.code === "ABORTED" || !error.detail || !/failed: timeout expired/.test(error.detail)) {
    return error;
  }
  const tcp = /connection to server at "([^"]+)"(?: \([^)]*\))?, port (\d+) failed: timeout expired/.exec(error.detail);
  const socket = /connection to server on socket "([^"]+)" failed: timeout expired/.exec(error.detail);
  const address = tcp ? `${tcp[1]}:${tcp[2]}` : (socket?.[1] ?? fallbackAddress);
  return noAnswerError("postgresql", address, timeoutSeconds * 1000, error);
}

/** What a failed restore had done when it failed. */
export type RestorePhase = "checking" | "transaction" | "parallel" | "cluster";

/**
 * Says what a failed restore left behind. Custom, tar, directory and plain SQL restores run in one
 * transaction, so a failure or an abort leaves the database unchanged; a cluster script cannot, and
 * restoreCluster says so itself; a failure while checking the target changed nothing.
 */
export function restoreFailure(error: unknown, database: string, phase: RestorePhase): unknown {
  if (!HoardError.isInstance(error) || phase === "cluster") return error;
  if (phase === "parallel") {
    const what = error.code === "ABORTED" ? `postgresql: restore into ${database} aborted` : error.message;
    return new HoardError(
      error.code,
      `${what}; pg_restore --jobs does not run in one transaction, so ${database} may be partially restored`,
      {
        cause: error,
        detail: error.detail,
      },
    );
  }
  if (error.code === "ABORTED") {
    const message =
      phase === "transaction"
        ? `postgresql: restore into ${database} aborted; it ran in one transaction, which was rolled back, so the database was left unchanged`
        : `postgresql: restore into ${database} aborted before it started; the database was not touched`;
    return new HoardError("ABORTED", message, { cause: error, detail: error.detail });
  }
  if (phase === "checking" || error.code === "UNREACHABLE") return error;
  return new HoardError(error.code, `${error.message}; the restore ran in one transaction, so the database was left unchanged`, {
    cause: error,
    detail: error.detail,
  });
}

/** A cluster script's failure: databases and roles it created may be partially restored. */
export function clusterRestoreFailure(error: unknown): unknown {
  if (!HoardError.isInstance(error)) return error;
  const what = error.code === "ABORTED" ? "postgresql: restore of a cluster dump aborted" : error.message;
  return new HoardError(error.code, `${what}; databases and roles it created may be partially restored`, {
    cause: error,
    detail: error.detail,
  });
}
