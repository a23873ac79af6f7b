import { defineSettings } from "@hoard/core/plugin";

const mebibyte = 1024 * 1024;
/** S3's smallest part (except the last one). */
export const minimumPartSize = 5 * mebibyte;
/** The largest part, and the largest object a single CopyObject request can copy. */
export const maximumPartSize = 5 * 1024 * mebibyte;
export const defaultPartSize = 8 * mebibyte;
export const defaultQueueSize = 3;
export const maximumQueueSize = 64;
export const encryptions = ["AES256", "aws:kms"] as const;

/**
 * The S3 storage's settings (`--s3-*` flags, `HOARD_S3_*` variables), besides the common
 * `timeoutMs`. Credentials are not among them: the AWS SDK's chain finds them (AWS_* variables,
 * profiles, roles).
 */
export const settings = defineSettings("s3", "S3", [
  { name: "s3Endpoint", kind: "string", help: "endpoint of an S3-compatible service, e.g. http://127.0.0.1:7070" },
  { name: "s3Region", kind: "string", help: "region (default: from the AWS configuration, else us-east-1)" },
  {
    name: "s3ForcePathStyle",
    kind: "boolean",
    help: "address buckets as http://endpoint/bucket (most S3-compatible services; default: true with --s3-endpoint)",
  },
  { name: "s3Sse", kind: "choice", choices: encryptions, help: "server-side encryption" },
  { name: "s3SseKmsKeyId", kind: "string", help: "KMS key for --s3-sse aws:kms (implies it)" },
  { name: "s3StorageClass", kind: "string", help: "storage class, e.g. STANDARD_IA" },
  {
    name: "s3PartSize",
    kind: "bytes",
    minimum: minimumPartSize,
    maximum: maximumPartSize,
    default: defaultPartSize,
    help: "part size of multipart uploads, e.g. 16MiB; a stream's parts grow after 800 parts (memory: part size x (queue size + 1))",
  },
  {
    name: "s3QueueSize",
    kind: "integer",
    minimum: 1,
    maximum: maximumQueueSize,
    default: defaultQueueSize,
    help: "parts uploaded at once (a whole number)",
  },
]);
