// Helpers for storage plugin authors (S3, GCS, ...): what every store needs besides its SDK calls.

import type { Readable } from "node:stream";
import { checkKey } from "../naming.js";
import type { RequestOptions, StorageObject } from "../storage.js";
import { trimSlashes } from "../url.js";

export { checkKey } from "../naming.js";
export { joinKey, parseStorageUrl, trimSlashes } from "../url.js";
export * from "./storage-errors.js";
export * from "./storage-settings.js";
export * from "./storage-streams.js";

/** How a store's keys map to its object names under the storage's prefix; see {@link objectNaming}. */
export interface ObjectNaming {
  /** The prefix without leading or trailing slashes, possibly empty. */
  readonly prefix: string;
  /** The object name of a key, checked ({@link checkKey}: INVALID_ARGUMENT naming the store): `prefix/key`. */
  objectName(key: string): string;
  /**
   * The object name of an upload's key: as {@link objectName}, but a refused key also destroys the
   * body, so that its producer is not left waiting on a stream nobody reads.
   */
  uploadName(key: string, body: Readable): string;
  /**
   * The object-name prefix of a listing: empty, a key, a key ending in `/`, or the start of a name
   * (`backup-`). Not trimmed: `backup/` must not match `backups-1`.
   */
  listPrefix(prefix: string): string;
  /** The key of an object name found under the prefix (a listing's item). */
  keyOf(objectName: string): string;
}

/** Key-to-object-name mapping for a store (`plugin` names it in messages) keeping its objects under `prefix`. */
export function objectNaming(plugin: string, prefix: string): ObjectNaming {
  const root = trimSlashes(prefix);
  const rootSlash = root ? `${root}/` : "";
  const objectName = (key: string) => `${rootSlash}${checkKey(key, plugin)}`;
  return {
    prefix: root,
    objectName,
    uploadName(key, body) {
      try {
        return objectName(key);
      } catch (error) {
        body.destroy();
        throw error;
      }
    },
    listPrefix(listPrefix) {
      if (listPrefix !== "") checkKey(listPrefix.endsWith("/") ? listPrefix.slice(0, -1) : listPrefix, plugin);
      return `${rootSlash}${listPrefix}`;
    },
    keyOf: (objectName) => objectName.slice(rootSlash.length),
  };
}

/** `Storage.exists` for a store whose `stat` answers undefined for a missing key. */
export function existsVia(
  stat: (key: string, options?: RequestOptions) => Promise<StorageObject | undefined>,
): (key: string, options?: RequestOptions) => Promise<boolean> {
  return async (key, options) => (await stat(key, options)) !== undefined;
}
