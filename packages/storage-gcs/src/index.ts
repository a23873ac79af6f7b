import { HoardError, parseStorageUrl, type Storage, type StorageSettings } from "@hoard/core";
import { createGcsStorage } from "./storage.js";

export type { GcsCredentials, GcsStorageOptions } from "./options.js";
export { createGcsStorage };

/**
 * Creates the storage for a `gs://bucket/prefix` URL; the registry in @hoard/core calls this. Settings (from the CLI):
 * `gcsProject` (--gcs-project), `gcsKeyFile` (--gcs-key-file), `gcsEndpoint` (--gcs-endpoint), and inline credentials
 * `gcsClientEmail` with `gcsPrivateKey` (HOARD_GCS_CLIENT_EMAIL, HOARD_GCS_PRIVATE_KEY), `gcsStorageClass`
 * (--gcs-storage-class) and `gcsChunkSize` (--gcs-chunk-size, bytes or e.g. `16MiB`).
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
  });
}

function textSetting(value: string | number | boolean | undefined): string | undefined {
  if (value === undefined || value === false || value === "") return undefined;
  return String(value);
}

const byteUnits: Record<string, number> = { "": 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `16777216`, `16MiB`, `512KiB` -> bytes. */
function byteSetting(value: string | number | boolean | undefined): number | undefined {
  const text = textSetting(value);
  if (text === undefined) return undefined;
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = byteUnits[(match?.[2] ?? "").toLowerCase()];
  if (!match || unit === undefined) {
    throw new HoardError("INVALID_ARGUMENT", `gcs: invalid chunk size "${text}": use bytes or KiB/MiB/GiB, e.g. 16MiB`);
  }
  return Number(match[1]) * unit;
}
