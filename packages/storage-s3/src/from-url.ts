import type { Storage, StorageSettings } from "@hoard/core";
import { HoardError, parseStorageUrl, parseUrl, redactUrl } from "@hoard/core";
import type { S3StorageOptions } from "./s3-options.js";
import { createS3Storage } from "./s3-storage.js";

/**
 * The settings `createStorageFromUrl` reads, with the CLI flag each comes from. Values may be
 * strings (as they come from the command line or the environment) or already typed.
 */
export interface S3StorageSettings {
  /** `--s3-endpoint`: URL of an S3-compatible service. */
  s3Endpoint?: string;
  /** `--s3-region` */
  s3Region?: string;
  /** `--s3-force-path-style`: `true` or `false`. */
  s3ForcePathStyle?: boolean | string;
  /** `--s3-access-key-id`; needs `s3SecretAccessKey`. */
  s3AccessKeyId?: string;
  /** `--s3-secret-access-key` */
  s3SecretAccessKey?: string;
  /** `--s3-session-token`, for temporary credentials. */
  s3SessionToken?: string;
  /** `--s3-sse`: `AES256` or `aws:kms`. */
  s3Sse?: string;
  /** `--s3-sse-kms-key-id`; implies `aws:kms`. */
  s3SseKmsKeyId?: string;
  /** `--s3-storage-class`, e.g. `STANDARD_IA`. */
  s3StorageClass?: string;
  /** `--s3-part-size`: bytes, or a size such as `16MiB`, `64M` (units are powers of 1024). */
  s3PartSize?: number | string;
  /** `--s3-queue-size`: parts sent at the same time. */
  s3QueueSize?: number | string;
  /**
   * Common to every storage (`--timeout`): milliseconds a request may wait without a byte before
   * the attempt is given up. @default 15_000
   */
  timeoutMs?: number | string;
}

function text(settings: StorageSettings, name: keyof S3StorageSettings): string | undefined {
  const value = settings[name];
  if (value === undefined) return undefined;
  const trimmed = String(value).trim();
  return trimmed === "" ? undefined : trimmed;
}

function flagOf(name: keyof S3StorageSettings): string {
  return `--${name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

function booleanSetting(settings: StorageSettings, name: keyof S3StorageSettings): boolean | undefined {
  const value = settings[name];
  if (value === undefined || typeof value === "boolean") return value;
  const normalized = String(value).trim().toLowerCase();
  if (["true", "1", "yes"].includes(normalized)) return true;
  if (["false", "0", "no"].includes(normalized)) return false;
  throw new HoardError("INVALID_ARGUMENT", `s3: ${flagOf(name)} must be true or false, got "${String(value)}"`);
}

function integerSetting(settings: StorageSettings, name: keyof S3StorageSettings): number | undefined {
  const value = text(settings, name);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new HoardError("INVALID_ARGUMENT", `s3: ${flagOf(name)} must be a whole number, got "${value}"`);
  return Number(value);
}

const sizeUnits: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Parses `16777216`, `16MiB`, `16M` or `16mb` into bytes; units are powers of 1024. */
export function parseByteSize(value: string): number | undefined {
  const match = /^(\d+)\s*(?:([kmg])(?:i?b)?|b)?$/i.exec(value.trim());
  if (!match) return undefined;
  return Number(match[1]) * (sizeUnits[(match[2] ?? "").toLowerCase()] as number);
}

/** `timeoutMs`, common to every storage: a positive whole number of milliseconds. */
function timeoutSetting(settings: StorageSettings): number | undefined {
  const value = settings.timeoutMs as unknown;
  if (value === undefined || value === "") return undefined;
  const milliseconds = typeof value === "number" ? value : /^\s*\d+\s*$/.test(String(value)) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(milliseconds) || milliseconds < 1) {
    throw new HoardError("INVALID_ARGUMENT", `s3: the timeout must be a positive whole number of milliseconds, got "${String(value)}"`);
  }
  return milliseconds;
}

function sizeSetting(settings: StorageSettings, name: keyof S3StorageSettings): number | undefined {
  const value = text(settings, name);
  if (value === undefined) return undefined;
  const bytes = parseByteSize(value);
  if (bytes === undefined) {
    throw new HoardError("INVALID_ARGUMENT", `s3: ${flagOf(name)} must be a size such as 16MiB or a number of bytes, got "${value}"`);
  }
  return bytes;
}

function encryptionSetting(settings: StorageSettings): S3StorageOptions["serverSideEncryption"] {
  const value = text(settings, "s3Sse");
  if (value === undefined) return undefined;
  if (value.toUpperCase() === "AES256") return "AES256";
  if (value.toLowerCase() === "aws:kms") return "aws:kms";
  throw new HoardError("INVALID_ARGUMENT", `s3: --s3-sse must be AES256 or aws:kms, got "${value}"`);
}

/**
 * Turns `s3://bucket/prefix` and the `s3*` settings (see {@link S3StorageSettings}) into S3 storage
 * options. Settings of other plugins are ignored. Credentials not given here come from the AWS
 * SDK's default provider chain.
 */
export function s3OptionsFromUrl(url: string, settings: StorageSettings = {}): S3StorageOptions {
  const location = parseStorageUrl(url);
  if (location.scheme !== "s3") {
    throw new HoardError("INVALID_ARGUMENT", `s3: not an s3:// URL: ${redactUrl(url)}`);
  }
  const parsed = parseUrl(url, "storage URL");
  if (parsed.search || parsed.username || parsed.password) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `s3: ${redactUrl(url)}: use s3://bucket/prefix and pass credentials and options as --s3-* flags or AWS_* variables`,
    );
  }
  const accessKeyId = text(settings, "s3AccessKeyId");
  const secretAccessKey = text(settings, "s3SecretAccessKey");
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new HoardError("INVALID_ARGUMENT", "s3: --s3-access-key-id and --s3-secret-access-key go together: pass both or neither");
  }
  const sessionToken = text(settings, "s3SessionToken");
  if (sessionToken && !accessKeyId) {
    throw new HoardError("INVALID_ARGUMENT", "s3: --s3-session-token needs --s3-access-key-id and --s3-secret-access-key");
  }
  const timeout = timeoutSetting(settings);
  return {
    bucket: location.bucket,
    prefix: location.path,
    region: text(settings, "s3Region"),
    endpoint: text(settings, "s3Endpoint"),
    forcePathStyle: booleanSetting(settings, "s3ForcePathStyle"),
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) } : undefined,
    serverSideEncryption: encryptionSetting(settings),
    sseKmsKeyId: text(settings, "s3SseKmsKeyId"),
    storageClass: text(settings, "s3StorageClass")?.toUpperCase(),
    partSize: sizeSetting(settings, "s3PartSize"),
    queueSize: integerSetting(settings, "s3QueueSize"),
    ...(timeout !== undefined && { timeoutMs: timeout }),
  };
}

/** The registry's entry point: `s3://bucket/prefix` plus `s3*` settings to a Storage. */
export function createStorageFromUrl(url: string, settings: StorageSettings = {}): Storage {
  return createS3Storage(s3OptionsFromUrl(url, settings));
}
