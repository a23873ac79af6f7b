import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { create as createTar } from "tar";
import type { Driver, DumpOutput } from "../driver.js";
import { type DecryptionOptions, type EncryptionOptions, encryptor, isEncrypting } from "../encryption.js";
import { diskFullError, HoardError, isHoardError, toHoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";
import { backupKey, validatePrefix } from "../naming.js";
import type { Storage, StorageObject } from "../storage.js";
import { progressMeter } from "./progress.js";
import { withWorkDirectory } from "./work-directory.js";

export type BackupMode = "stream" | "file";

export interface BackupOptions {
  driver: Driver;
  storage: Storage;
  /** Names are `<prefix>-<yyyyMMddHHmmss>.<ext>`; may contain `/` to use a sub-folder. @default "backup" */
  prefix?: string;
  /**
   * `stream`: dump -> gzip -> upload with back-pressure, no temporary file, bounded memory.
   * `file`: dump to a temporary file, then upload it; needs disk as large as the compressed dump.
   * @default "stream"
   */
  mode?: BackupMode;
  /** gzip level 0-9. @default 6 */
  compressionLevel?: number;
  /** Encrypt the compressed dump in the age format; the name then ends in `.age`. */
  encryption?: EncryptionOptions;
  /**
   * Re-read the stored object after the upload and verify it (size and checksum against the
   * manifest, and the archive's structure); a failed verification fails the backup.
   * (Being implemented: not acted on yet.) @default false
   */
  verify?: boolean;
  /** Keys to verify the contents of an encrypted backup with; without them only its checksum is checked. */
  decryption?: DecryptionOptions;
  logger?: Logger;
  signal?: AbortSignal;
  /** Where temporary files go. @default os.tmpdir() */
  temporaryDirectory?: string;
  /** The backup's time, for tests. @default new Date() */
  now?: Date;
}

export interface BackupResult {
  key: string;
  size: number;
  durationMs: number;
}

/**
 * Dumps the database and stores it compressed. On any failure the error is thrown and no object
 * is left under the backup's name.
 */
export async function backup(options: BackupOptions): Promise<BackupResult> {
  const { driver, storage, logger } = options;
  const mode = options.mode ?? "stream";
  if (mode !== "stream" && mode !== "file") {
    throw new HoardError("INVALID_ARGUMENT", `unknown mode "${String(mode)}": use stream or file`);
  }
  const prefix = validatePrefix(options.prefix ?? "backup");
  const level = options.compressionLevel ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `invalid compression level ${String(options.compressionLevel)}: use a whole number from 0 to 9`,
    );
  }
  const started = Date.now();
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) throw new HoardError("ABORTED", "backup aborted before it started");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const signal = controller.signal;
  try {
    return await withWorkDirectory(options.temporaryDirectory, async (workDirectory) => {
      const output = await driver.dump({ signal, logger, workDirectory });
      const packed = output.kind === "directory" ? `${driver.extension}.tar.gz` : `${driver.extension}.gz`;
      const extension = isEncrypting(options.encryption) ? `${packed}.age` : packed;
      const key = backupKey(prefix, options.now ?? new Date(), extension);
      // Best effort: a store may forbid looking up a missing key (S3 without s3:ListBucket answers 403).
      const taken = await storage.exists(key, { signal }).catch((error: unknown) => {
        if (isHoardError(error, "ACCESS_DENIED")) return false;
        throw error;
      });
      if (taken) {
        destroyOutput(output);
        throw new HoardError("ALREADY_EXISTS", `${key} already exists in ${storage.url}; not overwriting a backup`);
      }
      logger?.event({ type: "backup-started", driver: driver.url, storage: storage.url, key, mode });
      const stored = await (mode === "stream"
        ? streamToStorage(output, key, storage, options, signal, controller)
        : fileToStorage(output, key, storage, options, signal, workDirectory, controller));
      const durationMs = Date.now() - started;
      logger?.event({ type: "backup-finished", key, size: stored.size, durationMs });
      return { key, size: stored.size, durationMs };
    });
  } catch (error) {
    controller.abort();
    if (options.signal?.aborted) throw new HoardError("ABORTED", "backup aborted; nothing was stored", { cause: error });
    throw toHoardError(error, "INTERNAL", "backup failed");
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}

function destroyOutput(output: DumpOutput): void {
  if (output.kind === "stream") output.stream.destroy();
}

/** The age encryptor after compression, when the backup is encrypted. */
function encryptionStage(options: BackupOptions): NodeJS.ReadWriteStream[] {
  return isEncrypting(options.encryption) ? [encryptor(options.encryption)] : [];
}

function dumpSource(output: DumpOutput): Readable {
  if (output.kind === "stream") return output.stream;
  return createTar({ cwd: output.path, portable: true }, ["."]) as unknown as Readable;
}

async function streamToStorage(
  output: DumpOutput,
  key: string,
  storage: Storage,
  options: BackupOptions,
  signal: AbortSignal,
  controller: AbortController,
): Promise<StorageObject> {
  const body = new PassThrough({ highWaterMark: 1024 * 1024 });
  const dumped = progressMeter(options.logger, "dump");
  const produce = pipeline(
    [dumpSource(output), dumped.meter, createGzip({ level: options.compressionLevel ?? 6 }), ...encryptionStage(options), body],
    {
      signal,
    },
  );
  const store = storage.upload(key, body, { signal, onProgress: uploadProgress(options.logger) });
  return settle(produce, store, key, storage, options.logger, controller);
}

async function fileToStorage(
  output: DumpOutput,
  key: string,
  storage: Storage,
  options: BackupOptions,
  signal: AbortSignal,
  workDirectory: string,
  controller: AbortController,
): Promise<StorageObject> {
  const file = join(workDirectory, key.replaceAll("/", "_"));
  const dumped = progressMeter(options.logger, "dump");
  try {
    await pipeline(
      [
        dumpSource(output),
        dumped.meter,
        createGzip({ level: options.compressionLevel ?? 6 }),
        ...encryptionStage(options),
        createWriteStream(file, { mode: 0o600 }),
      ],
      { signal },
    );
  } catch (error) {
    throw diskFullError(error, workDirectory, "writing the dump to a temporary file") ?? error;
  }
  const { size } = await stat(file);
  log(options.logger, "info", `dumped ${dumped.bytes()} bytes, ${size} compressed; uploading`);
  const store = storage.upload(key, createReadStream(file), {
    signal,
    contentLength: size,
    onProgress: uploadProgress(options.logger),
  });
  return settle(Promise.resolve(), store, key, storage, options.logger, controller);
}

function uploadProgress(logger: Logger | undefined) {
  let reported = 0;
  return (bytes: number) => {
    const now = Date.now();
    if (now - reported < 1000) return;
    reported = now;
    logger?.event({ type: "progress", phase: "upload", bytes });
  };
}

/**
 * Waits for both the producing chain and the upload. The first failure wins (the other side only
 * fails because it was torn down), and if the upload somehow completed while the producer failed,
 * the object is deleted.
 */
async function settle(
  produce: Promise<void>,
  store: Promise<StorageObject>,
  key: string,
  storage: Storage,
  logger: Logger | undefined,
  controller: AbortController,
): Promise<StorageObject> {
  let firstError: unknown;
  const fail = (error: unknown) => {
    firstError ??= error;
    controller.abort();
  };
  produce.catch(fail);
  store.catch(fail);
  const [produced, stored] = await Promise.allSettled([produce, store]);
  if (produced.status === "fulfilled" && stored.status === "fulfilled") return stored.value;
  if (stored.status === "fulfilled") {
    log(logger, "warn", `removing ${key}: the dump failed after the upload completed`);
    await storage.delete(key);
  }
  throw firstError;
}
