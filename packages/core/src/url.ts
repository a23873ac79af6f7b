import { isAbsolute, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { HoardError } from "./errors.js";

/** The scheme of a URL without its colon, lower-cased; `file` for plain paths. */
export function schemeOf(location: string): string {
  const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(location);
  if (!match?.[1] || isWindowsDrive(location)) return "file";
  return match[1].toLowerCase();
}

function isWindowsDrive(location: string): boolean {
  return /^[a-zA-Z]:[\\/]/.test(location);
}

/** Parses a URL, throwing an INVALID_ARGUMENT error that does not echo a password. */
export function parseUrl(location: string, what = "URL"): URL {
  try {
    return new URL(location);
  } catch (error) {
    throw new HoardError("INVALID_ARGUMENT", `invalid ${what}: ${redactUrl(location)}`, { cause: error });
  }
}

/**
 * Removes the password (and any secret-looking query parameter) from a URL so it can be printed.
 * Strings that are not URLs are returned unchanged apart from a best-effort `user:pass@` strip.
 */
export function redactUrl(location: string): string {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    // The user information ends at the authority's last "@": a password may hold unencoded "@", "/", "?" or "#".
    return location.replace(/\/\/([^/@:]*):.*@/s, "//$1:***@");
  }
  if (url.password) url.password = "***";
  for (const key of [...url.searchParams.keys()]) {
    if (/pass|secret|token|key|credential/i.test(key)) url.searchParams.set(key, "***");
  }
  return url.toString();
}

/** A storage URL split into its parts: `s3://bucket/some/prefix` -> bucket `bucket`, path `some/prefix`. */
export interface StorageLocation {
  scheme: string;
  /** Bucket for object stores; empty for `file`. */
  bucket: string;
  /** Path inside the bucket without leading or trailing slash; an absolute directory for `file`. */
  path: string;
}

export function parseStorageUrl(location: string): StorageLocation {
  const scheme = schemeOf(location);
  checkPercentEncoding(location);
  if (scheme === "file") {
    return { scheme, bucket: "", path: localPath(location) };
  }
  const url = parseUrl(location, "storage URL");
  if (!url.hostname) {
    throw new HoardError("INVALID_ARGUMENT", `storage URL needs a bucket: ${redactUrl(location)}`);
  }
  return { scheme, bucket: url.hostname, path: trimSlashes(decodePath(url.pathname, location)) };
}

/**
 * Fails with INVALID_ARGUMENT, "badly percent-encoded", when a URL holds a `%` that does not
 * start a valid escape (`%ZZ`, a lone `%`) or escapes that are not UTF-8 (`%FF`), anywhere: path,
 * user, password, query. Plain paths are not URLs: `%` is an ordinary character there.
 */
export function checkPercentEncoding(location: string): void {
  if (!location.includes("%") || (schemeOf(location) === "file" && !location.startsWith("file:"))) return;
  try {
    decodeURIComponent(location);
  } catch (error) {
    throw new HoardError("INVALID_ARGUMENT", `badly percent-encoded URL: ${redactUrl(location)}`, { cause: error });
  }
}

function localPath(location: string): string {
  if (!location.startsWith("file:")) return resolve(location);
  try {
    return fileURLToPath(location);
  } catch (error) {
    throw new HoardError("INVALID_ARGUMENT", `invalid file URL ${redactUrl(location)}: use file:///absolute/directory or a plain path`, {
      cause: error,
    });
  }
}

function decodePath(path: string, location: string): string {
  try {
    return decodeURIComponent(path);
  } catch (error) {
    throw new HoardError("INVALID_ARGUMENT", `badly percent-encoded URL: ${redactUrl(location)}`, { cause: error });
  }
}

/** Joins a storage location's path and a key with single slashes. */
export function joinKey(...parts: string[]): string {
  return parts.map(trimSlashes).filter(Boolean).join("/");
}

export function trimSlashes(value: string): string {
  return value.replace(/^\/+|\/+$/g, "");
}

/** Splits `s3://bucket/dir/backup-20260101000000.dump.gz` into the storage URL and the object key. */
export function splitObjectUrl(location: string): { storageUrl: string; key: string } {
  const scheme = schemeOf(location);
  checkPercentEncoding(location);
  const pathPart = scheme === "file" && !location.startsWith("file:") ? location : location.replace(/[?#].*$/s, "");
  if (pathPart.endsWith("/")) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `${redactUrl(location)} names a folder, not a backup: give the backup's full name, or the folder with --latest`,
    );
  }
  if (scheme === "file") {
    const path = localPath(location);
    const slash = path.lastIndexOf("/");
    return { storageUrl: pathToFileURL(path.slice(0, slash) || "/").toString(), key: path.slice(slash + 1) };
  }
  const url = parseUrl(location, "backup URL");
  const path = trimSlashes(url.pathname);
  const slash = path.lastIndexOf("/");
  const key = decodePath(path.slice(slash + 1), location);
  if (!key) throw new HoardError("INVALID_ARGUMENT", `backup URL names no object: ${redactUrl(location)}`);
  url.pathname = slash < 0 ? "/" : `/${path.slice(0, slash)}`;
  return { storageUrl: url.toString().replace(/\/$/, ""), key };
}

export function isAbsolutePath(value: string): boolean {
  return isAbsolute(value);
}
