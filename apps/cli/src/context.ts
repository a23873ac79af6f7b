import {
  type Driver,
  type DriverSettings,
  defaultNetworkTimeoutMs,
  HoardError,
  type Logger,
  openDriver,
  openStorage,
  redactUrl,
  type Storage,
  type StorageSettings,
} from "@hoard/core";
import type { Argv } from "yargs";
import { byteSizeOption, durationOption, integerOption } from "./arguments.js";
import { environmentVariable, ignoredVariables } from "./environment.js";
import { createStderrLogger } from "./output.js";

/** Packages resolve from the CLI's own install, where users add the plugins they need. */
const importFromCli = (specifier: string) => import(specifier);

/** Options every command has. */
export interface GlobalArguments {
  debug: boolean;
  quiet: boolean;
  /** Milliseconds, from `--timeout 15s`. */
  timeout: number;
}

const parseTimeout = durationOption("timeout");
const parsePartSize = byteSizeOption("s3-part-size");
const parseQueueSize = integerOption("s3-queue-size", 1);
const parseChunkSize = byteSizeOption("gcs-chunk-size");

export function withGlobalOptions<T>(yargs: Argv<T>) {
  return yargs
    .option("debug", { type: "boolean", default: false, describe: "show tool output and stack traces", global: true })
    .option("quiet", { type: "boolean", default: false, describe: "log nothing to stderr but errors", global: true })
    .option("timeout", {
      type: "string",
      default: `${defaultNetworkTimeoutMs / 1000}s`,
      coerce: parseTimeout,
      global: true,
      describe:
        "how long a silent storage endpoint or database host is waited for, e.g. 30s; with retries a silent one fails within about four times this",
    });
}

/** Storage options, shared by every command. Secrets are not among them: they come from the environment. */
export interface StorageArguments {
  s3Endpoint?: string;
  s3Region?: string;
  s3ForcePathStyle?: boolean;
  s3Sse?: string;
  s3SseKmsKeyId?: string;
  s3StorageClass?: string;
  /** Bytes. */
  s3PartSize?: number;
  s3QueueSize?: number;
  gcsProject?: string;
  gcsKeyFile?: string;
  gcsEndpoint?: string;
  gcsStorageClass?: string;
  /** Bytes. */
  gcsChunkSize?: number;
}

export function withStorageOptions<T>(yargs: Argv<T>) {
  return yargs
    .option("s3-endpoint", { type: "string", group: "S3:", describe: "endpoint of an S3-compatible service, e.g. http://127.0.0.1:7070" })
    .option("s3-region", { type: "string", group: "S3:", describe: "region (default: from the AWS configuration, else us-east-1)" })
    .option("s3-force-path-style", {
      type: "boolean",
      group: "S3:",
      describe: "address buckets as http://endpoint/bucket (most S3-compatible services)",
    })
    .option("s3-sse", { type: "string", group: "S3:", choices: ["AES256", "aws:kms"], describe: "server-side encryption" })
    .option("s3-sse-kms-key-id", { type: "string", group: "S3:", describe: "KMS key for --s3-sse aws:kms" })
    .option("s3-storage-class", { type: "string", group: "S3:", describe: "storage class, e.g. STANDARD_IA" })
    .option("s3-part-size", {
      type: "string",
      coerce: parsePartSize,
      group: "S3:",
      describe: "multipart part size, e.g. 16MiB (memory: part size x (queue size + 2))",
    })
    .option("s3-queue-size", { type: "string", coerce: parseQueueSize, group: "S3:", describe: "parts uploaded at once (a whole number)" })
    .option("gcs-project", { type: "string", group: "Google Cloud Storage:", describe: "project id" })
    .option("gcs-key-file", {
      type: "string",
      group: "Google Cloud Storage:",
      describe: "service-account key file (default: Application Default Credentials)",
    })
    .option("gcs-endpoint", { type: "string", group: "Google Cloud Storage:", describe: "API endpoint, for emulators" })
    .option("gcs-storage-class", { type: "string", group: "Google Cloud Storage:", describe: "storage class, e.g. NEARLINE" })
    .option("gcs-chunk-size", {
      type: "string",
      coerce: parseChunkSize,
      group: "Google Cloud Storage:",
      describe: "resumable upload chunk, e.g. 16MiB (memory: about two chunks)",
    });
}

export function storageSettings(args: StorageArguments & Pick<GlobalArguments, "timeout">): StorageSettings {
  return {
    timeoutMs: args.timeout,
    s3Endpoint: args.s3Endpoint,
    s3Region: args.s3Region,
    s3ForcePathStyle: args.s3ForcePathStyle,
    s3Sse: args.s3Sse,
    s3SseKmsKeyId: args.s3SseKmsKeyId,
    s3StorageClass: args.s3StorageClass,
    s3PartSize: args.s3PartSize,
    s3QueueSize: args.s3QueueSize,
    gcsProject: args.gcsProject,
    gcsKeyFile: args.gcsKeyFile,
    gcsEndpoint: args.gcsEndpoint,
    gcsStorageClass: args.gcsStorageClass,
    gcsChunkSize: args.gcsChunkSize,
    // Inline service-account credentials only from the environment, never from argv.
    gcsClientEmail: environmentVariable("HOARD_GCS_CLIENT_EMAIL"),
    gcsPrivateKey: environmentVariable("HOARD_GCS_PRIVATE_KEY"),
  };
}

export function createLogger(args: GlobalArguments): Logger & { finish(): void } {
  if (args.quiet) return { event() {}, finish() {} };
  const logger = createStderrLogger({ debug: args.debug, progress: process.stderr.isTTY === true });
  for (const name of ignoredVariables()) {
    logger.event({ type: "log", level: "debug", message: `ignoring ${name}: no option of this command and not a variable hoard reads` });
  }
  return logger;
}

/**
 * Opens the storage before any work starts. A URL or setting the plugin cannot make sense of is a
 * usage error (exit 2), whatever the plugin threw, and the message never repeats a secret.
 */
export async function openCliStorage(url: string, args: StorageArguments & Pick<GlobalArguments, "timeout">): Promise<Storage> {
  try {
    return await openStorage(url, storageSettings(args), importFromCli);
  } catch (error) {
    throw openingError(error, "storage", url);
  }
}

/** Settings every driver gets from the command line and the environment. */
export function driverSettings(args: Pick<GlobalArguments, "timeout">, logger: Logger, settings: DriverSettings): DriverSettings {
  const engine = environmentVariable("HOARD_MONGODB_ENGINE");
  return { ...settings, logger, connectTimeoutMs: args.timeout, ...(engine !== undefined && { engine }) };
}

export async function openCliDriver(url: string, settings: DriverSettings): Promise<Driver> {
  try {
    return await openDriver(url, settings, importFromCli);
  } catch (error) {
    throw openingError(error, "database", url);
  }
}

/** HoardErrors stand (the plugin wrote them for the user); anything else (a URIError, a TypeError) means the URL is malformed. */
function openingError(error: unknown, what: "storage" | "database", url: string): unknown {
  if (HoardError.isInstance(error)) return error;
  const reason = error instanceof URIError ? "bad percent-encoding" : "it does not parse";
  return new HoardError("INVALID_ARGUMENT", `invalid ${what} URL ${redactUrl(url)}: ${reason}`, { cause: error });
}
