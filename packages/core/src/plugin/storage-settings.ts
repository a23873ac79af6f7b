import { HoardError } from "../errors.js";
import type { StorageSettings } from "../registry.js";
import { parseStorageUrl, parseUrl, redactUrl } from "../url.js";
import { type PluginSettings, parseSetting, readSettings, type SettingDeclaration, type SettingValue } from "./settings.js";

/**
 * What a storage's `createStorageFromUrl` receives: the common `timeoutMs` and the storage's
 * declared settings, values as text (from a flag, the environment, a config file) or typed (from a
 * library caller).
 */
export type StorageSettingsBag = StorageSettings & Readonly<Record<string, unknown>>;

/**
 * The common storage setting `timeoutMs` as a library caller gives it: a positive whole number of
 * milliseconds, or its digits as text. (The CLI's `--timeout` takes a duration and passes
 * milliseconds.)
 */
export const storageTimeoutSetting: SettingDeclaration = {
  name: "timeoutMs",
  flag: "timeout",
  kind: "integer",
  minimum: 1,
  help: "how long a request may wait without receiving a byte, in milliseconds",
};

/** What every storage's options have in common, read out of a settings bag. */
export interface CommonStorageOptions {
  /** Unset stays unset, so the storage's default applies. */
  timeoutMs?: number;
}

/** Runs `read`, prefixing the plugin's name to an INVALID_ARGUMENT it throws: `s3: invalid --s3-part-size: ...`. */
function prefixed<T>(plugin: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (HoardError.isInstance(error) && error.code === "INVALID_ARGUMENT" && !error.message.startsWith(`${plugin}:`)) {
      throw new HoardError("INVALID_ARGUMENT", `${plugin}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/**
 * Reads a settings bag for a storage: the common `timeoutMs` (unset stays unset) and the storage's
 * declared settings ({@link readSettings}: parsed, validated, defaults filled in). INVALID_ARGUMENT
 * `<plugin>: invalid --<flag>: ...` for a bad value; a secret's value is never quoted.
 * `extra` declares settings a library caller may pass that the CLI does not offer (static
 * credentials, say): read the same way, and never shown as flags.
 */
export function readStorageSettings(
  declared: PluginSettings,
  bag: StorageSettingsBag = {},
  extra: readonly SettingDeclaration[] = [],
): { common: CommonStorageOptions; values: Record<string, SettingValue | undefined> } {
  return prefixed(declared.plugin, () => {
    const timeoutMs = parseSetting(storageTimeoutSetting, bag.timeoutMs) as number | undefined;
    const values = readSettings({ ...declared, settings: [...declared.settings, ...extra] }, bag);
    return { common: timeoutMs === undefined ? {} : { timeoutMs }, values };
  });
}

/** A bucket URL's parts: `s3://bucket/some/prefix` -> bucket `bucket`, prefix `some/prefix`. */
export interface BucketLocation {
  bucket: string;
  /** Without leading or trailing slashes; empty for the bucket's root. */
  prefix: string;
}

/**
 * Parses `<scheme>://bucket/prefix`. INVALID_ARGUMENT for another scheme, and for a URL that
 * carries credentials or a query (they would be silently ignored): `hint` says where they go
 * instead (`--s3-* flags or AWS_* variables`). Neither the user information nor the query is
 * repeated in the message: either may hold a secret.
 */
export function parseBucketUrl(plugin: string, scheme: string, url: string, hint: string): BucketLocation {
  const location = parseStorageUrl(url);
  if (location.scheme !== scheme) {
    throw new HoardError("INVALID_ARGUMENT", `${plugin}: not a ${scheme}://bucket/prefix URL: ${redactUrl(url)}`);
  }
  const parsed = parseUrl(url, "storage URL");
  if (parsed.search || parsed.username || parsed.password) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `${plugin}: ${shownWithoutSecrets(parsed)}: use ${scheme}://bucket/prefix and pass credentials and options as ${hint}`,
    );
  }
  return { bucket: location.bucket, prefix: location.path };
}

/** The URL with its user information (a key, a token, a password) and its query replaced by `***`. */
function shownWithoutSecrets(url: URL): string {
  const copy = new URL(url.href);
  const userInfo = copy.username !== "" || copy.password !== "";
  copy.username = "";
  copy.password = "";
  copy.search = "";
  copy.hash = "";
  const shown = `${userInfo ? copy.href.replace("//", "//***@") : copy.href}${url.search ? "?***" : ""}`;
  return redactUrl(shown);
}
