import { defaultNetworkTimeoutMs, HoardError, trimSlashes } from "@hoard/core";

/** GCS takes resumable chunks in multiples of 256 KiB. */
const chunkGranularity = 256 * 1024;
export const defaultChunkSize = 16 * 1024 * 1024;
export const defaultEndpoint = "https://storage.googleapis.com";

/** Inline service-account credentials: the `client_email` and `private_key` fields of a JSON key. */
export interface GcsCredentials {
  client_email: string;
  /** The PEM private key. Literal `\n` sequences (as environment variables often carry them) are turned into newlines. */
  private_key: string;
}

/** Options of `createGcsStorage`. Without credentials options, Application Default Credentials are used. */
export interface GcsStorageOptions {
  /** The bucket that holds the objects. It must exist: hoard never creates buckets. */
  bucket: string;
  /**
   * A folder inside the bucket: every key is stored under `<prefix>/`, and listings only see keys below it.
   * @default "" (the bucket's root)
   */
  prefix?: string;
  /**
   * The Google Cloud project id. Object operations do not need it; it is passed to the client for completeness.
   * @default the project of the credentials or of `GOOGLE_CLOUD_PROJECT`
   */
  projectId?: string;
  /**
   * Path to a service-account JSON key file.
   * @default Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, `gcloud auth application-default login`,
   * or the metadata server on Google Cloud)
   */
  keyFilename?: string;
  /**
   * Inline service-account credentials, for when a key file is impractical (containers, secret managers).
   * Give either this or `keyFilename`, not both.
   * @default Application Default Credentials
   */
  credentials?: GcsCredentials;
  /**
   * The API endpoint, for emulators such as fake-gcs-server (`http://127.0.0.1:4443`). Requests to an endpoint outside
   * googleapis.com are sent without credentials, as emulators expect. `host:port` means `http://host:port`.
   * @default `STORAGE_EMULATOR_HOST` when set, else https://storage.googleapis.com
   */
  apiEndpoint?: string;
  /**
   * Bytes sent per request of a resumable upload: a positive multiple of 256 KiB. Memory: an upload holds about two
   * chunks (the one being sent, kept to resend it after a network error, and the next), so 16 MiB chunks cost about
   * 32 MiB per running upload. Larger chunks mean fewer requests and more throughput. An object that fits in one chunk
   * is sent in a single request.
   * @default 16 MiB (16777216)
   */
  chunkSize?: number;
  /**
   * Storage class of new objects, e.g. `NEARLINE`, `COLDLINE` or `ARCHIVE`.
   * @default the bucket's default storage class
   */
  storageClass?: string;
  /**
   * How many times a request that failed for a transient reason (HTTP 408, 429, 5xx, a dropped connection) is retried,
   * with exponential back-off. 0 turns retries off.
   * @default 3
   */
  maxRetries?: number;
  /**
   * How long, in milliseconds, a request may wait without an answer before it is given up: an upload or a download
   * fails after this long without a byte moving (a slow transfer that keeps moving is not cut; time spent waiting for
   * the upload's source or for a download's reader does not count), and a listing, look-up, delete or copy request
   * after this long without its answer (retried, but the call fails within about three times this plus 3 s). The error
   * is UNREACHABLE and names the endpoint. The CLI's `--timeout`, the setting `timeoutMs`.
   * @default 15_000 (`defaultNetworkTimeoutMs` of `@hoard/core`)
   */
  timeoutMs?: number;
}

/** The options checked, with defaults applied and the endpoint normalised. */
export interface ResolvedOptions {
  bucket: string;
  /** The prefix without leading or trailing slashes, possibly empty. */
  root: string;
  projectId: string | undefined;
  keyFilename: string | undefined;
  credentials: GcsCredentials | undefined;
  /** The custom endpoint, or undefined for Google Cloud Storage itself. */
  endpoint: string | undefined;
  chunkSize: number;
  storageClass: string | undefined;
  maxRetries: number;
  timeoutMs: number;
}

/** Checks the options (INVALID_ARGUMENT for a wrong one) and fills in the defaults. */
export function resolveOptions(options: GcsStorageOptions): ResolvedOptions {
  if (!options.bucket) throw new HoardError("INVALID_ARGUMENT", "gcs: a bucket name is required");
  const chunkSize = options.chunkSize ?? defaultChunkSize;
  if (!Number.isInteger(chunkSize) || chunkSize <= 0 || chunkSize % chunkGranularity !== 0) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `gcs: chunk size ${chunkSize} must be a positive multiple of 256 KiB (${chunkGranularity} bytes)`,
    );
  }
  const maxRetries = options.maxRetries ?? 3;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new HoardError("INVALID_ARGUMENT", `gcs: the number of retries must be a whole number of at least 0, not ${maxRetries}`);
  }
  const timeoutMs = options.timeoutMs ?? defaultNetworkTimeoutMs;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
    throw new HoardError("INVALID_ARGUMENT", `gcs: the timeout must be a positive whole number of milliseconds, not ${timeoutMs}`);
  }
  if (options.keyFilename && options.credentials) {
    throw new HoardError("INVALID_ARGUMENT", "gcs: give either a key file or inline credentials, not both");
  }
  const endpoint = options.apiEndpoint || process.env.STORAGE_EMULATOR_HOST;
  return {
    bucket: options.bucket,
    root: trimSlashes(options.prefix ?? ""),
    projectId: options.projectId || undefined,
    keyFilename: options.keyFilename || undefined,
    credentials: options.credentials && {
      client_email: options.credentials.client_email,
      private_key: options.credentials.private_key.replace(/\\n/g, "\n"),
    },
    endpoint: endpoint ? normalizeEndpoint(endpoint) : undefined,
    chunkSize,
    storageClass: options.storageClass || undefined,
    maxRetries,
    timeoutMs,
  };
}

const sizeUnits: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Parses `16777216`, `16MiB`, `16M`, `16mb` or `512KiB` into bytes; units are powers of 1024. The same forms as
 * `--s3-part-size` takes.
 */
export function parseByteSize(value: string): number | undefined {
  const match = /^(\d+)\s*(?:([kmg])(?:i?b)?|b)?$/i.exec(value.trim());
  if (!match) return undefined;
  return Number(match[1]) * (sizeUnits[(match[2] ?? "").toLowerCase()] as number);
}

function normalizeEndpoint(endpoint: string): string {
  // STORAGE_EMULATOR_HOST is often `host:port`, and emulators speak plain HTTP.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `http://${endpoint}`;
  return withScheme.replace(/\/+$/, "").replace(/\/storage\/v1$/, "");
}

/** True for Google's own hosts (including private endpoints), which need credentials; emulators must not get them. */
export function isGoogleHost(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host === "googleapis.com" || host.endsWith(".googleapis.com");
}
