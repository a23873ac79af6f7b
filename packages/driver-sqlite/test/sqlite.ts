import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll } from "vitest";

const run = promisify(execFile);

/** Runs SQL on a database file with the real sqlite3 (no shell) and returns its output. */
export async function sqlite(file: string, sql: string, options: { readonly?: boolean } = {}): Promise<string> {
  const args = ["-init", "/dev/null", "-bail", ...(options.readonly ? ["-readonly"] : []), file, sql];
  const { stdout } = await run("sqlite3", args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** `sqlite:///path`, percent-encoded. */
export function urlOf(path: string): string {
  return `sqlite://${pathToFileURL(path).pathname}`;
}

/** A fresh directory for this test file, removed after it. */
export async function scratchDirectory(prefix = "hoard-sqlite-"): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), prefix));
  afterAll(() => rm(directory, { recursive: true, force: true }));
  return directory;
}

let counter = 0;
/** A path in `directory` where no file is yet. */
export function newPath(directory: string, name = "db"): string {
  counter += 1;
  return join(directory, `${name}-${process.pid}-${counter}.sqlite`);
}
