/** Fixtures shared by core's tests. */
import { chmod, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll } from "vitest";
import { createLocalStorage } from "../src/storage/local.ts";
import type { Storage } from "../src/storage.ts";

/**
 * Returns `freshDirectory(name)`, which makes a new temporary directory `hoard-<label>-<name>-…`;
 * all of them (and the paths given to `removeAfterwards`) are removed after the file's tests (made
 * writable first), once `beforeRemoval` ran.
 */
export function freshDirectories(
  label: string,
  options: { beforeRemoval?: () => void } = {},
): ((name: string) => Promise<string>) & { removeAfterwards(path: string): void } {
  const created: string[] = [];
  afterAll(async () => {
    options.beforeRemoval?.();
    for (const directory of created) {
      await chmod(directory, 0o700).catch(() => {});
      await rm(directory, { recursive: true, force: true });
    }
  });
  const freshDirectory = async (name: string) => {
    const directory = await mkdtemp(join(tmpdir(), `hoard-${label}-${name}-`));
    created.push(directory);
    return directory;
  };
  /** Removes another path with the directories. */
  return Object.assign(freshDirectory, { removeAfterwards: (path: string) => void created.push(path) });
}

/** What `action` throws, or undefined when it returns. */
export function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** mulberry32: a small seeded PRNG, so a failing case can be replayed from its seed. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** True while a process with this id exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every file under `directory`, relative to it, sorted. */
export async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(directory, join(entry.parentPath, entry.name)))
    .sort();
}

/** A local storage in a fresh directory, and another fresh directory for temporary files. */
export async function freshStorage(
  freshDirectory: (name: string) => Promise<string>,
): Promise<{ storageDirectory: string; temporaryDirectory: string; storage: Storage }> {
  const storageDirectory = await freshDirectory("storage");
  const temporaryDirectory = await freshDirectory("temporary");
  return { storageDirectory, temporaryDirectory, storage: createLocalStorage({ directory: storageDirectory }) };
}
