import { layersOf } from "./codecs.js";
import { HoardError } from "./errors.js";

/**
 * A backup found in storage: an object whose name is `<prefix>-<yyyyMMddHHmmss>.<ext>` where
 * `<ext>` is a restorable extension chain (see `isBackupExtension`).
 */
export interface BackupEntry {
  key: string;
  prefix: string;
  /** When the backup was taken, read from its name (UTC). */
  time: Date;
  /** Everything after the timestamp, without the leading dot, e.g. `dump.gz`. */
  extension: string;
  size: number;
  /**
   * Other objects that belong to this backup: keys of the form `<backup key>.<anything>`, such as
   * a `.sha256` checksum or a `.manifest.json`. Listed by `listBackups` (absent when there are
   * none), deleted by `prune` together with the backup.
   */
  companions?: string[];
}

/**
 * The payload extensions of the dumps hoard's drivers write and restore: PostgreSQL `dump`,
 * MariaDB `sql`, MongoDB `archive`.
 */
export const dumpExtensions: readonly string[] = ["dump", "sql", "archive"];

/**
 * Whether the extension after a backup's timestamp (`dump.gz`, `archive.tar.gz`, `sql`) names
 * something restore can read. The rule: remove the packaging layers from the end (`gz`, `gzip`,
 * `bz2`, `zst`, `tar`, `tgz`, `tbz2`, `tbz`, as `layersOf` reads them); what is left must end in
 * a dump payload extension (`dumpExtensions`), or be nothing at all when at least one layer was
 * removed (a bare `tar.gz` of a dump directory). So `dump.gz` and `tar.gz` are backups, while
 * `dump.gz.sha256` and `dump.gz.manifest.json` (a backup's companions) and `txt` are not.
 * Case does not matter.
 */
export function isBackupExtension(extension: string): boolean {
  const parts = extension.toLowerCase().split(".");
  let layers = 0;
  while (parts.length > 0 && layersOf(`x.${parts.at(-1)}`).length > 0) {
    parts.pop();
    layers += 1;
  }
  if (parts.length === 0) return layers > 0;
  return dumpExtensions.includes(parts.at(-1) as string);
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

/**
 * Checks a backup prefix (`backup`, `db/nightly`), the one rule for every store: `/`-separated
 * names without an empty, `.` or `..` part (no slash at either end, nothing that could leave the
 * storage's folder), and none of the characters that do not survive a trip through a printed URL
 * (`#` starts a fragment, `?` a query, `%` an escape) or that break keys (backslash, control
 * characters). Returns the prefix; throws INVALID_ARGUMENT saying what is wrong otherwise.
 */
export function validatePrefix(prefix: string): string {
  const problem = prefixProblem(prefix);
  if (problem) throw new HoardError("INVALID_ARGUMENT", `invalid prefix "${printable(prefix)}": ${problem}`);
  return prefix;
}

function prefixProblem(prefix: string): string | undefined {
  if (!prefix) return "it is empty; use a name such as backup or db/nightly";
  if ([...prefix].some((character) => character.charCodeAt(0) < 0x20 || character.charCodeAt(0) === 0x7f)) {
    return "it contains a control character";
  }
  const bad = [...new Set([...prefix].filter((character) => "#?%\\".includes(character)))];
  if (bad.length > 0) {
    return `${bad.map((character) => `"${character}"`).join(", ")} cannot be used (# ? and % do not survive in a URL, \\ is not a separator)`;
  }
  if (prefix.startsWith("/") || prefix.endsWith("/")) return "it must not start or end with /";
  if (prefix.split("/").some((segment) => segment === "" || segment === "." || segment === "..")) {
    return "use /-separated names without empty, . or .. parts";
  }
  return undefined;
}

function printable(value: string): string {
  return [...value]
    .map((character) => {
      const point = character.charCodeAt(0);
      return point < 0x20 || point === 0x7f ? `\\u${point.toString(16).padStart(4, "0")}` : character;
    })
    .join("");
}

export function backupKey(prefix: string, date: Date, extension: string): string {
  return `${validatePrefix(prefix)}-${formatTimestamp(date)}.${extension}`;
}

/**
 * Reads a key as a backup name. With `prefix`, only backups of exactly that prefix match
 * (`backup` does not match `backup-old-20260101000000.sql`); without, any prefix does. Only a
 * restorable extension chain makes a backup (`isBackupExtension`): `backup-<time>.dump.gz.sha256`
 * is not one.
 */
export function parseBackupKey(key: string, prefix?: string): Omit<BackupEntry, "size" | "companions"> | undefined {
  const match = /^(.+)-(\d{14})\.([A-Za-z0-9][A-Za-z0-9.]*)$/.exec(key);
  if (!match) return undefined;
  const [, keyPrefix, stamp, extension] = match as unknown as [string, string, string, string];
  if (prefix !== undefined && keyPrefix !== prefix) return undefined;
  const time = parseTimestamp(stamp);
  if (!time || !isBackupExtension(extension)) return undefined;
  return { key, prefix: keyPrefix, time, extension };
}

/**
 * Whether `key` is named as a backup of exactly `prefix` or one of its companions:
 * `<prefix>-<14-digit time>.<anything>`. `backup-20260101000000.dump.zst.manifest.json` is one of
 * `backup`'s; `backup-old-20260101000000.dump.zst` is not. For what an interrupted upload left
 * behind, whose extension may be any.
 */
export function isKeyOfPrefix(key: string, prefix: string): boolean {
  return key.startsWith(`${prefix}-`) && /^\d{14}\./.test(key.slice(prefix.length + 1));
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
