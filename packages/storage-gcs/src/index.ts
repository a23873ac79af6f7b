import { HoardError, parseStorageUrl, type Storage, type StorageSettings } from "@hoard/core";
import { createGcsStorage } from "./storage.js";

export type { GcsCredentials, GcsStorageOptions } from "./options.js";
export { createGcsStorage };

/**
 * Creates the storage for a `gs://bucket/prefix` URL; the registry in @hoard/core calls this. Settings (from the CLI):
 * `gcsProject` (--gcs-project), `gcsKeyFile` (--gcs-key-file), `gcsEndpoint` (--gcs-endpoint), and inline credentials
 * `gcsClientEmail` with `gcsPrivateKey` (HOARD_GCS_CLIENT_EMAIL, HOARD_GCS_PRIVATE_KEY).
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
  });
}

function textSetting(value: string | number | boolean | undefined): string | undefined {
  if (value === undefined || value === false || value === "") return undefined;
  return String(value);
}
