import { type BackupEntry, parseBackupKey } from "../naming.js";
import type { Storage } from "../storage.js";

export interface ListOptions {
  /** Only backups named `<prefix>-<timestamp>.<ext>`; all backup-shaped names when omitted. */
  prefix?: string;
  /** Stops the listing; it then fails with ABORTED. */
  signal?: AbortSignal;
}

/** Every backup in a storage, newest first. Objects that are not named like backups are ignored. */
export async function listBackups(storage: Storage, options: ListOptions = {}): Promise<BackupEntry[]> {
  const found: BackupEntry[] = [];
  const listPrefix = options.prefix === undefined ? "" : `${options.prefix}-`;
  for await (const object of storage.list(listPrefix, { signal: options.signal })) {
    const parsed = parseBackupKey(object.key, options.prefix);
    if (parsed) found.push({ ...parsed, size: object.size });
  }
  return found.sort((a, b) => b.time.getTime() - a.time.getTime() || (a.key < b.key ? 1 : -1));
}

/** The newest backup with the given prefix, if any. */
export async function latestBackup(storage: Storage, prefix: string): Promise<BackupEntry | undefined> {
  return (await listBackups(storage, { prefix }))[0];
}
