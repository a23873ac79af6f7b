import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { extract as extractTar } from "tar";
import { archiveError, decompressor, type Layer, layersOf } from "../codecs.js";
import type { Driver, RestoreInput } from "../driver.js";
import { type DecryptionOptions, decryptor } from "../encryption.js";
import { describeError, diskFullError, downloadError, HoardError, toHoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";
import type { Storage } from "../storage.js";
import { latestBackup } from "./list.js";
import { progressMeter } from "./progress.js";
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
  const key = await resolveKey(options);
  logger?.event({ type: "restore-started", storage: storage.url, key, driver: driver.url });
  try {
    await withWorkDirectory(options.temporaryDirectory, async (workDirectory) => {
      const input = await openInput(storage, key, options.mode ?? "stream", workDirectory, logger, signal, options.decryption);
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

async function resolveKey(options: RestoreOptions): Promise<string> {
  if (options.key !== undefined) {
    if (!(await options.storage.exists(options.key, { signal: options.signal }))) {
      throw new HoardError("NOT_FOUND", `no backup ${options.key} in ${options.storage.url}`);
    }
    return options.key;
  }
  if (!options.latest) throw new HoardError("INVALID_ARGUMENT", "restore needs a backup key or latest");
  const newest = await latestBackup(options.storage, options.latest.prefix, { signal: options.signal, logger: options.logger });
  if (!newest) {
    throw new HoardError("NOT_FOUND", `no backups named ${options.latest.prefix}-<timestamp>.* in ${options.storage.url}`);
  }
  return newest.key;
}

/**
 * Downloads the object and undoes its compression layers right to left. A `.tar` layer is
 * extracted to a directory; a tar holding a single file is handed on as that file.
 */
async function openInput(
  storage: Storage,
  key: string,
  mode: "stream" | "file",
  workDirectory: string,
  logger: Logger | undefined,
  signal: AbortSignal | undefined,
  decryption: DecryptionOptions | undefined,
): Promise<RestoreInput> {
  const layers = layersOf(key);
  const name = key.slice(key.lastIndexOf("/") + 1);
  const tarAt = layers.indexOf("tar");
  // Checked before downloading anything: the layers come from the name alone.
  if (tarAt > 0) {
    throw new HoardError("UNSUPPORTED_FORMAT", `${name}: compression inside a tar archive is not supported`);
  }
  const download = await storage.download(key, { signal });
  const downloaded = progressMeter(logger, "download");
  // Tell a failed read (the store, the network) from a failed write (the local disk) or a damaged archive.
  download.on("error", (error) => downloaded.meter.destroy(downloadError(error, storage.url, key)));
  // A driver that stops reading early must not leave the download (a file handle, an HTTP response) open.
  downloaded.meter.on("close", () => download.destroy());
  let source: Readable = download.pipe(downloaded.meter);
  if (mode === "file") {
    const file = join(workDirectory, "download");
    try {
      await pipeline(source, createWriteStream(file, { mode: 0o600 }), { signal });
    } catch (error) {
      throw diskFullError(error, workDirectory, `downloading ${name}`) ?? downloadError(error, storage.url, key);
    }
    log(logger, "info", `downloaded ${downloaded.bytes()} bytes`);
    source = createReadStream(file);
  }
  const compressions = layers.slice(tarAt + 1).reverse() as Array<Exclude<Layer, "tar">>;
  let stream = source;
  for (const layer of compressions) stream = chain(stream, layer === "age" ? decryptor(decryption, name) : decompressor(layer), name);
  if (tarAt < 0) {
    // A failure may come while the driver is still preparing; it sees it through the stream's
    // errored state (finished()/pipeline() report it), so an early 'error' must not crash the process.
    stream.on("error", () => {});
    return { kind: "stream", stream };
  }
  const directory = join(workDirectory, "unpacked");
  await mkdir(directory);
  try {
    await pipeline(stream, extractTar({ cwd: directory, strict: true, preservePaths: false }), { signal });
  } catch (error) {
    throw diskFullError(error, directory, `unpacking ${name}`) ?? archiveError(error, name);
  }
  const entries = await readdir(directory, { withFileTypes: true });
  if (entries.length === 1 && entries[0]?.isFile()) {
    const path = join(directory, entries[0].name);
    return { kind: "stream", stream: createReadStream(path), path };
  }
  return { kind: "directory", path: directory };
}

/**
 * Pipes `source` through `transform`; an error on either side fails the output as
 * CORRUPT_ARCHIVE. (A decompressor reports truncation from its flush, after its writable side
 * finished, so errors are watched for the streams' whole life, not just until the data is written.)
 */
function chain(source: Readable, transform: NodeJS.ReadWriteStream & Readable, name: string): Readable {
  const output = new PassThrough();
  const fail = (error: unknown) => {
    output.destroy(archiveError(error, name));
    source.destroy();
    transform.destroy();
  };
  source.on("error", fail);
  transform.on("error", fail);
  output.on("close", () => {
    if (!output.readableEnded) {
      source.destroy();
      transform.destroy();
    }
  });
  source.pipe(transform).pipe(output);
  return output;
}
