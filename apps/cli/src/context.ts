import { type Driver, type DriverSettings, type Logger, openDriver, openStorage, type Storage, type StorageSettings } from "@hoard/core";
import type { Argv } from "yargs";
import { createStderrLogger } from "./output.js";

/** Packages resolve from the CLI's own install, where users add the plugins they need. */
const importFromCli = (specifier: string) => import(specifier);

/** Options every command has. */
export interface GlobalArguments {
  debug: boolean;
  quiet: boolean;
}

/** Storage options, shared by every command. Secrets are not among them: they come from the environment. */
export interface StorageArguments {
  s3Endpoint?: string;
  s3Region?: string;
  s3ForcePathStyle?: boolean;
  s3Sse?: string;
  s3SseKmsKeyId?: string;
  s3StorageClass?: string;
  s3PartSize?: string;
  s3QueueSize?: number;
  gcsProject?: string;
  gcsKeyFile?: string;
  gcsEndpoint?: string;
  gcsStorageClass?: string;
  gcsChunkSize?: string;
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
      group: "S3:",
      describe: "multipart part size, e.g. 16MiB (memory: part size x (queue size + 2))",
    })
    .option("s3-queue-size", { type: "number", group: "S3:", describe: "parts uploaded at once" })
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
      group: "Google Cloud Storage:",
      describe: "resumable upload chunk, e.g. 16MiB (memory: about two chunks)",
    });
}

export function storageSettings(args: StorageArguments): StorageSettings {
  return {
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
    gcsClientEmail: process.env.HOARD_GCS_CLIENT_EMAIL,
    gcsPrivateKey: process.env.HOARD_GCS_PRIVATE_KEY,
  };
}

export function createLogger(args: GlobalArguments): Logger & { finish(): void } {
  if (args.quiet) return { event() {}, finish() {} };
  return createStderrLogger({ debug: args.debug, progress: process.stderr.isTTY === true });
}

export function openCliStorage(url: string, args: StorageArguments): Promise<Storage> {
  return openStorage(url, storageSettings(args), importFromCli);
}

export function openCliDriver(url: string, settings: DriverSettings): Promise<Driver> {
  return openDriver(url, settings, importFromCli);
}

/** An AbortSignal that fires on SIGINT or SIGTERM, for one-shot commands. */
export function interruptSignal(logger: Logger): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    logger.event({ type: "log", level: "warn", message: `${name} received: stopping and cleaning up` });
    controller.abort();
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
