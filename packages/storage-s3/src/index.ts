/**
 * @hoard/storage-s3: hoard storage for Amazon S3 and S3-compatible services (MinIO, versitygw,
 * Ceph, Cloudflare R2, ...). The registry in @hoard/core loads it for `s3://bucket/prefix` URLs.
 */

export { parseByteSize } from "@hoard/core/plugin";
export { type S3Credentials, type S3StorageOptions, type S3StorageSettings, s3OptionsFromUrl } from "./options.js";
export { settings } from "./settings.js";
export { createS3Storage, createStorageFromUrl } from "./storage.js";
