import { HoardError, parseStorageUrl, type Storage, type StorageSettings } from "@hoard/core";
import { parseByteSize } from "./options.js";
import { createGcsStorage } from "./storage.js";

export { type GcsCredentials, type GcsStorageOptions, parseByteSize } from "./options.js";
export { createGcsStorage };

/**
 * Creates the storage for a `gs://bucket/prefix` URL; the registry in @hoard/core calls this. Settings (from the CLI):
 * `gcsProject` (--gcs-project), `gcsKeyFile` (--gcs-key-file), `gcsEndpoint` (--gcs-endpoint), and inline credentials
 * `gcsClientEmail` with `gcsPrivateKey` (HOARD_GCS_CLIENT_EMAIL, HOARD_GCS_PRIVATE_KEY), `gcsStorageClass`
 * (--gcs-storage-class), `gcsChunkSize` (--gcs-chunk-size, bytes or a size such as `16MiB` or `16M`), and `timeoutMs`
 * (--timeout, common to every storage).
 */
export function createStorageFromUrl(url: string, settings: StorageSettings = {}): Storage {
  const location = parseStorageUrl(url);
  if (location.scheme !== "gs")
    throw new HoardError("INVALID_ARGUMENT", `gcs: expected a gs://bucket/prefix URL, not ${location.scheme}://`);
  const clientEmail = textSetting(settings.gcsClientEmail);
  const privateKey = textSetting(settings.gcsPrivateKey);
  if (Boolean(clientEmail) !== Boolean(privateKey)) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      "gcs: inline credentials need both a client email and a private key (HOARD_GCS_CLIENT_EMAIL, HOARD_GCS_PRIVATE_KEY)",
    );
  }
  return createGcsStorage({
    bucket: location.bucket,
    prefix: location.path,
    projectId: textSetting(settings.gcsProject),
    keyFilename: textSetting(settings.gcsKeyFile),
    credentials: clientEmail && privateKey ? { client_email: clientEmail, private_key: privateKey } : undefined,
    apiEndpoint: textSetting(settings.gcsEndpoint),
    storageClass: textSetting(settings.gcsStorageClass),
    chunkSize: byteSetting(settings.gcsChunkSize),
    timeoutMs: timeoutSetting(settings.timeoutMs),
  });
}

function textSetting(value: string | number | boolean | undefined): string | undefined {
  if (value === undefined || value === false || value === "") return undefined;
  return String(value);
}

/** `16777216`, `16MiB`, `16M`, `512KiB` -> bytes, as `--s3-part-size` reads them. */
function byteSetting(value: string | number | boolean | undefined): number | undefined {
  const text = textSetting(value);
  if (text === undefined) return undefined;
  const bytes = parseByteSize(text);
  if (bytes === undefined) {
    throw new HoardError("INVALID_ARGUMENT", `gcs: invalid chunk size "${text}": use bytes or a size such as 16MiB or 16M`);
  }
  return bytes;
}

/** `timeoutMs`, common to every storage: a positive whole number of milliseconds. */
function timeoutSetting(value: unknown): number | undefined {
  if (value === undefined || value === "") return undefined;
  const milliseconds = typeof value === "number" ? value : /^\s*\d+\s*$/.test(String(value)) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(milliseconds) || milliseconds < 1) {
    throw new HoardError("INVALID_ARGUMENT", `gcs: the timeout must be a positive whole number of milliseconds, got "${String(value)}"`);
  }
  return milliseconds;
}
