import { createPrivateKey } from "node:crypto";
import type { Readable } from "node:stream";
import { type Bucket, Storage as GoogleStorage, IdempotencyStrategy } from "@google-cloud/storage";
import { HoardError, type RequestOptions, type Storage, type StorageObject, type StorageSettings } from "@hoard/core";
import { abortable, existsVia, guardDownload, objectNaming } from "@hoard/core/plugin";
import { abortedError, type ErrorContext, missingBucketMessage, sanitizedError, silenceError, statusOf, toGcsError } from "./errors.js";
import {
  defaultEndpoint,
  type GcsStorageOptions,
  gcsOptionsFromUrl,
  isGoogleHost,
  type ResolvedOptions,
  resolveOptions,
} from "./options.js";
import { toStorageObject, uploadObject } from "./upload.js";

/** The part of an objects.list response this storage reads (it asks for only these fields). */
interface ListPage {
  items?: Array<{ name?: string; size?: string | number; updated?: string }>;
  nextPageToken?: string;
}

/**
 * A storage in a Google Cloud Storage bucket or an emulator of it. Uploads are resumable and streamed in chunks, so
 * memory stays bounded whatever the size, and a failed or aborted upload leaves no object behind; every write is
 * conditional on the object not existing (`ifGenerationMatch: 0`), so nothing is ever overwritten. The client is
 * created on first use; options are checked at once (INVALID_ARGUMENT).
 */
export function createGcsStorage(options: GcsStorageOptions): Storage {
  const resolved = resolveOptions(options);
  const { bucket: bucketName, root, endpoint, timeoutMs } = resolved;
  const naming = objectNaming("gcs", root);
  const url = `gs://${bucketName}${root ? `/${root}` : ""}`;
  const context: ErrorContext = {
    bucket: bucketName,
    endpoint: endpoint ?? defaultEndpoint,
    keyFilename: resolved.keyFilename,
    secrets: resolved.credentials ? [resolved.credentials.private_key] : [],
    timeoutMs,
  };
  // Each attempt of a request gives up after timeoutMs (the client's own timeout) and is retried; this bounds the
  // whole call, retries included.
  const callDeadlineMs = 3 * timeoutMs + 3_000;

  let bucketHandle: Bucket | undefined;
  let bucketConfirmed = false;
  const bucket = () => {
    bucketHandle ??= createClient(resolved, context).bucket(bucketName);
    return bucketHandle;
  };
  const objectName = naming.objectName;
  const listPrefixOf = naming.listPrefix;
  const objectUrl = (key: string) => `${url}/${key}`;
  const fail = (error: unknown, action: string, missing?: string) => toGcsError(error, action, context, missing);

  /**
   * Runs one request of the client: it fails with ABORTED as soon as the signal fires and with UNREACHABLE when no
   * answer came within the deadline. The client's JSON requests cannot be cancelled; they end on their own timeout.
   */
  function call<T>(action: string, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    return abortable(work, {
      signal,
      aborted: (reason) => abortedError(action, reason),
      deadlineMs: callDeadlineMs,
      deadline: () => silenceError(action, context),
    });
  }

  /**
   * GCS answers 404 for a missing object and for a missing bucket alike. After an object's 404 this tells them apart,
   * once per storage, with a one-item listing (which needs only object permissions).
   */
  async function confirmBucket(signal: AbortSignal | undefined): Promise<void> {
    if (bucketConfirmed) return;
    const action = `reading bucket ${bucketName}`;
    try {
      await call(action, signal, () => bucket().getFiles({ maxResults: 1, autoPaginate: false }));
      bucketConfirmed = true;
    } catch (error) {
      if (statusOf(error) === 403) return;
      throw fail(error, action, missingBucketMessage(bucketName));
    }
  }

  async function stat(key: string, signal?: AbortSignal): Promise<StorageObject | undefined> {
    const name = objectName(key);
    const action = `reading ${objectUrl(key)}`;
    try {
      const [metadata] = await call(action, signal, () => bucket().file(name).getMetadata());
      return toStorageObject(key, metadata);
    } catch (error) {
      if (statusOf(error) !== 404) throw fail(error, action);
      await confirmBucket(signal);
      return undefined;
    }
  }

  /**
   * The object's bytes, failing with UNREACHABLE when nothing arrives for `timeoutMs` while the reader waits for more
   * (a reader that is slower than the download is not silence), with ABORTED when the signal fires, and with a
   * HoardError naming the store for anything else: core reads other stream errors as damage to the archive.
   */
  function guardedDownload(source: Readable, target: string, signal: AbortSignal | undefined): Readable {
    const action = `downloading ${target}`;
    return guardDownload(source, {
      signal,
      aborted: (cause) => abortedError(action, cause),
      failed: (error) => fail(error, action, `gcs: ${target} does not exist`),
      // The first byte may take the client's retries of the request; after that, silence is timed.
      silence: { timeoutMs, firstByteMs: callDeadlineMs, error: () => silenceError(action, context) },
    });
  }

  return {
    url,
    scheme: "gs",
    stat: (key, requestOptions) => stat(key, requestOptions?.signal),
    exists: existsVia((key, requestOptions) => stat(key, requestOptions?.signal)),
    async *list(prefix = "", requestOptions: RequestOptions = {}) {
      const fullPrefix = listPrefixOf(prefix);
      const { signal } = requestOptions;
      const action = `listing ${url}/${prefix}`;
      let pageToken: string | undefined;
      do {
        let page: ListPage;
        try {
          const [, , response] = await call(action, signal, () =>
            bucket().getFiles({
              prefix: fullPrefix,
              autoPaginate: false,
              maxResults: 1000,
              pageToken,
              fields: "items(name,size,updated),nextPageToken",
            }),
          );
          page = (response ?? {}) as ListPage;
        } catch (error) {
          throw fail(error, action, missingBucketMessage(bucketName));
        }
        for (const item of page.items ?? []) {
          const key = item.name && naming.keyOf(item.name);
          if (key) yield { key, size: Number(item.size ?? 0), lastModified: item.updated ? new Date(item.updated) : undefined };
        }
        pageToken = page.nextPageToken || undefined;
      } while (pageToken);
    },
    async upload(key, body, uploadOptions) {
      const name = naming.uploadName(key, body);
      const target = objectUrl(key);
      return uploadObject(
        {
          file: bucket().file(name),
          key,
          url: target,
          chunkSize: resolved.chunkSize,
          storageClass: resolved.storageClass,
          authenticated: !endpoint || isGoogleHost(endpoint),
          timeoutMs,
          maxRetries: resolved.maxRetries,
          toError: (error) => fail(error, `uploading ${target}`, missingBucketMessage(bucketName)),
          silence: () => silenceError(`uploading ${target}`, context),
          exists: () => new HoardError("ALREADY_EXISTS", `gcs: ${target} already exists; not overwriting it`),
        },
        body,
        uploadOptions,
      );
    },
    async download(key, downloadOptions = {}) {
      const name = objectName(key);
      const { signal } = downloadOptions;
      const target = objectUrl(key);
      // A GCS read stream reports a missing object only once read: ask first, so a missing key fails here.
      if (!(await stat(key, signal))) throw new HoardError("NOT_FOUND", `gcs: ${target} does not exist`);
      if (signal?.aborted) throw abortedError(`downloading ${target}`, signal.reason);
      return guardedDownload(bucket().file(name).createReadStream(), target, signal);
    },
    async delete(key, requestOptions = {}) {
      const name = objectName(key);
      const { signal } = requestOptions;
      const action = `deleting ${objectUrl(key)}`;
      try {
        await call(action, signal, () => bucket().file(name).delete());
      } catch (error) {
        if (statusOf(error) !== 404) throw fail(error, action);
        await confirmBucket(signal);
      }
    },
    async copy(sourceKey, targetKey, requestOptions = {}) {
      const sourceName = objectName(sourceKey);
      const targetName = objectName(targetKey);
      const { signal } = requestOptions;
      const source = objectUrl(sourceKey);
      const target = objectUrl(targetKey);
      // The copy itself is conditional (ifGenerationMatch: 0), which GCS decides atomically; this look-up first gives
      // the same answer on emulators that ignore the condition on copies (fake-gcs-server).
      if (await stat(targetKey, signal)) throw new HoardError("ALREADY_EXISTS", `gcs: ${target} already exists; not overwriting it`);
      const action = `copying ${source} to ${target}`;
      try {
        await call(action, signal, () =>
          bucket()
            .file(sourceName)
            .copy(bucket().file(targetName), { preconditionOpts: { ifGenerationMatch: 0 } }),
        );
      } catch (error) {
        if (statusOf(error) === 412) throw new HoardError("ALREADY_EXISTS", `gcs: ${target} already exists; not overwriting it`);
        if (statusOf(error) === 404) await confirmBucket(signal);
        throw fail(error, action, `gcs: ${source} does not exist`);
      }
    },
  };
}

function createClient(options: ResolvedOptions, context: ErrorContext): GoogleStorage {
  const { credentials, endpoint, maxRetries, timeoutMs } = options;
  if (credentials) {
    try {
      createPrivateKey(credentials.private_key);
    } catch (error) {
      throw new HoardError("UNAUTHENTICATED", "gcs: the inline private key is not a valid PEM key (check HOARD_GCS_PRIVATE_KEY)", {
        cause: sanitizedError(error, context.secrets),
      });
    }
  }
  const client = new GoogleStorage({
    projectId: options.projectId,
    keyFilename: options.keyFilename,
    credentials,
    apiEndpoint: endpoint,
    useAuthWithCustomEndpoint: endpoint ? isGoogleHost(endpoint) : undefined,
    // Each attempt of a JSON request gives up after this long without its answer; uploads and downloads time their
    // silence themselves.
    timeout: timeoutMs,
    retryOptions: {
      // The client reads maxRetries 0 as "use the default": turn retries off instead.
      autoRetry: maxRetries > 0,
      maxRetries: Math.max(maxRetries, 1),
      // An upload sends the same bytes again, and delete ignores a missing object: retrying is safe here.
      idempotencyStrategy: IdempotencyStrategy.RetryAlways,
    },
  });
  // The client gives every request `timeout`, which times the whole request: an upload request timed so would be
  // cut while its body is still moving. Uploads time their silence themselves.
  type Interceptor = GoogleStorage["interceptors"][number];
  client.interceptors.push({
    request: (requestOptions) => {
      const uri = (requestOptions as { uri?: unknown }).uri;
      const upload = typeof uri === "string" && uri.includes("/upload/storage/v1/");
      return (upload ? { ...requestOptions, timeout: 0 } : requestOptions) as ReturnType<Interceptor["request"]>;
    },
  });
  // With STORAGE_EMULATOR_HOST set, the client drops `/storage/v1` from JSON API URLs, whatever apiEndpoint says.
  if (endpoint) client.baseUrl = `${endpoint}/storage/v1`;
  return client;
}

/**
 * Creates the storage for a `gs://bucket/prefix` URL and the `gcs*` settings; the registry in
 * @hoard/core calls this (see `gcsOptionsFromUrl`).
 */
export function createStorageFromUrl(url: string, settings: StorageSettings = {}): Storage {
  return createGcsStorage(gcsOptionsFromUrl(url, settings));
}
