import type { Driver } from "../driver.js";
import type { DecryptionOptions } from "../encryption.js";
import { describeError, HoardError, toHoardError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Storage } from "../storage.js";
import { latestBackup } from "./list.js";
import { openInput } from "./unpack.js";
import { withWorkDirectory } from "./work-directory.js";

export interface RestoreOptions {
  driver: Driver;
  storage: Storage;
  /** The object to restore. Give either this or `latest`. */
  key?: string;
  /** Restore the newest backup with this prefix. */
  latest?: { prefix: string };
  /**
   * `stream`: download, unpack and restore in one pass (no temporary file unless a .tar needs one).
   * `file`: download to a temporary file first, so a flaky network cannot cut a restore midway.
   * @default "stream"
   */
  mode?: "stream" | "file";
  logger?: Logger;
  signal?: AbortSignal;
  temporaryDirectory?: string;
  /**
   * Restore into a database that already holds data, dropping and replacing the objects the
   * backup contains. Without it, a non-empty target fails with TARGET_NOT_EMPTY before anything
   * is changed. @default false
   */
  replace?: boolean;
  /** Keys for a backup encrypted in the age format (`.age`). */
  decryption?: DecryptionOptions;
}

export interface RestoreResult {
  key: string;
  durationMs: number;
}

/** Finds the backup, unpacks it by its extension chain, and hands it to the driver. Temporary files are always removed. */
export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const { storage, driver, logger, signal } = options;
  if (signal?.aborted) throw new HoardError("ABORTED", "restore aborted before it started; the database was not touched");
  const started = Date.now();
  const key = await resolveKey(storage, options.key, options.latest, signal, logger);
  logger?.event({ type: "restore-started", storage: storage.url, key, driver: driver.url });
  try {
    await withWorkDirectory(options.temporaryDirectory, async (workDirectory) => {
      const input = await openInput({
        storage,
        key,
        mode: options.mode ?? "stream",
        workDirectory,
        logger,
        signal,
        decryption: options.decryption,
        // A driver that may commit part of its input must not see a tampered or truncated ciphertext.
        authenticateFirst: driver.atomicRestore !== true,
      });
      await driver.restore(input, { signal, logger, workDirectory, replace: options.replace ?? false });
    });
  } catch (error) {
    if (signal?.aborted) {
      // The driver knows what state it left the database in ("may be partially restored", "rolled back"): keep its word.
      if (HoardError.isInstance(error) && error.code === "ABORTED") throw error;
      throw new HoardError("ABORTED", `restore of ${key} aborted (${describeError(error)})`, { cause: error });
    }
    throw toHoardError(error, "INTERNAL", `restore of ${key} failed`);
  }
  const durationMs = Date.now() - started;
  logger?.event({ type: "restore-finished", key, durationMs });
  return { key, durationMs };
}

/** The key of the backup to work on: the one given (which must exist), or the newest with `latest.prefix`. */
export async function resolveKey(
  storage: Storage,
  key: string | undefined,
  latest: { prefix: string } | undefined,
  signal: AbortSignal | undefined,
  logger: Logger | undefined,
  verb = "restore",
): Promise<string> {
  if (key !== undefined) {
    if (!(await storage.exists(key, { signal }))) {
      throw new HoardError("NOT_FOUND", `no backup ${key} in ${storage.url}`);
    }
    return key;
  }
  if (!latest) throw new HoardError("INVALID_ARGUMENT", `${verb} needs a backup key or latest`);
  const newest = await latestBackup(storage, latest.prefix, { signal, logger });
  if (!newest) {
    throw new HoardError("NOT_FOUND", `no backups named ${latest.prefix}-<timestamp>.* in ${storage.url}`);
  }
  return newest.key;
}
