import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { describeError } from "../errors.js";
import { type Logger, log } from "../logger.js";

/** A file only its owner can read, in a private directory of its own; `remove` deletes both. */
export interface PrivateFile {
  path: string;
  /** Deletes the file and its directory; safe to call more than once, and concurrently. */
  remove(): Promise<void>;
}

/**
 * Writes a secret (a password, a connection string with one) for a tool to read: a file of mode
 * 0600 named `name`, in a fresh directory of mode 0700 under `parent` (the dump's or restore's work
 * directory), created with `wx` so nothing that was there is followed or reused. This is how a
 * secret reaches a tool without being on its command line, which every user of the machine can
 * read. MariaDB's `--defaults-extra-file`, the MongoDB tools' `--config`, PostgreSQL's service
 * file. When writing fails, the directory is removed before the error is thrown.
 */
export async function writePrivateFile(parent: string, prefix: string, name: string, content: string): Promise<PrivateFile> {
  const directory = await mkdtemp(join(parent, prefix.endsWith("-") ? prefix : `${prefix}-`));
  const path = join(directory, name);
  let removed: Promise<void> | undefined;
  const remove = () => {
    removed ??= rm(directory, { recursive: true, force: true });
    return removed;
  };
  try {
    await writeFile(path, content, { mode: 0o600, flag: "wx" });
  } catch (error) {
    await remove();
    throw error;
  }
  return { path, remove };
}

/**
 * Removes a private file once `stream` (a dump's output) closes, whichever way it ends; a failure
 * to remove it is logged as a warning naming `what` (`the temporary option file`), never thrown.
 */
export function removeWhenClosed(stream: Readable, file: Pick<PrivateFile, "remove">, logger: Logger | undefined, what: string): void {
  stream.once("close", () => {
    file.remove().catch((error: unknown) => log(logger, "warn", `could not remove ${what}: ${describeError(error)}`));
  });
}
