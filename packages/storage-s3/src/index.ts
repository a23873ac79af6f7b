/**
 * @hoard/storage-s3: hoard storage for Amazon S3 and S3-compatible services (MinIO, versitygw,
 * Ceph, Cloudflare R2, ...). The registry in @hoard/core loads it for `s3://bucket/prefix` URLs.
 */

export { createStorageFromUrl, parseByteSize, type S3StorageSettings, s3OptionsFromUrl } from "./from-url.js";
export type { S3Credentials, S3StorageOptions } from "./s3-options.js";
export { createS3Storage } from "./s3-storage.js";
