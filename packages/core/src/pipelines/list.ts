import { describeError, isHoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";
import { type Manifest, manifestKey, readManifest } from "../manifest.js";
import { type BackupEntry, parseBackupKey, validatePrefix } from "../naming.js";
import { futureBackups, isFutureDated } from "../retention.js";
import type { Storage } from "../storage.js";

export interface ListOptions {
  /** Only backups named `<prefix>-<timestamp>.<ext>`; all backup-shaped names when omitted. */
  prefix?: string;
  /** Stops the listing; it then fails with ABORTED. */
  signal?: AbortSignal;
}

export interface LatestBackupOptions {
  /** Stops the listing; it then fails with ABORTED. */
  signal?: AbortSignal;
  /** The present, to tell future-dated backups. @default new Date() */
  now?: Date;
  /** Receives a warning for each future-dated backup that was skipped. */
  logger?: Logger;
}

/** A key that may be a companion: a backup-shaped name followed by more (`backup-<time>.dump.gz.sha256`). */
const companionShape = /-\d{14}\.[^/]*\./;

/**
 * Every backup in a storage, newest first. Only names with a restorable extension chain are
 * backups (see `isBackupExtension`); other objects are ignored, except that an object whose key
 * is `<backup key>.<anything>` (a checksum, a manifest) is attached to that backup as one of its
 * `companions` instead of being listed.
 */
export async function listBackups(storage: Storage, options: ListOptions = {}): Promise<BackupEntry[]> {
  const prefix = options.prefix === undefined ? undefined : validatePrefix(options.prefix);
  const backups = new Map<string, BackupEntry>();
  const candidates: string[] = [];
  const listPrefix = prefix === undefined ? "" : `${prefix}-`;
  for await (const object of storage.list(listPrefix, { signal: options.signal })) {
    const parsed = parseBackupKey(object.key, prefix);
    if (parsed) backups.set(object.key, { ...parsed, size: object.size });
    else if (companionShape.test(object.key)) candidates.push(object.key);
  }
  for (const key of candidates.sort()) {
    const owner = ownerOf(key, backups);
    if (owner) owner.companions = [...(owner.companions ?? []), key];
  }
  return [...backups.values()].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.key < b.key ? 1 : -1));
}

/** The backup with the longest key that `key` continues with a dot. */
function ownerOf(key: string, backups: ReadonlyMap<string, BackupEntry>): BackupEntry | undefined {
  for (let dot = key.lastIndexOf("."); dot > 0; dot = key.lastIndexOf(".", dot - 1)) {
    const owner = backups.get(key.slice(0, dot));
    if (owner) return owner;
  }
  return undefined;
}

/**
 * The newest backup with the given prefix, if any. Backups dated more than an hour in the future
 * are skipped (see `futureBackups` for the policy), each with a warning through `logger`: a
 * machine with a wrong clock would otherwise keep its backup "newest" for as long as the skew lasts.
 */
export async function latestBackup(storage: Storage, prefix: string, options: LatestBackupOptions = {}): Promise<BackupEntry | undefined> {
  const now = options.now ?? new Date();
  const backups = await listBackups(storage, { prefix, signal: options.signal });
  for (const skipped of futureBackups(backups, now)) {
    log(
      options.logger,
      "warn",
      `skipped ${skipped.key}: its name says ${skipped.time.toISOString()}, more than an hour after now (${now.toISOString()}); check the clock of the machine that took it`,
    );
  }
  return backups.find((backup) => !isFutureDated(backup, now));
}

/** What `listBackupsWithManifests` found about a backup's manifest. */
export type ManifestState =
  | { state: "present"; manifest: Manifest }
  /** No `<key>.manifest.json`: a backup from before manifests, from another tool, or one whose backup did not finish. */
  | { state: "missing" }
  /** There is one, but it cannot be read as a hoard manifest. */
  | { state: "unreadable"; reason: string };

export type BackupWithManifest = BackupEntry & { manifest: ManifestState };

/** How many manifests are read at once. */
const manifestReads = 8;

/**
 * {@link listBackups}, and each backup's manifest read (a few at a time): whether it has one,
 * and the size and SHA-256 it records. One extra request per backup that has a manifest.
 */
export async function listBackupsWithManifests(storage: Storage, options: ListOptions = {}): Promise<BackupWithManifest[]> {
  const backups = await listBackups(storage, options);
  const described: BackupWithManifest[] = backups.map((backup) => ({ ...backup, manifest: { state: "missing" } }));
  const pending = described.filter((backup) => backup.companions?.includes(manifestKey(backup.key)));
  const worker = async () => {
    for (let backup = pending.shift(); backup; backup = pending.shift()) {
      try {
        const manifest = await readManifest(storage, backup.key, { signal: options.signal });
        backup.manifest = manifest ? { state: "present", manifest } : { state: "missing" };
      } catch (error) {
        if (options.signal?.aborted || isHoardError(error, "ABORTED")) throw error;
        if (!isHoardError(error, "CORRUPT_ARCHIVE") && !isHoardError(error, "UNSUPPORTED_FORMAT")) throw error;
        backup.manifest = { state: "unreadable", reason: describeError(error) };
      }
    }
  };
  await Promise.all(Array.from({ length: manifestReads }, worker));
  return described;
}
