/**
 * @hoard/storage-gcs: hoard storage for Google Cloud Storage (and emulators such as
 * fake-gcs-server). The registry in @hoard/core loads it for `gs://bucket/prefix` URLs.
 */

export { parseByteSize } from "@hoard/core/plugin";
export { type GcsCredentials, type GcsStorageOptions, gcsOptionsFromUrl } from "./options.js";
export { settings } from "./settings.js";
export { createGcsStorage, createStorageFromUrl } from "./storage.js";
