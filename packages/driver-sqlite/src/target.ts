import { randomBytes } from "node:crypto";
import { chmod, chown, link, lstat, open, realpath, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { describeFound, type FoundObjects, HoardError, targetNotEmpty } from "@hoard/core/plugin";
import { type FailureContext, toSqliteError } from "./errors.js";

/** The file a restore writes, as found before anything changed. */
export interface RestoreTarget {
  /** The URL's file, or the file it links to: the restore replaces that one, never the link. */
  path: string;
  /** The path the URL names, for messages. */
  file: string;
  /** The mode, owner and group of the file that is there; undefined when there is none yet. */
  existing?: { mode: number; uid: number; gid: number };
}

export interface TargetCheck {
  replace: boolean;
  /** Runs sqlite3 with these arguments and returns its output. */
  query(args: string[]): Promise<string>;
  failure: FailureContext;
}

/** How every SQLite database file begins. */
const magic = Buffer.from("SQLite format 3\0", "latin1");

/**
 * Checks the target before anything changes: its directory exists; a file that is there is an
 * SQLite database, holds nothing unless `replace` (TARGET_NOT_EMPTY naming what it holds), and has
 * no journal or write-ahead log beside it, which would mean a program has it open (or crashed
 * while writing it) and would be applied to the restored file.
 */
export async function checkTarget(file: string, check: TargetCheck): Promise<RestoreTarget> {
  let path = file;
  let entry: Awaited<ReturnType<typeof lstat>>;
  try {
    entry = await lstat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") throw fileError(error, file);
    await checkDirectory(dirname(file));
    return { path, file };
  }
  if (entry.isSymbolicLink()) {
    path = await realpath(file).catch((error: unknown) => {
      throw new HoardError("INVALID_ARGUMENT", `sqlite: ${file} is a broken symbolic link`, { cause: error });
    });
  }
  const found = await stat(path);
  if (!found.isFile()) throw new HoardError("INVALID_ARGUMENT", `sqlite: ${file} is not a file`);
  if (found.size > 0) {
    const handle = await open(path, "r");
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(magic.length), 0, magic.length, 0);
      if (bytesRead < magic.length || !buffer.equals(magic)) {
        throw new HoardError("INVALID_ARGUMENT", `sqlite: ${file} is not an SQLite database; it was left as it is`);
      }
    } finally {
      await handle.close();
    }
    if (!check.replace) {
      const objects = parseObjects(
        await check.query(["-readonly", "-list", "-noheader", path, objectsQuery]).catch((error: unknown) => {
          throw toSqliteError(error, check.failure);
        }),
      );
      if (objects.length > 0) throw targetNotEmpty("sqlite", file, describeFound(objects));
    }
  }
  for (const suffix of ["-wal", "-journal"]) {
    const size = (await stat(`${path}${suffix}`).catch(() => undefined))?.size ?? 0;
    if (size > 0) {
      throw new HoardError(
        "TOOL_FAILED",
        `sqlite: ${file} is in use, or a program crashed while writing it (${basename(path)}${suffix} is there): close the programs that use it, or open it once with sqlite3 to recover it, and try again`,
      );
    }
  }
  return { path, file, existing: { mode: found.mode, uid: found.uid, gid: found.gid } };
}

async function checkDirectory(directory: string): Promise<void> {
  const found = await stat(directory).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new HoardError("NOT_FOUND", `sqlite: the directory ${directory} does not exist`);
    throw fileError(error, directory);
  });
  if (!found.isDirectory()) throw new HoardError("INVALID_ARGUMENT", `sqlite: ${directory} is not a directory`);
}

/** Tables, views, indexes and triggers, SQLite's own (`sqlite_*`) left out; names as hex, so any name survives the output. */
const objectsQuery = `SELECT type, hex(name) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
  ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'view' THEN 1 WHEN 'index' THEN 2 ELSE 3 END, name`;

const plurals: Record<string, string> = { index: "indexes" };

function parseObjects(output: string): FoundObjects[] {
  const found: Array<FoundObjects & { examples: string[] }> = [];
  for (const line of output.split("\n")) {
    const [kind, hex] = line.trim().split("|");
    if (!kind || hex === undefined) continue;
    let entry = found.find((candidate) => candidate.kind === kind);
    if (!entry) {
      entry = { kind, count: 0, examples: [], plural: plurals[kind] };
      found.push(entry);
    }
    entry.count += 1;
    if (entry.examples.length < 2) entry.examples.push(Buffer.from(hex, "hex").toString("utf8"));
  }
  return found;
}

/** A new, empty file beside the target for sqlite3 to restore into, and how to put it in the target's place. */
export interface TemporaryFile {
  path: string;
  /** Gives the file the target's mode (and owner, where allowed) and puts it in the target's place. */
  moveIntoPlace(): Promise<void>;
  /** Removes the file and what sqlite3 may have left beside it; safe after moveIntoPlace. */
  remove(): Promise<void>;
}

export async function prepareTemporaryFile(target: RestoreTarget): Promise<TemporaryFile> {
  const directory = dirname(target.path);
  const path = join(directory, `.${basename(target.path)}.hoard-restore-${randomBytes(6).toString("hex")}`);
  try {
    // Private while it is being written when it replaces a file whose mode is known; a new
    // database gets the mode sqlite3 itself would give it (0644 less the umask).
    await (await open(path, "wx", target.existing ? 0o600 : 0o644)).close();
  } catch (error) {
    throw fileError(error, directory);
  }
  return {
    path,
    async moveIntoPlace() {
      const { existing } = target;
      if (existing) {
        await chmod(path, existing.mode & 0o7777);
        if (process.getuid?.() === 0) await chown(path, existing.uid, existing.gid);
        await rename(path, target.path);
      } else {
        // link() never replaces: a file that appeared in the meantime is left alone.
        await link(path, target.path).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw fileError(error, directory);
          throw new HoardError("ALREADY_EXISTS", `sqlite: ${target.file} appeared while the restore ran; it was left as it is`);
        });
      }
      await syncDirectory(directory);
    },
    async remove() {
      await Promise.all(["", "-journal", "-wal", "-shm"].map((suffix) => rm(`${path}${suffix}`, { force: true })));
    },
  };
}

/** Makes the rename or link durable: it lives in the directory. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function fileError(error: unknown, path: string): HoardError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new HoardError("ACCESS_DENIED", `sqlite: cannot write in ${path} (${code})`, { cause: error });
  }
  if (code === "ENOSPC" || code === "EDQUOT") return new HoardError("DISK_FULL", `sqlite: no space left in ${path}`, { cause: error });
  return new HoardError("INTERNAL", `sqlite: ${path}: ${(error as Error).message}`, { cause: error });
}
