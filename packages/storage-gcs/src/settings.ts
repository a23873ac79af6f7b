import { defineSettings } from "@hoard/core/plugin";

/** GCS takes resumable chunks in multiples of 256 KiB. */
export const chunkGranularity = 256 * 1024;
export const defaultChunkSize = 16 * 1024 * 1024;

/**
 * The GCS storage's settings (`--gcs-*` flags, `HOARD_GCS_*` variables), besides the common
 * `timeoutMs`. Inline credentials are secrets: environment only (HOARD_GCS_CLIENT_EMAIL,
 * HOARD_GCS_PRIVATE_KEY), never flags.
 */
export const settings = defineSettings("gcs", "Google Cloud Storage", [
  { name: "gcsProject", kind: "string", help: "project id" },
  { name: "gcsKeyFile", kind: "string", help: "service-account key file (default: Application Default Credentials)" },
  { name: "gcsEndpoint", kind: "string", help: "API endpoint, for emulators" },
  { name: "gcsStorageClass", kind: "string", help: "storage class, e.g. NEARLINE" },
  {
    name: "gcsChunkSize",
    kind: "bytes",
    default: defaultChunkSize,
    check: (value) =>
      Number(value) % chunkGranularity === 0 ? undefined : `must be a multiple of 256 KiB (${chunkGranularity} bytes), e.g. 16MiB`,
    help: "resumable upload chunk, e.g. 16MiB (memory: about two chunks)",
  },
  {
    name: "gcsClientEmail",
    flag: "gcs-client-email",
    kind: "string",
    secret: true,
    help: "Google Cloud service-account email, with HOARD_GCS_PRIVATE_KEY",
  },
  {
    name: "gcsPrivateKey",
    flag: "gcs-private-key",
    kind: "string",
    secret: true,
    help: "Google Cloud service-account private key (PEM), with HOARD_GCS_CLIENT_EMAIL",
  },
]);
