import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Driver } from "./driver.js";
import { HoardError } from "./errors.js";
import type { Logger } from "./logger.js";
import type { PluginSettings } from "./plugin/settings.js";
import { createLocalStorage } from "./storage/local.js";
import type { CommonStorageSettings, Storage } from "./storage.js";
import { redactUrl, schemeOf } from "./url.js";

/**
 * Options a driver gets besides its URL: the ones below, common to every driver, plus the settings
 * the driver declares in its `./settings` (e.g. `mongodbEngine`), as text or typed values.
 */
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
  /** The driver's own declared settings, read with `readSettings` from `@hoard/core/plugin`. */
  [setting: string]: unknown;
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

export type PluginKind = "driver" | "storage";

/** One package of the table below: what it is and which URL schemes it opens. */
export interface PluginPackage {
  kind: PluginKind;
  /** The npm package; it exports `createDriverFromUrl` or `createStorageFromUrl`, and `settings` from `<package>/settings`. */
  name: string;
  schemes: readonly string[];
}

/**
 * Which package implements each scheme: THE table of plugins. Adding a store or a driver is one
 * line here (the CLI's flags, environment variables and help come from the package's `./settings`).
 */
export const pluginPackages: readonly PluginPackage[] = [
  { kind: "storage", name: "@hoard/storage-s3", schemes: ["s3"] },
  { kind: "storage", name: "@hoard/storage-gcs", schemes: ["gs"] },
  { kind: "driver", name: "@hoard/driver-postgresql", schemes: ["postgresql", "postgres"] },
  { kind: "driver", name: "@hoard/driver-mariadb", schemes: ["mariadb", "mysql"] },
  { kind: "driver", name: "@hoard/driver-mongodb", schemes: ["mongodb", "mongodb+srv"] },
  { kind: "driver", name: "@hoard/driver-sqlite", schemes: ["sqlite"] },
];

function packagesByScheme(kind: PluginKind): Readonly<Record<string, string>> {
  const table: Record<string, string> = {};
  for (const plugin of pluginPackages) {
    if (plugin.kind !== kind) continue;
    for (const scheme of plugin.schemes) table[scheme] = plugin.name;
  }
  return Object.freeze(table);
}

/** Scheme -> driver package, from {@link pluginPackages}. */
export const driverPackages: Readonly<Record<string, string>> = packagesByScheme("driver");

/** Scheme -> storage package, from {@link pluginPackages}. */
export const storagePackages: Readonly<Record<string, string>> = packagesByScheme("storage");

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

/** `@scope/name/sub/path` -> `@scope/name`; `name/sub` -> `name`. */
function packageNameOf(specifier: string): string {
  const parts = specifier.split("/");
  return parts.slice(0, specifier.startsWith("@") ? 2 : 1).join("/");
}

/**
 * Whether the import failed because the package (or this very specifier) is not installed, as
 * opposed to a file missing inside an installed package or an error while loading it.
 */
function isMissingModule(error: unknown, specifier: string): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : "";
  if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") return false;
  return message.includes(`'${specifier}'`) || message.includes(`'${packageNameOf(specifier)}'`) || message.includes(`"${specifier}"`);
}

/** An installed package without the requested subpath in its `exports`. */
function isMissingSubpath(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ERR_PACKAGE_PATH_NOT_EXPORTED";
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
    // Installed but broken (a file missing from its build, a syntax error): a bug to report, naming
    // the package, never to be taken for a bad URL by whoever opens it.
    const reason = error instanceof Error ? error.message : String(error);
    throw new HoardError("INTERNAL", `${specifier} failed to load: ${reason}`, { cause: error });
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

/** Why {@link loadPluginSettings} left a package out. */
export type SkippedReason = "not-installed" | "no-settings";

export interface LoadPluginSettingsOptions {
  /** Only drivers or only storages. @default both */
  kind?: PluginKind;
  /** Told about each package left out, e.g. for a debug line. */
  onSkipped?: (plugin: PluginPackage, reason: SkippedReason) => void;
}

/**
 * The settings declarations of every package in {@link pluginPackages} that can be imported, in
 * the table's order, each imported from `<package>/settings` (which loads no SDK and no tool code).
 * A package that is not installed is skipped; so is an installed one whose `exports` has no
 * `./settings` (it declares nothing). Any other failure (a declaration that throws, a module
 * without `settings`) is a bug in the plugin and is thrown.
 */
export async function loadPluginSettings(
  importer: ModuleImporter = defaultImporter,
  options: LoadPluginSettingsOptions = {},
): Promise<PluginSettings[]> {
  const plugins = pluginPackages.filter((plugin) => options.kind === undefined || plugin.kind === options.kind);
  const loaded = await Promise.all(
    plugins.map(async (plugin): Promise<PluginSettings | undefined> => {
      const specifier = `${plugin.name}/settings`;
      let module: unknown;
      try {
        module = await importer(specifier);
      } catch (error) {
        const reason = isMissingModule(error, specifier) ? "not-installed" : isMissingSubpath(error) ? "no-settings" : undefined;
        if (reason === undefined) {
          throw new HoardError("INTERNAL", `${specifier} failed to load: ${error instanceof Error ? error.message : String(error)}`, {
            cause: error,
          });
        }
        options.onSkipped?.(plugin, reason);
        return undefined;
      }
      const settings = (module as { settings?: unknown } | undefined)?.settings;
      if (!isPluginSettings(settings)) {
        throw new HoardError(
          "INTERNAL",
          `${specifier} does not export \`settings\` made with defineSettings(): is it a hoard ${plugin.kind} package?`,
        );
      }
      return settings;
    }),
  );
  return loaded.filter((settings): settings is PluginSettings => settings !== undefined);
}

function isPluginSettings(value: unknown): value is PluginSettings {
  const candidate = value as Partial<PluginSettings> | undefined;
  return typeof candidate?.plugin === "string" && typeof candidate.title === "string" && Array.isArray(candidate.settings);
}
