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

/** For every call that talks to the store: the signal stops waiting and fails the call with ABORTED. */
export interface RequestOptions {
  signal?: AbortSignal;
}

export interface SweepOptions extends RequestOptions {
  /** Only leftovers whose key starts with this. @default "" (everything under the storage's root) */
  prefix?: string;
  /** Only leftovers started before this time; younger ones may belong to an upload still running. */
  before: Date;
  /**
   * Only leftovers of keys for which this returns true, when given. `prefix` is a start of a key,
   * and prune's `backup-` also begins `backup-old-...`, another job's backups: prune passes the
   * exact naming rule here, and a store's sweep must honour it before removing anything.
   */
  keyMatches?: (key: string) => boolean;
}

/** Something an interrupted upload left behind and `sweep` removed. */
export interface SweptItem {
  /** The key the interrupted upload was writing. */
  key: string;
  /** What it was: e.g. `temporary file`, `multipart upload`. */
  kind: string;
  startedAt?: Date;
}

/**
 * Settings every storage plugin understands, beside its own (`s3Endpoint`, `gcsProject`, ...).
 */
export interface CommonStorageSettings {
  /**
   * How long a request may wait without receiving a byte before the attempt is given up, in
   * milliseconds. Retries included, a silent endpoint fails the call within about four times this.
   * @default 15_000
   */
  timeoutMs?: number;
}

/** The default for `timeoutMs` (storage requests) and `connectTimeoutMs` (database connections). */
export const defaultNetworkTimeoutMs = 15_000;

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
  stat(key: string, options?: RequestOptions): Promise<StorageObject | undefined>;
  exists(key: string, options?: RequestOptions): Promise<boolean>;
  /** Every object whose key starts with `prefix`, in no particular order, across all pages. */
  list(prefix?: string, options?: RequestOptions): AsyncIterable<StorageObject>;
  /**
   * Stores the stream under `key`. Either the whole object appears, or nothing does: a failure or
   * abort removes partial data (multipart uploads are aborted, files renamed only when complete).
   * An existing object is never replaced: when `key` exists, or appears while the upload runs,
   * the upload fails with ALREADY_EXISTS, decided atomically by the store (a conditional write, a
   * generation precondition, a link that cannot replace a file), never by an earlier look-up.
   */
  upload(key: string, body: Readable, options?: UploadOptions): Promise<StorageObject>;
  /** The object's bytes; fails with NOT_FOUND when there is no such key. */
  download(key: string, options?: DownloadOptions): Promise<Readable>;
  /** Removes an object; a missing key is not an error. */
  delete(key: string, options?: RequestOptions): Promise<void>;
  /** Copies an object inside this storage, server-side where the store can. */
  copy(sourceKey: string, targetKey: string, options?: RequestOptions): Promise<void>;
  /**
   * Removes what uploads that were killed (kill -9, a lost machine) left behind under `prefix`
   * and started before `before`: temporary files, open multipart uploads. Optional: a store whose
   * uploads leave nothing behind need not have it.
   */
  sweep?(options: SweepOptions): Promise<SweptItem[]>;
}
