import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { defaultNetworkTimeoutMs, HoardError, redactUrl } from "@hoard/core";
import { parseBucketUrl, readStorageSettings, type SettingDeclaration, type StorageSettingsBag, trimSlashes } from "@hoard/core/plugin";
import {
  settings as declaredSettings,
  defaultPartSize,
  defaultQueueSize,
  maximumPartSize,
  maximumQueueSize,
  minimumPartSize,
} from "./settings.js";
import { silenceAgents } from "./silence.js";

export const mebibyte = 1024 * 1024;
/** Parts of a stream grow to at least 1/800 of the bytes sent before them (see upload.ts). */
export const defaultPartGrowth = 800;
/** The largest number of parts in a multipart upload. */
export const maximumParts = 10_000;
/** The largest object a single CopyObject request can copy. */
export const maximumCopyObjectSize = maximumPartSize;

/** Static credentials; without them the AWS SDK's default provider chain is used. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** For temporary credentials (STS). */
  sessionToken?: string;
}

/** Where and how an S3 storage keeps its objects. Only `bucket` is required. */
export interface S3StorageOptions {
  /** The bucket that holds the objects. It must exist: hoard never creates buckets. */
  bucket: string;
  /**
   * Key prefix inside the bucket, like a folder: key `a.gz` is stored as `<prefix>/a.gz`.
   * @default "" (the bucket's root)
   */
  prefix?: string;
  /**
   * AWS region of the bucket. Requests to a bucket in another AWS region are redirected.
   * @default the AWS SDK's region chain (AWS_REGION, the profile's region), else `us-east-1`
   */
  region?: string;
  /**
   * URL of an S3-compatible service instead of AWS, e.g. `http://127.0.0.1:7070` (MinIO, versitygw,
   * Ceph) or `https://<account>.r2.cloudflarestorage.com`.
   * @default AWS S3 for the region
   */
  endpoint?: string;
  /**
   * Path-style URLs (`endpoint/bucket/key`) instead of virtual-hosted ones (`bucket.endpoint/key`).
   * Most self-hosted S3-compatible services need path style.
   * @default true when `endpoint` is set, false otherwise
   */
  forcePathStyle?: boolean;
  /**
   * Static credentials.
   * @default the AWS SDK's default provider chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
   * AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws, SSO, web identity, ECS and EC2 instance roles
   */
  credentials?: S3Credentials;
  /**
   * Bytes per part of a multipart upload, from 5 MiB to 5 GiB. Bodies smaller than one part go up
   * in a single PutObject; uploads of known length use parts of one size, raised as needed to fit
   * in 10,000 parts. Streams of unknown length start with this size and grow their parts once
   * `partSize × 800` bytes are sent: each part is then 1/800 of the bytes sent before it (rounded
   * up to a MiB, at most 1 GiB), so any stream up to S3's 5 TiB object limit fits in 10,000 parts.
   * A stream upload holds about `(queueSize + 1) × ` the current part size of live buffers (the
   * parts in flight and the part being filled).
   * @default 8 MiB (32 MiB of buffers with queueSize 3 up to 6.25 GiB; 512 MiB at 100 GiB, 2 GiB
   * at 500 GiB, 4 GiB from 800 GiB to 5 TiB; see docs/s3.md)
   */
  partSize?: number;
  /**
   * Parts sent at the same time, by uploads and by multipart copies. Each extra part in flight
   * costs one part's bytes of memory during stream uploads.
   * @default 3
   */
  queueSize?: number;
  /**
   * How fast the parts of a stream grow: each part is at least 1/partGrowth of the bytes sent
   * before it. Lower values grow sooner; tests use a small one to see growth on a small stream.
   * Values above 800 may not reach 5 TiB in 10,000 parts.
   * @internal
   * @default 800
   */
  partGrowth?: number;
  /**
   * Server-side encryption of stored objects: `AES256` (SSE-S3) or `aws:kms` (SSE-KMS).
   * @default none requested (the bucket's default encryption applies)
   */
  serverSideEncryption?: "AES256" | "aws:kms";
  /**
   * KMS key ID or ARN for `aws:kms`; setting it implies `serverSideEncryption: "aws:kms"`.
   * @default the account's AWS managed key (`aws/s3`)
   */
  sseKmsKeyId?: string;
  /**
   * Storage class of stored objects, e.g. `STANDARD`, `STANDARD_IA`, `ONEZONE_IA`, `INTELLIGENT_TIERING`,
   * `GLACIER_IR`. Objects in `GLACIER` or `DEEP_ARCHIVE` must be restored before hoard can read them.
   * @default the service's default (`STANDARD` on AWS)
   */
  storageClass?: string;
  /**
   * Objects larger than this are copied with a multipart copy (UploadPartCopy); smaller ones with
   * one CopyObject request. At most 5 GiB, CopyObject's limit.
   * @default 5 GiB
   */
  multipartCopyThreshold?: number;
  /**
   * Bytes per part of a multipart copy, from 5 MiB to 5 GiB; raised when an object would need more
   * than 10,000 parts.
   * @default 512 MiB
   */
  copyPartSize?: number;
  /**
   * Attempts per request, including the first, for errors worth retrying (throttling, 5xx, network).
   * Attempts that end in silence (see `timeoutMs`) are limited to three, so that a silent endpoint
   * fails a call within about a minute.
   * @default 3
   */
  maxAttempts?: number;
  /**
   * How long to wait for a TCP connection before giving up on an attempt, in milliseconds.
   * @default 10_000, or `timeoutMs` when that is shorter
   */
  connectionTimeoutMs?: number;
  /**
   * How long a request may go without sending or receiving a byte before the attempt is given up,
   * in milliseconds: the silence is timed, not the transfer, so a slow upload or download that
   * keeps moving is not cut, nor is a download waiting for a slow reader. Retries included, an
   * endpoint that accepts connections and never answers fails the call with UNREACHABLE within
   * about three times this, and within a minute whatever `maxAttempts` says. An upload also
   * counts as silence the time the operating system takes to send the bytes it has buffered: on
   * links slower than about 300 KB/s, raise it. The CLI's `--timeout`, the setting `timeoutMs`.
   * @default 15_000 (`defaultNetworkTimeoutMs` of `@hoard/core`)
   */
  timeoutMs?: number;
}

/** The options checked, with every default filled in. */
export interface ResolvedOptions {
  bucket: string;
  prefix: string;
  endpoint: string | undefined;
  partSize: number;
  queueSize: number;
  partGrowth: number;
  serverSideEncryption: "AES256" | "aws:kms" | undefined;
  sseKmsKeyId: string | undefined;
  storageClass: string | undefined;
  multipartCopyThreshold: number;
  copyPartSize: number;
  /** Silence, in milliseconds, after which an attempt is given up. */
  timeoutMs: number;
  /** Attempts per request when every attempt ends in silence or a connection timeout. */
  silentAttempts: number;
  clientConfig: S3ClientConfig;
}

function invalid(message: string): HoardError {
  return new HoardError("INVALID_ARGUMENT", `s3: ${message}`);
}

function checkInteger(name: string, value: number, minimum: number, maximum = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < minimum || value > maximum) {
    throw invalid(`${name} must be a whole number from ${minimum} to ${maximum}, got ${value}`);
  }
  return value;
}

/** Validates the options and fills in the defaults, so mistakes surface before the first request. */
export function resolveOptions(options: S3StorageOptions): ResolvedOptions {
  if (!options.bucket || /[/\s]/.test(options.bucket)) throw invalid(`invalid bucket name "${options.bucket}"`);
  let endpoint: string | undefined;
  if (options.endpoint !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(options.endpoint);
    } catch {
      throw invalid(`invalid endpoint ${redactUrl(options.endpoint)}: use a URL such as http://127.0.0.1:7070`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw invalid(`endpoint ${redactUrl(options.endpoint)} must be http or https`);
    }
    endpoint = redactUrl(options.endpoint).replace(/\/$/, "");
  }
  const serverSideEncryption = options.serverSideEncryption ?? (options.sseKmsKeyId ? "aws:kms" : undefined);
  if (serverSideEncryption !== undefined && serverSideEncryption !== "AES256" && serverSideEncryption !== "aws:kms") {
    throw invalid(`unknown server-side encryption "${String(serverSideEncryption)}": use AES256 or aws:kms`);
  }
  if (options.sseKmsKeyId && serverSideEncryption !== "aws:kms") throw invalid("a KMS key ID needs server-side encryption aws:kms");
  const credentials = options.credentials;
  if (credentials && (!credentials.accessKeyId || !credentials.secretAccessKey)) {
    throw invalid("credentials need both an access key ID and a secret access key");
  }
  const timeoutMs = checkInteger("timeoutMs", options.timeoutMs ?? defaultNetworkTimeoutMs, 1);
  const connectionTimeoutMs = checkInteger("connectionTimeoutMs", options.connectionTimeoutMs ?? Math.min(10_000, timeoutMs), 1);
  const maxAttempts = checkInteger("maxAttempts", options.maxAttempts ?? 3, 1, 20);
  return {
    bucket: options.bucket,
    prefix: trimSlashes(options.prefix ?? ""),
    endpoint,
    partSize: checkInteger("partSize", options.partSize ?? defaultPartSize, minimumPartSize, maximumPartSize),
    queueSize: checkInteger("queueSize", options.queueSize ?? defaultQueueSize, 1, maximumQueueSize),
    partGrowth: checkInteger("partGrowth", options.partGrowth ?? defaultPartGrowth, 1),
    serverSideEncryption,
    sseKmsKeyId: options.sseKmsKeyId,
    storageClass: options.storageClass,
    multipartCopyThreshold: checkInteger(
      "multipartCopyThreshold",
      options.multipartCopyThreshold ?? maximumCopyObjectSize,
      0,
      maximumCopyObjectSize,
    ),
    copyPartSize: checkInteger("copyPartSize", options.copyPartSize ?? 512 * mebibyte, minimumPartSize, maximumCopyObjectSize),
    timeoutMs,
    silentAttempts: silentAttemptsFor(Math.max(connectionTimeoutMs, timeoutMs), maxAttempts),
    clientConfig: {
      region: options.region ?? memoized(regionOrDefault),
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
      credentials: credentials && {
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        ...(credentials.sessionToken && { sessionToken: credentials.sessionToken }),
      },
      maxAttempts,
      followRegionRedirects: true,
      // The agents time the silence on each socket (see silence.ts); the handler's own socket
      // timeout stays off, and its requestTimeout would time whole transfers.
      requestHandler: { connectionTimeout: connectionTimeoutMs, socketTimeout: 0, ...silenceAgents(timeoutMs) },
    },
  };
}

/** How long all silent attempts of one call may take together. */
const silenceBudgetMs = 55_000;

/** Attempts that end in silence before a call gives up, whatever `maxAttempts` says. */
const maximumSilentAttempts = 3;

/**
 * How many attempts a call gets when each one ends in silence: at most three (and `maxAttempts`),
 * fewer when three would take more than a minute, and at least one.
 */
export function silentAttemptsFor(longestWaitMs: number, maxAttempts: number): number {
  return Math.max(1, Math.min(maxAttempts, maximumSilentAttempts, Math.floor(silenceBudgetMs / longestWaitMs)));
}

/**
 * The region the AWS SDK finds on its own (AWS_REGION, the profile), or `us-east-1` when nothing
 * names one: S3-compatible services mostly ignore the region, and AWS redirects to the bucket's.
 */
async function regionOrDefault(): Promise<string> {
  const probe = new S3Client({});
  try {
    return await probe.config.region();
  } catch {
    return "us-east-1";
  } finally {
    probe.destroy();
  }
}

/** Calls `provide` once, on first use; the SDK asks for the region before every request. */
function memoized<T>(provide: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= provide();
    return value;
  };
}

/**
 * The settings `createStorageFromUrl` reads: the declared ones (see `./settings`, the CLI's
 * `--s3-*` flags), static credentials for library callers, and the common `timeoutMs`. Values may
 * be strings (as they come from the command line or the environment) or already typed.
 */
export interface S3StorageSettings {
  /** `--s3-endpoint`: URL of an S3-compatible service. */
  s3Endpoint?: string;
  /** `--s3-region` */
  s3Region?: string;
  /** `--s3-force-path-style`: `true` or `false`. */
  s3ForcePathStyle?: boolean | string;
  /** Static credentials (no flag: library callers only); needs `s3SecretAccessKey`. */
  s3AccessKeyId?: string;
  s3SecretAccessKey?: string;
  /** For temporary credentials. */
  s3SessionToken?: string;
  /** `--s3-sse`: `AES256` or `aws:kms`. */
  s3Sse?: string;
  /** `--s3-sse-kms-key-id`; implies `aws:kms`. */
  s3SseKmsKeyId?: string;
  /** `--s3-storage-class`, e.g. `STANDARD_IA`. */
  s3StorageClass?: string;
  /** `--s3-part-size`: bytes, or a size such as `16MiB`, `64M` (units are powers of 1024). */
  s3PartSize?: number | string;
  /** `--s3-queue-size`: parts sent at the same time. */
  s3QueueSize?: number | string;
  /**
   * Common to every storage (`--timeout`): milliseconds a request may wait without a byte before
   * the attempt is given up. @default 15_000
   */
  timeoutMs?: number | string;
}

/** Static credentials: settings a library caller may pass, never flags (argv is visible to every user). */
const credentialSettings: readonly SettingDeclaration[] = [
  { name: "s3AccessKeyId", kind: "string", help: "access key ID" },
  { name: "s3SecretAccessKey", kind: "string", help: "secret access key", secret: true },
  { name: "s3SessionToken", kind: "string", help: "session token", secret: true },
];

/**
 * Turns `s3://bucket/prefix` and the `s3*` settings (see {@link S3StorageSettings}) into S3 storage
 * options. Settings of other plugins are ignored. Credentials not given here come from the AWS
 * SDK's default provider chain.
 */
export function s3OptionsFromUrl(url: string, bag: StorageSettingsBag = {}): S3StorageOptions {
  const { bucket, prefix } = parseBucketUrl("s3", "s3", url, "--s3-* flags or AWS_* variables");
  const { common, values } = readStorageSettings(declaredSettings, bag, credentialSettings);
  const text = (name: string) => values[name] as string | undefined;
  const accessKeyId = text("s3AccessKeyId");
  const secretAccessKey = text("s3SecretAccessKey");
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new HoardError("INVALID_ARGUMENT", "s3: --s3-access-key-id and --s3-secret-access-key go together: pass both or neither");
  }
  const sessionToken = text("s3SessionToken");
  if (sessionToken && !accessKeyId) {
    throw new HoardError("INVALID_ARGUMENT", "s3: --s3-session-token needs --s3-access-key-id and --s3-secret-access-key");
  }
  return {
    bucket,
    prefix,
    region: text("s3Region"),
    endpoint: text("s3Endpoint"),
    forcePathStyle: values.s3ForcePathStyle as boolean | undefined,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) } : undefined,
    serverSideEncryption: values.s3Sse as S3StorageOptions["serverSideEncryption"],
    sseKmsKeyId: text("s3SseKmsKeyId"),
    storageClass: text("s3StorageClass")?.toUpperCase(),
    partSize: values.s3PartSize as number,
    queueSize: values.s3QueueSize as number,
    ...common,
  };
}
