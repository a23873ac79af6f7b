/**
 * One hoard backup through the library API, for bench/run.ts while the CLI is not built. It is
 * what `hoard backup` will do: a PostgreSQL driver, a storage from the URL, one `backup()` call.
 * run.ts transpiles this file to plain JavaScript and runs it with `node`, so no TypeScript loader
 * adds to the memory being measured.
 *
 *   library-backup --repository-root DIR --database-url URL --storage-url URL --mode stream|file
 *                  --prefix P [--compression gzip|zstd|none] [--compression-level N] [--encrypt-to age1...]...
 *                  [--storage-arg=--s3-endpoint=http://...]...
 *
 * Prints the result, `{"key","size","durationMs"}`, as JSON on stdout; exits 1 with a message on
 * stderr when the backup fails.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { BackupMode, Storage, StorageSettings } from "../packages/core/dist/index.js";
import { backup, createLocalStorage, openStorage, schemeOf } from "../packages/core/dist/index.js";
import { createPostgresDriver } from "../packages/driver-postgresql/dist/index.js";

/** The options of one run. */
interface LibraryBackupOptions {
  repositoryRoot: string;
  databaseUrl: string;
  storageUrl: string;
  mode: BackupMode;
  prefix: string;
  /** gzip level; hoard's default (6) when undefined. */
  compressionLevel: number | undefined;
  /** gzip, zstd or none; hoard's default (gzip) when undefined. */
  compression: "gzip" | "zstd" | "none" | undefined;
  /** age recipients; none: not encrypted. */
  encryptTo: string[];
  storageArguments: string[];
}

function parseOptions(argv: string[]): LibraryBackupOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      "repository-root": { type: "string" },
      "database-url": { type: "string" },
      "storage-url": { type: "string" },
      mode: { type: "string", default: "stream" },
      prefix: { type: "string", default: "bench" },
      "compression-level": { type: "string" },
      compression: { type: "string" },
      "encrypt-to": { type: "string", multiple: true, default: [] },
      "storage-arg": { type: "string", multiple: true, default: [] },
    },
    strict: true,
  });
  const required = (name: "repository-root" | "database-url" | "storage-url"): string => {
    const value = values[name];
    if (value === undefined) throw new Error(`--${name} is required`);
    return value;
  };
  if (values.mode !== "stream" && values.mode !== "file") throw new Error(`--mode must be stream or file, not ${values.mode}`);
  return {
    repositoryRoot: required("repository-root"),
    databaseUrl: required("database-url"),
    storageUrl: required("storage-url"),
    mode: values.mode,
    prefix: values.prefix,
    compressionLevel: values["compression-level"] === undefined ? undefined : Number(values["compression-level"]),
    compression: values.compression as LibraryBackupOptions["compression"],
    encryptTo: values["encrypt-to"],
    storageArguments: values["storage-arg"],
  };
}

/**
 * Turns CLI-style storage arguments into the settings a storage plugin takes, as the CLI will:
 * `--s3-endpoint=http://x` -> `{ s3Endpoint: "http://x" }`, a bare `--flag` -> `{ flag: true }`.
 */
function storageSettingsOf(storageArguments: readonly string[]): StorageSettings {
  const settings: StorageSettings = {};
  for (const argument of storageArguments) {
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/i.exec(argument);
    if (match?.[1] === undefined) throw new Error(`storage argument ${argument} is not --name or --name=value`);
    const name = match[1].replace(/-([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
    settings[name] = match[2] ?? true;
  }
  return settings;
}

/**
 * A local directory directly, any other URL through core's registry, importing the storage
 * package (e.g. @hoard/storage-s3) from where the CLI's workspace links it.
 */
async function openTargetStorage(options: LibraryBackupOptions): Promise<Storage> {
  if (schemeOf(options.storageUrl) === "file") return createLocalStorage({ directory: options.storageUrl });
  const require = createRequire(join(options.repositoryRoot, "apps", "cli", "package.json"));
  const importer = (specifier: string) => import(pathToFileURL(require.resolve(specifier)).href);
  return openStorage(options.storageUrl, storageSettingsOf(options.storageArguments), importer);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const storage = await openTargetStorage(options);
  const driver = createPostgresDriver({ url: options.databaseUrl });
  const result = await backup({
    driver,
    storage,
    mode: options.mode,
    prefix: options.prefix,
    compression: options.compression,
    compressionLevel: options.compressionLevel,
    encryption: options.encryptTo.length > 0 ? { recipients: options.encryptTo } : undefined,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`library-backup: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
