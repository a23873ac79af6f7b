import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { Transform } from "node:stream";
import type { DumpDescription, Inventory } from "./driver.js";
import type { EncryptionDescription } from "./encryption.js";
import { HoardError, isHoardError } from "./errors.js";
import type { Storage } from "./storage.js";

/** A backup's manifest is stored beside it as `<backup key>.manifest.json` (a companion, see `listBackups`). */
export const manifestSuffix = ".manifest.json";

/** The manifest format this version of hoard writes; readers accept this one and refuse newer ones. */
export const manifestFormatVersion = 1;

/** The largest manifest hoard reads: a manifest is small, so anything bigger is not one. */
const maxManifestBytes = 16 * 1024 * 1024;

/**
 * What hoard knows about a backup, written as JSON beside it once the backup object is complete:
 * a backup without a manifest is incomplete or was made by something else (or before manifests).
 * Never holds a secret: the URL is without its password, encryption names public keys only.
 */
export interface Manifest {
  format: "hoard-manifest";
  /** {@link manifestFormatVersion} of the hoard that wrote it. */
  formatVersion: number;
  /** The version of `@hoard/core` that made the backup. */
  hoardVersion: string;
  /** The backup object's key, as stored. */
  key: string;
  database: {
    /** The driver's name: `postgresql`, `mariadb`, `mongodb`, `sqlite`. */
    kind: string;
    /** The database URL without its password. */
    url: string;
    server?: DumpDescription["server"];
    tool?: DumpDescription["tool"];
  };
  /** When the dump started and when the object was stored, ISO 8601 UTC. */
  startedAt: string;
  finishedAt: string;
  /** The stored object: its size in bytes and SHA-256 (hex) of exactly the stored bytes, after compression and encryption. */
  object: { size: number; sha256: string };
  /** How the dump was compressed before encryption: the format and its level (`none`: stored as dumped, no level). */
  compression: ManifestCompression;
  /** How the object is encrypted; absent when it is not. */
  encryption?: EncryptionDescription;
  /** What the dump contains, as the driver told when the dump started; absent when the driver cannot tell cheaply. */
  contents?: Inventory;
}

/** The compressions a backup can be stored with: `gzip` (`.gz`), `zstd` (`.zst`), or `none` (the dump as it is). */
export type CompressionFormat = "gzip" | "zstd" | "none";

/**
 * A manifest's `compression`. zstd's `minMatch` is the shortest match it looked for when that is
 * not its level's own (hoard's default setting, {@link zstdDefaultMinMatch}); restoring needs
 * neither the level nor it.
 */
export type ManifestCompression =
  | { format: "gzip"; level: number }
  | { format: "zstd"; level: number; minMatch?: number }
  | { format: "none" };

/**
 * The levels each compression takes, and its default: gzip 0 (stored) to 9 (smallest), zstd 1 to
 * 19 (the zstd program's range without `--ultra`, whose windows cost much more memory to restore).
 */
export const compressionLevels: Readonly<Record<Exclude<CompressionFormat, "none">, { min: number; max: number; default: number }>> = {
  gzip: { min: 0, max: 9, default: 6 },
  // 3, the zstd program's own, with zstdDefaultMinMatch when no level is named.
  zstd: { min: 1, max: 19, default: 3 },
};

/**
 * The shortest match zstd looks for when a backup names no level: 6 bytes instead of level 3's 5
 * (`zstd -3 --zstd=minMatch=6`). Dumps are text, where a 5-byte match often costs as much to
 * encode as the literals it replaces: on the 300 MiB pg_dump this is 1.2 % smaller than zstd 3
 * and 0.7 % smaller than `pg_dump -Fc` (gzip 6), in a third of zstd 6's CPU (docs/benchmarks.md,
 * "zstd's default setting"). A level named by the user is zstd's level as it is.
 */
export const zstdDefaultMinMatch = 6;

/** The compression a backup gets when it names a format (or nothing) but no level: the format's default level, zstd's with {@link zstdDefaultMinMatch}. */
export function defaultCompressionOf(format: Exclude<CompressionFormat, "none">): ManifestCompression {
  return format === "zstd"
    ? { format, level: compressionLevels.zstd.default, minMatch: zstdDefaultMinMatch }
    : { format, level: compressionLevels.gzip.default };
}

/**
 * The compression of a backup that names none, and the one a level alone applies to: zstd, which
 * beats gzip 6 on both time and size (docs/benchmarks.md says by how much).
 */
export const defaultCompression: Exclude<CompressionFormat, "none"> = "zstd";

/** The manifest's key for a backup key. */
export function manifestKey(backupKey: string): string {
  return `${backupKey}${manifestSuffix}`;
}

let coreVersion: string | undefined;

/** The version of `@hoard/core`, from its package.json. */
export function hoardVersion(): string {
  coreVersion ??= (createRequire(import.meta.url)("../package.json") as { version: string }).version;
  return coreVersion;
}

/** A pass-through that computes the SHA-256 and size of what flows through it, for the manifest (no second read). */
export function checksumMeter(): { meter: Transform; result(): { size: number; sha256: string } } {
  const hash = createHash("sha256");
  let size = 0;
  let digest: string | undefined;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  return {
    meter,
    result() {
      digest ??= hash.digest("hex");
      return { size, sha256: digest };
    },
  };
}

/** The manifest as stored: pretty-printed JSON with a final newline. */
export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, "utf8");
}

/**
 * Reads a manifest's text; CORRUPT_ARCHIVE naming `name` when it is not a hoard manifest, and
 * UNSUPPORTED_FORMAT when a newer hoard wrote it.
 */
export function parseManifest(text: string, name: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HoardError("CORRUPT_ARCHIVE", `${name} is not valid JSON: it is not a hoard manifest`, { cause: error });
  }
  const manifest = value as Partial<Manifest> | null;
  if (typeof manifest !== "object" || manifest === null || manifest.format !== "hoard-manifest") {
    throw new HoardError("CORRUPT_ARCHIVE", `${name} is not a hoard manifest`);
  }
  if (typeof manifest.formatVersion !== "number" || manifest.formatVersion > manifestFormatVersion) {
    throw new HoardError(
      "UNSUPPORTED_FORMAT",
      `${name} has manifest format ${String(manifest.formatVersion)}; this hoard reads format ${manifestFormatVersion}: upgrade hoard`,
    );
  }
  const object = manifest.object;
  if (
    typeof object?.size !== "number" ||
    typeof object.sha256 !== "string" ||
    !/^[0-9a-f]{64}$/.test(object.sha256) ||
    typeof manifest.database?.kind !== "string"
  ) {
    throw new HoardError("CORRUPT_ARCHIVE", `${name} is damaged: it lacks the object's size, SHA-256 or database kind`);
  }
  return manifest as Manifest;
}

/**
 * The manifest of a backup, or undefined when it has none. A manifest that is there but unreadable
 * fails (CORRUPT_ARCHIVE), as does one larger than any manifest hoard writes.
 */
export async function readManifest(
  storage: Storage,
  backupKey: string,
  options: { signal?: AbortSignal } = {},
): Promise<Manifest | undefined> {
  const key = manifestKey(backupKey);
  let chunks: Buffer[] = [];
  let size = 0;
  try {
    const body = await storage.download(key, { signal: options.signal });
    for await (const chunk of body) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += buffer.length;
      if (size > maxManifestBytes) {
        body.destroy();
        throw new HoardError(
          "CORRUPT_ARCHIVE",
          `${key} is larger than any manifest (${maxManifestBytes} bytes): it is not a hoard manifest`,
        );
      }
      chunks.push(buffer);
    }
  } catch (error) {
    if (isHoardError(error, "NOT_FOUND")) return undefined;
    throw error;
  }
  const text = Buffer.concat(chunks).toString("utf8");
  chunks = [];
  return parseManifest(text, key);
}
