import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { startGcs, startS3 } from "@hoard/test-harness";

/**
 * Where hoard stores the backups it makes during a benchmark. `local` (a temporary directory) is
 * built in. Any other store is reached by passing its URL and the options hoard needs for it:
 *
 *   --storage-url s3://bench/runs --storage-arg=--s3-endpoint=http://127.0.0.1:7070
 *
 * `--storage s3` and `--storage gcs` start versitygw or fake-gcs-server on loopback with the test
 * harness (@hoard/test-harness), create a bucket, and stop the server in `close`.
 */
export interface StorageTarget {
  /** Shown in the report, e.g. `local` or `s3`. */
  name: string;
  /** The storage URL given to hoard. */
  url: string;
  /** Extra arguments for `hoard backup` (and for the library runner as --storage-arg). */
  extraArguments: string[];
  /**
   * The size in bytes of the backup stored under `prefix`: measured where the target can look
   * (local files), otherwise what `reported` finds out from hoard (its output, or `hoard list`).
   */
  storedSize(prefix: string, reported: () => Promise<number | undefined>): Promise<number | undefined>;
  /** Deletes what the runs stored, where the target can. */
  clear(): Promise<void>;
  /** Removes the target itself (a temporary directory, a server). */
  close(): Promise<void>;
}

/** The benchmark's storage options. */
export interface StorageTargetOptions {
  /** A built-in target by name. @default "local" */
  storage?: string;
  /** An existing store to use instead; its scheme names the target. */
  storageUrl?: string;
  /** Extra arguments for hoard when it uses `storageUrl`. */
  storageArguments?: string[];
  /** Parent of the temporary directory of the `local` target. */
  temporaryParent: string;
}

type TargetFactory = (options: StorageTargetOptions) => Promise<StorageTarget>;

const targetFactories: Record<string, TargetFactory> = {
  local: (options) => createLocalTarget(options.temporaryParent),
  s3: () => createS3Target(),
  gcs: () => createGcsTarget(),
};

/** versitygw on loopback; hoard's child processes get the keys through the AWS_* environment. */
async function createS3Target(): Promise<StorageTarget> {
  const server = await startS3();
  const bucket = await server.createBucket("hoard-bench");
  process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
  process.env.AWS_REGION = server.region;
  const target = await createUrlTarget(`s3://${bucket}/runs`, ["--s3-endpoint", server.endpoint, "--s3-force-path-style"]);
  return { ...target, name: "s3 (versitygw)", close: () => server.stop() };
}

/** fake-gcs-server on loopback (it keeps each upload in memory and re-hashes it: slow, not hoard's limit). */
async function createGcsTarget(): Promise<StorageTarget> {
  const server = await startGcs();
  const bucket = await server.createBucket("hoard-bench");
  const target = await createUrlTarget(`gs://${bucket}/runs`, ["--gcs-endpoint", server.endpoint, "--gcs-project", server.projectId]);
  return { ...target, name: "gcs (fake-gcs-server)", close: () => server.stop() };
}

/** Opens the storage target the options describe. */
export async function openStorageTarget(options: StorageTargetOptions): Promise<StorageTarget> {
  if (options.storageUrl !== undefined) return createUrlTarget(options.storageUrl, options.storageArguments ?? []);
  const name = options.storage ?? "local";
  const factory = targetFactories[name];
  if (factory === undefined) {
    throw new Error(`--storage ${name}: use local, s3 or gcs, or --storage-url URL with --storage-arg=... for any other store`);
  }
  return factory(options);
}

/** A temporary directory; the stored file is found and measured on disk. */
async function createLocalTarget(temporaryParent: string): Promise<StorageTarget> {
  const directory = await mkdtemp(join(temporaryParent, "hoard-bench-storage-"));
  return {
    name: "local",
    url: pathToFileURL(directory).href,
    extraArguments: [],
    async storedSize(prefix) {
      // A backup's manifest (`<name>.manifest.json`) sits beside it: only the backup counts.
      const stored = (await readdir(directory)).filter((name) => name.startsWith(`${prefix}-`) && !name.endsWith(".manifest.json"));
      if (stored.length !== 1) throw new Error(`expected one backup named ${prefix}-* in ${directory}, found ${stored.length}`);
      return (await stat(join(directory, stored[0] as string))).size;
    },
    async clear() {
      for (const name of await readdir(directory)) await rm(join(directory, name), { recursive: true, force: true });
    },
    close: () => rm(directory, { recursive: true, force: true }),
  };
}

/** A store the caller runs; the benchmark only knows what hoard reports, and leaves the objects there. */
async function createUrlTarget(url: string, extraArguments: string[]): Promise<StorageTarget> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase() ?? "file";
  return {
    name: scheme,
    url,
    extraArguments,
    storedSize: (_prefix, reported) => reported(),
    clear: async () => {},
    close: async () => {},
  };
}
