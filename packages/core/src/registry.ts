import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Driver } from "./driver.js";
import { HoardError } from "./errors.js";
import type { Logger } from "./logger.js";
import { createLocalStorage } from "./storage/local.js";
import type { CommonStorageSettings, Storage } from "./storage.js";
import { redactUrl, schemeOf } from "./url.js";

/** Options a driver gets besides its URL. */
export interface DriverSettings {
  /** Extra arguments for the dump tool, passed through as they are. */
  dumpOptions?: string[];
  /** Extra arguments for the restore tool, passed through as they are. */
  restoreOptions?: string[];
  logger?: Logger;
  /**
   * How long to wait for the database server to accept a connection and answer, in milliseconds;
   * a host that accepts TCP and never answers fails with UNREACHABLE naming the host.
   * @default 15_000
   */
  connectTimeoutMs?: number;
}

/** Options a storage gets besides its URL, e.g. `{ s3Endpoint: "http://..." }`; each plugin documents its own. */
export type StorageSettings = CommonStorageSettings & Record<string, string | number | boolean | undefined>;

/** What a driver package exports for the registry. */
export interface DriverPlugin {
  createDriverFromUrl(url: string, settings: DriverSettings): Driver | Promise<Driver>;
}

/** What a storage package exports for the registry. */
export interface StoragePlugin {
  createStorageFromUrl(url: string, settings: StorageSettings): Storage | Promise<Storage>;
}

/** Which package implements each scheme. */
export const driverPackages: Readonly<Record<string, string>> = {
  postgresql: "@hoard/driver-postgresql",
  postgres: "@hoard/driver-postgresql",
  mariadb: "@hoard/driver-mariadb",
  mysql: "@hoard/driver-mariadb",
  mongodb: "@hoard/driver-mongodb",
  "mongodb+srv": "@hoard/driver-mongodb",
};

export const storagePackages: Readonly<Record<string, string>> = {
  s3: "@hoard/storage-s3",
  gs: "@hoard/storage-gcs",
};

/** Loads a package by name; the CLI passes its own so packages resolve from where it is installed. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

const customDrivers = new Map<string, DriverPlugin>();
const customStorages = new Map<string, StoragePlugin>();

/** Adds or replaces the driver for a scheme, for drivers outside the @hoard packages. */
export function registerDriver(scheme: string, plugin: DriverPlugin): void {
  customDrivers.set(scheme.toLowerCase(), plugin);
}

export function registerStorage(scheme: string, plugin: StoragePlugin): void {
  customStorages.set(scheme.toLowerCase(), plugin);
}

/** Imports from this package's location, then from the working directory's node_modules. */
export const defaultImporter: ModuleImporter = async (specifier) => {
  try {
    return await import(specifier);
  } catch (error) {
    if (!isMissingModule(error, specifier)) throw error;
    const require = createRequire(join(process.cwd(), "noop.js"));
    let resolved: string;
    try {
      resolved = require.resolve(specifier);
    } catch {
      throw error;
    }
    return import(pathToFileURL(resolved).toString());
  }
};

function isMissingModule(error: unknown, specifier: string): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : "";
  return (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") && message.includes(specifier);
}

async function loadPlugin<T>(
  kind: "driver" | "storage",
  scheme: string,
  specifier: string,
  importer: ModuleImporter,
  method: string,
): Promise<T> {
  let loaded: unknown;
  try {
    loaded = await importer(specifier);
  } catch (error) {
    if (isMissingModule(error, specifier)) {
      throw new HoardError(
        "PLUGIN_NOT_INSTALLED",
        `${scheme}:// ${kind === "driver" ? "databases need" : "storage needs"} ${specifier}: install it with \`npm install ${specifier}\``,
        { cause: error },
      );
    }
    throw error;
  }
  if (typeof (loaded as Record<string, unknown>)[method] !== "function") {
    throw new HoardError("INTERNAL", `${specifier} does not export ${method}(): is it a hoard ${kind} package?`);
  }
  return loaded as T;
}

/** Creates the driver for a database URL, importing its package on first use. */
export async function openDriver(url: string, settings: DriverSettings = {}, importer: ModuleImporter = defaultImporter): Promise<Driver> {
  const scheme = schemeOf(url);
  const custom = customDrivers.get(scheme);
  if (custom) return custom.createDriverFromUrl(url, settings);
  const specifier = driverPackages[scheme];
  if (!specifier) {
    throw new HoardError(
      "UNKNOWN_SCHEME",
      `unsupported database URL ${redactUrl(url)}: use one of ${Object.keys(driverPackages)
        .map((name) => `${name}://`)
        .join(", ")}`,
    );
  }
  const plugin = await loadPlugin<DriverPlugin>("driver", scheme, specifier, importer, "createDriverFromUrl");
  return plugin.createDriverFromUrl(url, settings);
}

/** Creates the storage for a storage URL (`s3://`, `gs://`, `file://` or a plain path). */
export async function openStorage(
  url: string,
  settings: StorageSettings = {},
  importer: ModuleImporter = defaultImporter,
): Promise<Storage> {
  const scheme = schemeOf(url);
  const custom = customStorages.get(scheme);
  if (custom) return custom.createStorageFromUrl(url, settings);
  if (scheme === "file") return createLocalStorage({ directory: url });
  const specifier = storagePackages[scheme];
  if (!specifier) {
    throw new HoardError(
      "UNKNOWN_SCHEME",
      `unsupported storage URL ${redactUrl(url)}: use s3://bucket/prefix, gs://bucket/prefix, file:///directory or a path`,
    );
  }
  const plugin = await loadPlugin<StoragePlugin>("storage", scheme, specifier, importer, "createStorageFromUrl");
  return plugin.createStorageFromUrl(url, settings);
}
