import { defaultNetworkTimeoutMs, HoardError } from "@hoard/core";
import { parseBucketUrl, readStorageSettings, type StorageSettingsBag, trimSlashes } from "@hoard/core/plugin";
import { chunkGranularity, defaultChunkSize, settings } from "./settings.js";

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

/**
 * Turns `gs://bucket/prefix` and the `gcs*` settings (see `./settings`: `gcsProject`, `gcsKeyFile`,
 * `gcsEndpoint`, `gcsStorageClass`, `gcsChunkSize` and the inline credentials `gcsClientEmail` with
 * `gcsPrivateKey`) plus the common `timeoutMs` into the storage's options. Settings of other
 * plugins are ignored. A URL with credentials or a query is refused (INVALID_ARGUMENT), without
 * repeating them.
 */
export function gcsOptionsFromUrl(url: string, bag: StorageSettingsBag = {}): GcsStorageOptions {
  const { bucket, prefix } = parseBucketUrl("gcs", "gs", url, "--gcs-* flags or HOARD_GCS_* variables");
  const { common, values } = readStorageSettings(settings, bag);
  const text = (name: string) => values[name] as string | undefined;
  const clientEmail = text("gcsClientEmail");
  const privateKey = text("gcsPrivateKey");
  if (Boolean(clientEmail) !== Boolean(privateKey)) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      "gcs: inline credentials need both a client email and a private key (HOARD_GCS_CLIENT_EMAIL, HOARD_GCS_PRIVATE_KEY)",
    );
  }
  return {
    bucket,
    prefix,
    projectId: text("gcsProject"),
    keyFilename: text("gcsKeyFile"),
    credentials: clientEmail && privateKey ? { client_email: clientEmail, private_key: privateKey } : undefined,
    apiEndpoint: text("gcsEndpoint"),
    storageClass: text("gcsStorageClass"),
    chunkSize: values.gcsChunkSize as number,
    ...common,
  };
}
