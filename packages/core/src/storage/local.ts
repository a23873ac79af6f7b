import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { copyFile, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import { HoardError } from "../errors.js";
import type { DownloadOptions, Storage, StorageObject, UploadOptions } from "../storage.js";
import { parseStorageUrl } from "../url.js";

const temporaryMarker = ".hoard-partial-";

export interface LocalStorageOptions {
  /** The directory that holds the objects; created on the first upload. */
  directory: string;
}

/**
 * Storage in a local directory. Uploads are written under a temporary name beside the target and
 * renamed into place when complete, so a reader never sees a partial file under a real name.
 */
export function createLocalStorage(options: LocalStorageOptions): Storage {
  const root = parseStorageUrl(options.directory).path;
  const pathOf = (key: string) => {
    const path = join(root, ...key.split("/"));
    const inside = relative(root, path);
    // "" is the root itself (a/.., .), whose temporary file would be written beside the root.
    if (!key || key.startsWith("/") || inside === "" || inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
      throw new HoardError("INVALID_ARGUMENT", `invalid key "${key}"`);
    }
    return path;
  };
  const partialPath = (path: string) =>
    join(dirname(path), `${temporaryMarker}${randomBytes(6).toString("hex")}-${path.slice(dirname(path).length + 1)}`);

  async function statKey(key: string): Promise<StorageObject | undefined> {
    try {
      const info = await stat(pathOf(key));
      return info.isFile() ? { key, size: info.size, lastModified: info.mtime } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw mapFileError(error, key);
    }
  }

  async function writeAtomically(key: string, write: (temporary: string) => Promise<void>): Promise<StorageObject> {
    const target = pathOf(key);
    try {
      await mkdir(dirname(target), { recursive: true });
    } catch (error) {
      throw mapFileError(error, key);
    }
    const temporary = partialPath(target);
    try {
      await write(temporary);
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true });
      throw mapFileError(error, key);
    }
    const written = await statKey(key);
    if (!written) throw new HoardError("STORAGE_FAILED", `local storage: ${key} vanished after writing`);
    return written;
  }

  return {
    url: pathToFileURL(root).toString(),
    scheme: "file",
    stat: statKey,
    async exists(key) {
      return (await statKey(key)) !== undefined;
    },
    async *list(prefix = "") {
      for await (const path of walk(root)) {
        const key = relative(root, path).split(sep).join("/");
        if (key.startsWith(prefix)) {
          const found = await statKey(key);
          if (found) yield found;
        }
      }
    },
    upload(key: string, body: Readable, options: UploadOptions = {}) {
      return writeAtomically(key, async (temporary) => {
        let bytes = 0;
        if (options.onProgress) {
          body.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            options.onProgress?.(bytes);
          });
        }
        await pipeline(body, createWriteStream(temporary, { flags: "wx", mode: 0o600 }), { signal: options.signal });
      });
    },
    async download(key: string, options: DownloadOptions = {}) {
      try {
        const handle = await open(pathOf(key), "r");
        return handle.createReadStream({ signal: options.signal });
      } catch (error) {
        throw mapFileError(error, key);
      }
    },
    async delete(key) {
      try {
        await rm(pathOf(key), { force: true });
      } catch (error) {
        throw mapFileError(error, key);
      }
    },
    async copy(sourceKey, targetKey) {
      const source = pathOf(sourceKey);
      await writeAtomically(targetKey, (temporary) =>
        copyFile(source, temporary).catch((error: unknown) => {
          throw isMissing(error) ? new HoardError("NOT_FOUND", `local storage: ${sourceKey} does not exist`, { cause: error }) : error;
        }),
      );
    },
  };
}

async function* walk(directory: string): AsyncGenerator<string> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(directory, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) return;
    throw mapFileError(error, directory);
  }
  for (const entry of entries) {
    if (entry.name.startsWith(temporaryMarker)) continue;
    const path = join(directory, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function mapFileError(error: unknown, key: string): HoardError {
  if (HoardError.isInstance(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (isMissing(error)) return new HoardError("NOT_FOUND", `local storage: ${key} does not exist`, { cause: error });
  if (code === "EACCES" || code === "EPERM") {
    return new HoardError("ACCESS_DENIED", `local storage: permission denied for ${key}`, { cause: error });
  }
  if ((error as Error).name === "AbortError") return new HoardError("ABORTED", "upload aborted", { cause: error });
  return new HoardError("STORAGE_FAILED", `local storage: ${key}: ${(error as Error).message}`, { cause: error });
}
