import { HoardError } from "./errors.js";

/** A backup found in storage: an object whose name is `<prefix>-<yyyyMMddHHmmss>.<ext>`. */
export interface BackupEntry {
  key: string;
  prefix: string;
  /** When the backup was taken, read from its name (UTC). */
  time: Date;
  /** Everything after the timestamp, without the leading dot, e.g. `dump.gz`. */
  extension: string;
  size: number;
}

const timestampPattern = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/;

/** `yyyyMMddHHmmss` in UTC. */
export function formatTimestamp(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new HoardError("INVALID_ARGUMENT", "invalid date");
  return date.toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

export function parseTimestamp(value: string): Date | undefined {
  const match = timestampPattern.exec(value);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Reject impossible dates such as the 31st of February rather than rolling them over.
  if (formatTimestamp(date) !== value) return undefined;
  return date;
}

/** Checks a prefix: no slash at either end, no characters that break keys or names. */
export function validatePrefix(prefix: string): string {
  const hasControlCharacter = [...prefix].some((character) => character.charCodeAt(0) < 0x20);
  if (!prefix || prefix.startsWith("/") || prefix.endsWith("/") || prefix.includes("\\") || hasControlCharacter) {
    throw new HoardError("INVALID_ARGUMENT", `invalid prefix "${prefix}": use letters, digits, - _ . and / inside`);
  }
  return prefix;
}

export function backupKey(prefix: string, date: Date, extension: string): string {
  return `${validatePrefix(prefix)}-${formatTimestamp(date)}.${extension}`;
}

/**
 * Reads a key as a backup name. With `prefix`, only backups of exactly that prefix match
 * (`backup` does not match `backup-old-20260101000000.sql`); without, any prefix does.
 */
export function parseBackupKey(key: string, prefix?: string): Omit<BackupEntry, "size"> | undefined {
  const match = /^(.+)-(\d{14})\.([A-Za-z0-9][A-Za-z0-9.]*)$/.exec(key);
  if (!match) return undefined;
  const [, keyPrefix, stamp, extension] = match as unknown as [string, string, string, string];
  if (prefix !== undefined && keyPrefix !== prefix) return undefined;
  const time = parseTimestamp(stamp);
  if (!time) return undefined;
  return { key, prefix: keyPrefix, time, extension };
}

/**
 * Checks an object key as every store must before using it: relative, `/`-separated, no empty,
 * `.` or `..` segment (which would escape the storage's root or alias another key), no backslash
 * or control character. Returns the key; throws INVALID_ARGUMENT naming the store otherwise.
 */
export function checkKey(key: string, store: string): string {
  const segments = key.split("/");
  const bad =
    !key ||
    key.includes("\\") ||
    [...key].some((character) => character.charCodeAt(0) < 0x20) ||
    segments.some((segment) => segment === "" || segment === "." || segment === "..");
  if (bad) throw new HoardError("INVALID_ARGUMENT", `${store}: invalid key "${key}": use /-separated names without empty, . or .. parts`);
  return key;
}
