import type { Readable } from "node:stream";

/** One object in a storage, with its key relative to the storage's root. */
export interface StorageObject {
  key: string;
  size: number;
  lastModified?: Date;
}

export interface UploadOptions {
  /** Aborts the upload; a partial object is never left behind. */
  signal?: AbortSignal;
  /** Exact size when known in advance (file mode); lets a store pick a single-request upload. */
  contentLength?: number;
  /** Called with the number of bytes sent so far. */
  onProgress?: (bytes: number) => void;
}

export interface DownloadOptions {
  signal?: AbortSignal;
}

/**
 * A place that keeps objects: a local directory, an S3 bucket, a GCS bucket. Keys are relative to
 * the prefix the storage was created with, use `/` as separator and never start with one.
 */
export interface Storage {
  /** The storage's URL with secrets removed, for messages. */
  readonly url: string;
  /** Identifies the kind of store, e.g. `file`, `s3`, `gs`. */
  readonly scheme: string;
  /** Size and time of an object, or undefined when there is none. */
  stat(key: string): Promise<StorageObject | undefined>;
  exists(key: string): Promise<boolean>;
  /** Every object whose key starts with `prefix`, in no particular order, across all pages. */
  list(prefix?: string): AsyncIterable<StorageObject>;
  /**
   * Stores the stream under `key`. Either the whole object appears, or nothing does: a failure or
   * abort removes partial data (multipart uploads are aborted, files renamed only when complete).
   */
  upload(key: string, body: Readable, options?: UploadOptions): Promise<StorageObject>;
  /** The object's bytes; fails with NOT_FOUND when there is no such key. */
  download(key: string, options?: DownloadOptions): Promise<Readable>;
  /** Removes an object; a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Copies an object inside this storage, server-side where the store can. */
  copy(sourceKey: string, targetKey: string): Promise<void>;
}
