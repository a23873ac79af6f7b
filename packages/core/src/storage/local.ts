import { randomBytes } from "node:crypto";
import { createWriteStream, type Dirent, type Stats } from "node:fs";
import { link, lstat, mkdir, open, readdir, readlink, rm, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import { HoardError } from "../errors.js";
import { checkKey } from "../naming.js";
import { byteCounter } from "../plugin/storage-streams.js";
import type { DownloadOptions, RequestOptions, Storage, StorageObject, SweepOptions, SweptItem, UploadOptions } from "../storage.js";
import { parseStorageUrl } from "../url.js";

const temporaryMarker = ".hoard-partial-";
/** `.hoard-partial-<random hex>-<name being written>` */
const temporaryName = /^\.hoard-partial-[0-9a-f]+-(.+)$/s;

export interface LocalStorageOptions {
  /** The directory that holds the objects; created on the first upload. */
  directory: string;
}

/** A file found under the storage: an object, or the temporary file of an upload writing `key`. */
interface Found {
  key: string;
  path: string;
  temporary: boolean;
}

/**
 * Storage in a local directory. Uploads are written under a temporary name beside the target
 * (`.hoard-partial-<random>-<name>`) and hard-linked to their real name when complete: a reader
 * never sees a partial file under a real name, and the link fails when the name exists, so an
 * existing object is never replaced (the directory's file system must support hard links). A
 * killed upload leaves its temporary file, which `sweep` removes.
 */
export function createLocalStorage(options: LocalStorageOptions): Storage {
  const root = parseStorageUrl(options.directory).path;
  const pathOf = (key: string) => {
    checkKey(key, "local storage");
    const path = join(root, ...key.split("/"));
    const inside = relative(root, path);
    // "" is the root itself (a/.., .), whose temporary file would be written beside the root.
    if (key.startsWith("/") || inside === "" || inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
      throw new HoardError("INVALID_ARGUMENT", `local storage: invalid key "${key}"`);
    }
    return path;
  };
  const partialPath = (path: string) =>
    join(dirname(path), `${temporaryMarker}${randomBytes(6).toString("hex")}-${path.slice(dirname(path).length + 1)}`);

  /**
   * What is wrong with the storage directory itself, when something is: it (or a folder above
   * it) is a file or a broken symbolic link. A directory that does not exist yet is not wrong: it
   * is created by the first upload. Only asked after a call failed, so it costs nothing otherwise.
   */
  async function rootProblem(): Promise<HoardError | undefined> {
    let path = root;
    for (;;) {
      let info: Stats;
      try {
        info = await lstat(path);
      } catch (error) {
        const parent = dirname(path);
        if (!isMissing(error) || parent === path) return undefined;
        path = parent;
        continue;
      }
      if (info.isDirectory()) return undefined;
      if (info.isSymbolicLink()) {
        const target = await stat(path).catch(() => undefined);
        if (!target) {
          const to = await readlink(path).catch(() => undefined);
          return new HoardError("INVALID_ARGUMENT", `local storage: ${path} is a broken symbolic link${to ? ` (to ${to})` : ""}`);
        }
        if (target.isDirectory()) return undefined;
        info = target;
      }
      return new HoardError(
        "INVALID_ARGUMENT",
        info.isFile() ? `local storage: ${path} is a file, not a directory` : `local storage: ${path} is not a directory`,
      );
    }
  }

  /** The error to report for a failed file operation on `key`, blaming the storage directory first. */
  async function explain(error: unknown, key: string): Promise<HoardError> {
    if (isMissing(error) || code(error) === "EEXIST") {
      const problem = await rootProblem();
      if (problem) return problem;
    }
    return mapFileError(error, key);
  }

  async function statKey(key: string, options: RequestOptions = {}): Promise<StorageObject | undefined> {
    checkSignal(options.signal, `stat of ${key}`);
    let info: Stats;
    try {
      info = await stat(pathOf(key));
    } catch (error) {
      if (!isMissing(error)) throw mapFileError(error, key);
      const problem = await rootProblem();
      if (problem) throw problem;
      return undefined;
    }
    return info.isFile() ? { key, size: info.size, lastModified: info.mtime } : undefined;
  }

  async function writeAtomically(
    key: string,
    signal: AbortSignal | undefined,
    write: (temporary: string) => Promise<void>,
  ): Promise<StorageObject> {
    checkSignal(signal, `writing ${key}`);
    const target = pathOf(key);
    try {
      await mkdir(dirname(target), { recursive: true });
    } catch (error) {
      if (!isMissing(error) && code(error) !== "EEXIST") throw mapFileError(error, key);
      const problem = await rootProblem();
      if (problem) throw problem;
      throw new HoardError("ALREADY_EXISTS", `local storage: cannot store ${key}: a file stands where one of its folders should be`, {
        cause: error,
      });
    }
    const temporary = partialPath(target);
    try {
      await write(temporary);
      checkSignal(signal, `writing ${key}`);
      await link(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => {});
      if (code(error) === "EEXIST") {
        throw new HoardError("ALREADY_EXISTS", `local storage: ${key} already exists; not overwriting it`, { cause: error });
      }
      if (["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"].includes(code(error) ?? "") && (error as NodeJS.ErrnoException).syscall === "link") {
        throw new HoardError(
          "STORAGE_FAILED",
          `local storage: the file system of ${root} does not support hard links, which hoard needs to store ${key} without replacing an existing file`,
          { cause: error },
        );
      }
      throw mapFileError(error, key);
    }
    // The object is in place; a temporary name that cannot be removed is left for sweep.
    await rm(temporary, { force: true }).catch(() => {});
    const written = await statKey(key);
    if (!written) throw new HoardError("STORAGE_FAILED", `local storage: ${key} vanished after writing`);
    return written;
  }

  /**
   * The files whose key starts with `prefix`, reading only the directory named by the prefix's
   * folder part (`a/b-` reads `a/` and, below it, only entries starting with `b-`). That
   * directory must be readable; sub-directories that cannot be read are skipped.
   */
  async function* walkPrefix(prefix: string, signal: AbortSignal | undefined): AsyncGenerator<Found> {
    checkSignal(signal, "listing");
    const slash = prefix.lastIndexOf("/");
    const folder = slash < 0 ? "" : prefix.slice(0, slash);
    const start = prefix.slice(slash + 1);
    if (folder && (folder.includes("\\") || folder.split("/").some((part) => part === "" || part === "." || part === ".."))) {
      throw new HoardError(
        "INVALID_ARGUMENT",
        `local storage: invalid prefix "${prefix}": use /-separated names without empty, . or .. parts`,
      );
    }
    const directory = folder ? join(root, ...folder.split("/")) : root;
    let entries: Dirent[];
    try {
      entries = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) {
        const problem = await rootProblem();
        if (problem) throw problem;
        return;
      }
      if (isDenied(error)) {
        throw new HoardError("ACCESS_DENIED", `local storage: cannot read the directory ${directory}: permission denied`, { cause: error });
      }
      throw mapFileError(error, directory);
    }
    yield* walkEntries(entries, directory, folder ? `${folder}/` : "", start, signal);
  }

  async function* walkEntries(
    entries: Dirent[],
    directory: string,
    keyBase: string,
    start: string,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Found> {
    for (const entry of entries) {
      checkSignal(signal, "listing");
      const path = join(directory, entry.name);
      if (entry.name.startsWith(temporaryMarker)) {
        const writing = temporaryName.exec(entry.name)?.[1];
        if (writing?.startsWith(start) && entry.isFile()) yield { key: `${keyBase}${writing}`, path, temporary: true };
        continue;
      }
      if (!entry.name.startsWith(start)) continue;
      if (entry.isDirectory()) {
        // A sub-directory that cannot be read (permissions, removed meanwhile) hides only itself.
        const inner = await readdir(path, { withFileTypes: true }).catch(() => undefined);
        if (inner) yield* walkEntries(inner, path, `${keyBase}${entry.name}/`, "", signal);
      } else if (entry.isFile()) {
        yield { key: `${keyBase}${entry.name}`, path, temporary: false };
      }
    }
  }

  return {
    url: pathToFileURL(root).toString(),
    scheme: "file",
    stat: statKey,
    async exists(key, options) {
      return (await statKey(key, options)) !== undefined;
    },
    async *list(prefix = "", options = {}) {
      for await (const found of walkPrefix(prefix, options.signal)) {
        if (found.temporary) continue;
        let info: Stats;
        try {
          info = await stat(found.path);
        } catch (error) {
          // Deleted while listing.
          if (isMissing(error)) continue;
          throw mapFileError(error, found.key);
        }
        if (info.isFile()) yield { key: found.key, size: info.size, lastModified: info.mtime };
      }
    },
    async upload(key: string, body: Readable, options: UploadOptions = {}) {
      let started = false;
      try {
        return await writeAtomically(key, options.signal, async (temporary) => {
          started = true;
          await pipeline(body, byteCounter(options.onProgress), createWriteStream(temporary, { flags: "wx", mode: 0o600 }), {
            signal: options.signal,
          });
        });
      } finally {
        // Refused before reading it: do not leave the producer waiting on a stream nobody reads.
        if (!started) body.destroy();
      }
    },
    async download(key: string, options: DownloadOptions = {}) {
      checkSignal(options.signal, `download of ${key}`);
      const path = pathOf(key);
      let handle: Awaited<ReturnType<typeof open>>;
      try {
        handle = await open(path, "r");
      } catch (error) {
        throw await explain(error, key);
      }
      if (!(await handle.stat()).isFile()) {
        await handle.close();
        throw new HoardError("NOT_FOUND", `local storage: ${key} does not exist (it is a folder)`);
      }
      return handle.createReadStream({ signal: options.signal });
    },
    async delete(key, options = {}) {
      checkSignal(options.signal, `delete of ${key}`);
      try {
        await rm(pathOf(key), { force: true });
      } catch (error) {
        throw await explain(error, key);
      }
    },
    async copy(sourceKey, targetKey, options = {}) {
      checkSignal(options.signal, `copy of ${sourceKey}`);
      const source = pathOf(sourceKey);
      await writeAtomically(targetKey, options.signal, async (temporary) => {
        let input: Awaited<ReturnType<typeof open>>;
        try {
          input = await open(source, "r");
        } catch (error) {
          const explained = await explain(error, sourceKey);
          throw explained.code === "NOT_FOUND"
            ? new HoardError("NOT_FOUND", `local storage: ${sourceKey} does not exist`, { cause: error })
            : explained;
        }
        await pipeline(input.createReadStream(), createWriteStream(temporary, { flags: "wx", mode: 0o600 }), { signal: options.signal });
      });
    },
    async sweep({ prefix = "", before, signal, keyMatches }: SweepOptions): Promise<SweptItem[]> {
      const swept: SweptItem[] = [];
      for await (const found of walkPrefix(prefix, signal)) {
        if (!found.temporary || (keyMatches && !keyMatches(found.key))) continue;
        const info = await lstat(found.path).catch(() => undefined);
        if (!info?.isFile() || info.mtime.getTime() >= before.getTime()) continue;
        checkSignal(signal, "sweep");
        try {
          await rm(found.path, { force: true });
        } catch (error) {
          throw mapFileError(error, found.path);
        }
        // The birth time is when the upload started, where the file system records one.
        const startedAt = info.birthtimeMs > 0 ? info.birthtime : info.mtime;
        swept.push({ key: found.key, kind: "temporary file", startedAt });
      }
      return swept;
    },
  };
}

function checkSignal(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new HoardError("ABORTED", `local storage: ${what} aborted`, { cause: signal.reason });
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function isMissing(error: unknown): boolean {
  return code(error) === "ENOENT" || code(error) === "ENOTDIR";
}

function isDenied(error: unknown): boolean {
  return code(error) === "EACCES" || code(error) === "EPERM";
}

function mapFileError(error: unknown, key: string): HoardError {
  if (HoardError.isInstance(error)) return error;
  if (isMissing(error)) return new HoardError("NOT_FOUND", `local storage: ${key} does not exist`, { cause: error });
  if (isDenied(error)) return new HoardError("ACCESS_DENIED", `local storage: permission denied for ${key}`, { cause: error });
  if (code(error) === "ENOSPC" || code(error) === "EDQUOT") {
    return new HoardError("DISK_FULL", `local storage: no space left on the device while writing ${key}`, { cause: error });
  }
  if ((error as Error).name === "AbortError") return new HoardError("ABORTED", `local storage: ${key}: aborted`, { cause: error });
  return new HoardError("STORAGE_FAILED", `local storage: ${key}: ${(error as Error).message}`, { cause: error });
}
