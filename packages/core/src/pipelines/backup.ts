import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { create as createTar } from "tar";
import { compressionExtension, compressor } from "../codecs.js";
import type { Driver, DumpDescription, DumpOutput, Inventory } from "../driver.js";
import { type DecryptionOptions, describeEncryption, type EncryptionOptions, encryptor, isEncrypting } from "../encryption.js";
import { describeError, diskFullError, HoardError, isHoardError, toHoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";
import {
  type CompressionFormat,
  checksumMeter,
  compressionLevels,
  defaultCompression,
  defaultCompressionOf,
  hoardVersion,
  type Manifest,
  type ManifestCompression,
  manifestFormatVersion,
  manifestKey,
  serializeManifest,
} from "../manifest.js";
import { backupKey, validatePrefix } from "../naming.js";
import type { Storage, StorageObject } from "../storage.js";
import { progressMeter } from "./progress.js";
import { type VerifyResult, verify } from "./verify.js";
import { withWorkDirectory } from "./work-directory.js";

export type BackupMode = "stream" | "file";

export interface BackupOptions {
  driver: Driver;
  storage: Storage;
  /** Names are `<prefix>-<yyyyMMddHHmmss>.<ext>`; may contain `/` to use a sub-folder. @default "backup" */
  prefix?: string;
  /**
   * `stream`: dump -> compress -> upload with back-pressure, no temporary file, bounded memory.
   * `file`: dump to a temporary file, then upload it; needs disk as large as the compressed dump.
   * @default "stream"
   */
  mode?: BackupMode;
  /**
   * How the dump is compressed, which also names the object: `zstd` (`.dump.zst`, `.tar.zst`;
   * Node.js's own zstd where it has one, 22.15 and later, else the `zstd` program), `gzip`
   * (`.dump.gz`, `.tar.gz`) or `none` (`.dump`, `.tar`: for a dump that is compressed already).
   * Unset: `zstd`, except for a dump the driver says its tool compressed already
   * (`DumpOutput.compressed`, e.g. PostgreSQL's `--pg-jobs` directory dumps), which is stored as it
   * is (`none`). A compression named here is applied whatever the dump is.
   * @default "zstd", or "none" for a dump compressed already
   */
  compression?: CompressionFormat;
  /**
   * The level: zstd 1-19, gzip 0-9 (default 6); not allowed with `none`. A level alone names zstd.
   * Unset, zstd runs at level 3 with a minimum match of 6 bytes (`zstdDefaultMinMatch`), which
   * writes less than zstd 3 or gzip 6 does on a dump; a level given is zstd's level as it is.
   */
  compressionLevel?: number;
  /**
   * Blocks compressed at the same time, each on a thread of libuv's pool (see
   * parallel-compress.ts); 1 compresses on one thread as zlib's own stream does. Lower it to leave
   * cores to the database on the same machine. The output is a standard `.gz` or `.zst` either way.
   * @default the cores, but never all of libuv's thread pool (at most UV_THREADPOOL_SIZE - 1, 3 by default)
   */
  compressionThreads?: number;
  /** Encrypt the compressed dump in the age format; the name then ends in `.age`. */
  encryption?: EncryptionOptions;
  /**
   * Re-read the stored object after the upload and verify it (size and checksum against the
   * manifest, decryption, decompression and the driver's archive check); a failed verification
   * fails the backup and removes the object and its manifest. @default false
   */
  verify?: boolean;
  /**
   * Keys to verify the contents of an encrypted backup with (a passphrase backup uses its own
   * passphrase); without them only its size and checksum are checked.
   */
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
  /** The key of the manifest stored beside the backup (`<key>.manifest.json`). */
  manifestKey: string;
  /** The manifest as stored. */
  manifest: Manifest;
  /** What the verification found, with `verify`. */
  verification?: VerifyResult;
}

/**
 * Dumps the database and stores it compressed (and encrypted), then its manifest beside it. On
 * any failure the error is thrown and neither the object nor a manifest is left under the
 * backup's name: the manifest is written only after the object is complete, and when it cannot be
 * written (or, with `verify`, the verification fails) the object is deleted again.
 */
export async function backup(options: BackupOptions): Promise<BackupResult> {
  const { driver, storage, logger } = options;
  const mode = options.mode ?? "stream";
  if (mode !== "stream" && mode !== "file") {
    throw new HoardError("INVALID_ARGUMENT", `unknown mode "${String(mode)}": use stream or file`);
  }
  const prefix = validatePrefix(options.prefix ?? "backup");
  // Checked before anything runs; what an unnamed compression becomes depends on the dump.
  const named = namedCompression(options);
  const started = Date.now();
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) throw new HoardError("ABORTED", "backup aborted before it started");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const signal = controller.signal;
  try {
    return await withWorkDirectory(options.temporaryDirectory, async (workDirectory) => {
      const startedAt = new Date();
      const inspect = { signal, logger, workDirectory };
      const { description, contents, output } = await dumpAndAsk(driver, inspect, controller);
      const compression = compressionFor(named, output, driver, logger);
      const compressed = compressionExtension(compression.format);
      const packed = [driver.extension, ...(output.kind === "directory" ? ["tar"] : []), ...(compressed ? [compressed] : [])].join(".");
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
      const checksum = checksumMeter();
      const stored = await (mode === "stream"
        ? streamToStorage(output, key, storage, options, compression, signal, controller, checksum.meter)
        : fileToStorage(output, key, storage, options, compression, signal, workDirectory, controller, checksum.meter));
      const { size, sha256 } = checksum.result();
      // A store that reports no size (0) is taken at its word that the upload completed.
      if (stored.size !== size && stored.size !== 0) {
        await removeBackup(storage, [key], logger, "the store's size differs from what was sent");
        throw new HoardError(
          "STORAGE_FAILED",
          `${key}: ${storage.url} reports ${stored.size} bytes stored, but ${size} were sent; the object was removed`,
        );
      }
      const manifest: Manifest = {
        format: "hoard-manifest",
        formatVersion: manifestFormatVersion,
        hoardVersion: hoardVersion(),
        key,
        database: { kind: driver.name, url: driver.url, ...description },
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        object: { size, sha256 },
        compression,
        ...(isEncrypting(options.encryption) && { encryption: describeEncryption(options.encryption) }),
        ...(contents && { contents }),
      };
      const manifestName = await storeManifest(storage, key, manifest, logger);
      let verification: VerifyResult | undefined;
      if (options.verify) {
        const passphrase = options.encryption?.passphrase;
        const decryption = options.decryption ?? (passphrase === undefined ? undefined : { passphrase });
        try {
          verification = await verify({
            storage,
            key,
            manifest,
            driver,
            decryption,
            // Encrypted to public keys with no identity at hand: the stored bytes are checked, not the contents.
            checksumOnly: isEncrypting(options.encryption) && decryption === undefined,
            logger,
            signal,
            temporaryDirectory: workDirectory,
          });
        } catch (error) {
          await removeBackup(storage, [key, manifestName], logger, "its verification failed");
          throw new HoardError(
            HoardError.isInstance(error) && error.code !== "INTERNAL" ? error.code : "CORRUPT_ARCHIVE",
            `verification of the stored backup failed, so ${key} and its manifest were removed: ${describeError(error)}`,
            { cause: error },
          );
        }
      }
      const durationMs = Date.now() - started;
      logger?.event({ type: "backup-finished", key, size, durationMs });
      return { key, size, durationMs, manifestKey: manifestName, manifest, ...(verification && { verification }) };
    });
  } catch (error) {
    controller.abort();
    if (options.signal?.aborted) throw new HoardError("ABORTED", "backup aborted; nothing was stored", { cause: error });
    throw toHoardError(error, "INTERNAL", "backup failed");
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Starts the dump and asks the driver about the server and the contents at the same time: each
 * question is a connection of its own (a psql, a client), and asked one after the other before
 * the dump they added their time to every backup's (about 0.1 s for PostgreSQL).
 *
 * The answers are optional: a driver without the hook, or a failure of another kind, leaves the
 * field out of the manifest with a warning. But a question that fails because the server cannot be
 * reached, refuses the login or lacks the database fails the dump the same way: that is the
 * backup's one error (the first question's before the second's, whichever came first), said
 * without warnings about the same cause; the dump is stopped and nothing is stored.
 */
async function dumpAndAsk(
  driver: Driver,
  inspect: { signal: AbortSignal; logger: Logger | undefined; workDirectory: string },
  controller: AbortController,
): Promise<{ description: DumpDescription | undefined; contents: Inventory | undefined; output: DumpOutput }> {
  const { signal, logger } = inspect;
  const dumped = Promise.resolve().then(() => driver.dump({ signal, logger, workDirectory: inspect.workDirectory }));
  // Settled later; marked handled now, so a dump that fails while the questions run is not an unhandled rejection.
  dumped.catch(() => undefined);
  const [described, counted] = await Promise.allSettled([
    Promise.resolve().then(() => driver.describe?.(inspect)),
    Promise.resolve().then(() => driver.inventory?.(inspect)),
  ]);
  const fatal = [described, counted].find(
    (answer): answer is PromiseRejectedResult => answer.status === "rejected" && sharedWithTheDump(answer.reason, signal),
  );
  if (fatal) {
    controller.abort(fatal.reason);
    await dumped.then(destroyOutput, () => undefined);
    throw fatal.reason;
  }
  const answer = <T>(settled: PromiseSettledResult<T>, what: string): T | undefined => {
    if (settled.status === "fulfilled") return settled.value;
    log(logger, "warn", `${driver.name}: the manifest goes without ${what}: ${describeError(settled.reason)}`);
    return undefined;
  };
  const description = answer(described, "the server's and tool's versions");
  const contents = answer(counted, "the contents");
  return { description, contents, output: await dumped };
}

/** An abort, or a failure to reach the server, log in or find the database: the dump fails the same way. */
function sharedWithTheDump(error: unknown, signal: AbortSignal): boolean {
  return (
    signal.aborted ||
    isHoardError(error, "ABORTED") ||
    isHoardError(error, "UNREACHABLE") ||
    isHoardError(error, "UNAUTHENTICATED") ||
    isHoardError(error, "NOT_FOUND")
  );
}

/**
 * Stores the manifest beside the complete backup. When that fails, the backup is deleted again:
 * an object without a manifest would look like a backup of unknown origin, and one that was
 * never described must not pass for a good one.
 */
async function storeManifest(storage: Storage, key: string, manifest: Manifest, logger: Logger | undefined): Promise<string> {
  const name = manifestKey(key);
  const body = serializeManifest(manifest);
  try {
    await storage.upload(name, Readable.from([body]), { contentLength: body.length });
  } catch (error) {
    await removeBackup(storage, [key], logger, "its manifest could not be stored");
    throw toHoardError(error, "STORAGE_FAILED", `storing the manifest ${name} failed, so ${key} was removed`);
  }
  return name;
}

/** Deletes what a failed backup stored; a failure to delete is reported, not hidden. */
async function removeBackup(storage: Storage, keys: string[], logger: Logger | undefined, why: string): Promise<void> {
  for (const key of keys) {
    log(logger, "warn", `removing ${key}: ${why}`);
    try {
      await storage.delete(key);
    } catch (error) {
      log(
        logger,
        "warn",
        `could not remove ${key} from ${storage.url} (${describeError(error)}): delete it by hand, it is not a good backup`,
      );
    }
  }
}

function destroyOutput(output: DumpOutput): void {
  if (output.kind === "stream") output.stream.destroy();
}

/**
 * The compression and level the options name, checked (INVALID_ARGUMENT names the allowed values);
 * undefined when they name neither.
 */
function namedCompression(options: BackupOptions): ManifestCompression | undefined {
  const threads = options.compressionThreads;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new HoardError("INVALID_ARGUMENT", `invalid compression threads ${String(threads)}: use a whole number from 1 up`);
  }
  if (options.compression === undefined && options.compressionLevel === undefined) return undefined;
  const format = options.compression ?? defaultCompression;
  if (format === "none") {
    if (options.compressionLevel !== undefined) {
      throw new HoardError("INVALID_ARGUMENT", "a compression level needs a compression: none stores the dump as it is");
    }
    return { format };
  }
  const levels = Object.hasOwn(compressionLevels, format) ? compressionLevels[format] : undefined;
  if (!levels) throw new HoardError("INVALID_ARGUMENT", `unknown compression "${String(format)}": use gzip, zstd or none`);
  if (options.compressionLevel === undefined) return defaultCompressionOf(format);
  const level = options.compressionLevel;
  if (!Number.isInteger(level) || level < levels.min || level > levels.max) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `invalid ${format} level ${String(options.compressionLevel)}: use a whole number from ${levels.min} to ${levels.max}`,
    );
  }
  return { format, level };
}

/**
 * The compression the backup is stored with: the one named; else none for a dump its tool
 * compressed already (a second pass would cost time and save nothing), else the default.
 */
function compressionFor(
  named: ManifestCompression | undefined,
  output: DumpOutput,
  driver: Driver,
  logger: Logger | undefined,
): ManifestCompression {
  if (named) {
    if (output.compressed !== undefined && named.format !== "none") {
      log(
        logger,
        "info",
        `${driver.name}: the dump is compressed already (${output.compressed}); compressing it again with ${named.format}, as asked, saves little`,
      );
    }
    return named;
  }
  if (output.compressed !== undefined) {
    log(logger, "info", `${driver.name}: the dump is compressed already (${output.compressed}): stored without compressing it again`);
    return { format: "none" };
  }
  return defaultCompressionOf(defaultCompression);
}

/** The compressor, unless the backup is stored uncompressed. */
function compressionStage(compression: ManifestCompression, threads: number | undefined): NodeJS.ReadWriteStream[] {
  if (compression.format === "none") return [];
  const minMatch = compression.format === "zstd" ? compression.minMatch : undefined;
  return [compressor(compression.format, compression.level, threads, minMatch === undefined ? {} : { minMatch })];
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
  compression: ManifestCompression,
  signal: AbortSignal,
  controller: AbortController,
  checksum: NodeJS.ReadWriteStream,
): Promise<StorageObject> {
  const body = new PassThrough({ highWaterMark: 1024 * 1024 });
  const dumped = progressMeter(options.logger, "dump");
  const produce = pipeline(
    [
      dumpSource(output),
      dumped.meter,
      ...compressionStage(compression, options.compressionThreads),
      ...encryptionStage(options),
      checksum,
      body,
    ],
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
  compression: ManifestCompression,
  signal: AbortSignal,
  workDirectory: string,
  controller: AbortController,
  checksum: NodeJS.ReadWriteStream,
): Promise<StorageObject> {
  const file = join(workDirectory, key.replaceAll("/", "_"));
  const dumped = progressMeter(options.logger, "dump");
  try {
    await pipeline(
      [
        dumpSource(output),
        dumped.meter,
        ...compressionStage(compression, options.compressionThreads),
        ...encryptionStage(options),
        checksum,
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
