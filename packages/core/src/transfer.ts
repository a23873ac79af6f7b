import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Storage, StorageObject } from "./storage.js";

/** Uploads a local file, streaming it from disk. */
export async function uploadFile(storage: Storage, key: string, path: string, signal?: AbortSignal): Promise<StorageObject> {
  const { size } = await stat(path);
  return storage.upload(key, createReadStream(path), { contentLength: size, signal });
}

/** Downloads an object into a local file, written under a temporary name and renamed when complete. */
export async function downloadFile(storage: Storage, key: string, path: string, signal?: AbortSignal): Promise<void> {
  const partial = `${path}.hoard-partial`;
  try {
    await pipeline(await storage.download(key, { signal }), createWriteStream(partial, { mode: 0o600 }), { signal });
    await rename(partial, path);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

/**
 * Copies an object from one storage to another: server-side when both are the same storage,
 * otherwise streamed through this process (local to remote, remote to local, remote to remote).
 */
export async function transfer(
  source: Storage,
  sourceKey: string,
  target: Storage,
  targetKey: string,
  signal?: AbortSignal,
): Promise<void> {
  if (source === target) return source.copy(sourceKey, targetKey);
  const object = await source.stat(sourceKey);
  await target.upload(targetKey, await source.download(sourceKey, { signal }), { signal, contentLength: object?.size });
}
