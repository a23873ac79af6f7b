import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough, type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { extract as extractTar } from "tar";
import { archiveError, decompressor, type Layer, layersOf } from "../codecs.js";
import type { RestoreInput } from "../driver.js";
import { type DecryptionOptions, decryptor } from "../encryption.js";
import { diskFullError, downloadError, HoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";
import type { Storage } from "../storage.js";
import { progressMeter } from "./progress.js";

/** How {@link openInput} reads a stored backup. */
export interface UnpackOptions {
  storage: Storage;
  key: string;
  /** `file`: download completely to the work directory first. */
  mode: "stream" | "file";
  workDirectory: string;
  logger?: Logger;
  signal?: AbortSignal;
  decryption?: DecryptionOptions;
  /** Sees the stored bytes as they are downloaded (e.g. a checksum meter); it must pass them on. */
  observe?: NodeJS.ReadWriteStream & Readable;
  /**
   * For an encrypted backup: download it to a file and decrypt it to nowhere first, so a tampered
   * or truncated ciphertext fails before anything reads the plaintext (for drivers whose restore
   * is not atomic). Implies `mode: "file"`.
   */
  authenticateFirst?: boolean;
}

/**
 * Downloads the object and undoes its encryption and compression layers right to left. A `.tar`
 * layer is extracted to a directory; a tar holding a single file is handed on as that file.
 */
export async function openInput(options: UnpackOptions): Promise<RestoreInput> {
  const { storage, key, workDirectory, logger, signal, decryption } = options;
  const layers = layersOf(key);
  const name = key.slice(key.lastIndexOf("/") + 1);
  const tarAt = layers.indexOf("tar");
  // Checked before downloading anything: the layers come from the name alone.
  if (tarAt > 0) {
    throw new HoardError("UNSUPPORTED_FORMAT", `${name}: compression inside a tar archive is not supported`);
  }
  const encrypted = layers.includes("age");
  const authenticate = encrypted && options.authenticateFirst === true;
  const mode = authenticate ? "file" : options.mode;
  const download = await storage.download(key, { signal });
  const downloaded = progressMeter(logger, "download");
  // Tell a failed read (the store, the network) from a failed write (the local disk) or a damaged archive.
  download.on("error", (error) => downloaded.meter.destroy(downloadError(error, storage.url, key)));
  // A driver that stops reading early must not leave the download (a file handle, an HTTP response) open.
  downloaded.meter.on("close", () => download.destroy());
  let source: Readable = download.pipe(downloaded.meter);
  if (options.observe) source = chain(source, options.observe, name);
  if (mode === "file") {
    const file = join(workDirectory, "download");
    try {
      await pipeline(source, createWriteStream(file, { mode: 0o600 }), { signal });
    } catch (error) {
      throw diskFullError(error, workDirectory, `downloading ${name}`) ?? downloadError(error, storage.url, key);
    }
    log(logger, "info", `downloaded ${downloaded.bytes()} bytes`);
    if (authenticate) {
      // age authenticates every 64 KiB chunk and the last one's position: read to the end, a
      // flipped, cut or appended byte fails here, before the plaintext goes anywhere.
      const nowhere = new Writable({ write: (_chunk, _encoding, done) => done() });
      const decrypting = decryptor(decryption, name);
      try {
        await pipeline(createReadStream(file), decrypting, nowhere, { signal });
      } catch (error) {
        throw archiveError(error, name);
      }
      log(logger, "info", `${name}: the whole ciphertext is authentic`);
    }
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
