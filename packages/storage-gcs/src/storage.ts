import { createPrivateKey } from "node:crypto";
import { addAbortSignal, Readable } from "node:stream";
import { type Bucket, Storage as GoogleStorage, IdempotencyStrategy } from "@google-cloud/storage";
import { HoardError, type Storage, type StorageObject } from "@hoard/core";
import { type ErrorContext, missingBucketMessage, sanitizedError, statusOf, toGcsError } from "./errors.js";
import { defaultEndpoint, type GcsStorageOptions, isGoogleHost, type ResolvedOptions, resolveOptions } from "./options.js";
import { toStorageObject, uploadObject } from "./upload.js";

/** The part of an objects.list response this storage reads (it asks for only these fields). */
interface ListPage {
  items?: Array<{ name?: string; size?: string | number; updated?: string }>;
  nextPageToken?: string;
}

/**
 * A storage in a Google Cloud Storage bucket or an emulator of it. Uploads are resumable and streamed in chunks, so
 * memory stays bounded whatever the size, and a failed or aborted upload leaves no object behind. The client is
 * created on first use; options are checked at once (INVALID_ARGUMENT).
 */
export function createGcsStorage(options: GcsStorageOptions): Storage {
  const resolved = resolveOptions(options);
  const { bucket: bucketName, root, endpoint } = resolved;
  const rootSlash = root ? `${root}/` : "";
  const url = `gs://${bucketName}${root ? `/${root}` : ""}`;
  const context: ErrorContext = {
    bucket: bucketName,
    endpoint: endpoint ?? defaultEndpoint,
    keyFilename: resolved.keyFilename,
    secrets: resolved.credentials ? [resolved.credentials.private_key] : [],
  };

  let bucketHandle: Bucket | undefined;
  let bucketConfirmed = false;
  const bucket = () => {
    bucketHandle ??= createClient(resolved, context).bucket(bucketName);
    return bucketHandle;
  };
  const objectName = (key: string) => {
    if (!key || key.startsWith("/")) throw new HoardError("INVALID_ARGUMENT", `gcs: invalid key "${key}"`);
    return `${rootSlash}${key}`;
  };
  const objectUrl = (key: string) => `${url}/${key}`;
  const fail = (error: unknown, action: string, missing?: string) => toGcsError(error, action, context, missing);

  /**
   * GCS answers 404 for a missing object and for a missing bucket alike. After an object's 404 this tells them apart,
   * once per storage, with a one-item listing (which needs only object permissions).
   */
  async function confirmBucket(): Promise<void> {
    if (bucketConfirmed) return;
    try {
      await bucket().getFiles({ maxResults: 1, autoPaginate: false });
      bucketConfirmed = true;
    } catch (error) {
      if (statusOf(error) === 403) return;
      throw fail(error, `reading bucket ${bucketName}`, missingBucketMessage(bucketName));
    }
  }

  async function stat(key: string): Promise<StorageObject | undefined> {
    try {
      const [metadata] = await bucket().file(objectName(key)).getMetadata();
      return toStorageObject(key, metadata);
    } catch (error) {
      if (statusOf(error) !== 404) throw fail(error, `reading ${objectUrl(key)}`);
      await confirmBucket();
      return undefined;
    }
  }

  return {
    url,
    scheme: "gs",
    stat,
    async exists(key) {
      return (await stat(key)) !== undefined;
    },
    async *list(prefix = "") {
      let pageToken: string | undefined;
      do {
        let page: ListPage;
        try {
          const [, , response] = await bucket().getFiles({
            prefix: `${rootSlash}${prefix}`,
            autoPaginate: false,
            maxResults: 1000,
            pageToken,
            fields: "items(name,size,updated),nextPageToken",
          });
          page = (response ?? {}) as ListPage;
        } catch (error) {
          throw fail(error, `listing ${url}/${prefix}`, missingBucketMessage(bucketName));
        }
        for (const item of page.items ?? []) {
          const key = item.name?.slice(rootSlash.length);
          if (key) yield { key, size: Number(item.size ?? 0), lastModified: item.updated ? new Date(item.updated) : undefined };
        }
        pageToken = page.nextPageToken || undefined;
      } while (pageToken);
    },
    upload(key, body, uploadOptions) {
      const target = objectUrl(key);
      return uploadObject(
        {
          file: bucket().file(objectName(key)),
          key,
          url: target,
          chunkSize: resolved.chunkSize,
          storageClass: resolved.storageClass,
          authenticated: !endpoint || isGoogleHost(endpoint),
          toError: (error) => fail(error, `uploading ${target}`, missingBucketMessage(bucketName)),
        },
        body,
        uploadOptions,
      );
    },
    async download(key, downloadOptions = {}) {
      const target = objectUrl(key);
      // A GCS read stream reports a missing object only once read: ask first, so a missing key fails here.
      if (!(await stat(key))) throw new HoardError("NOT_FOUND", `gcs: ${target} does not exist`);
      const source = bucket().file(objectName(key)).createReadStream();
      async function* relay(): AsyncGenerator<Buffer> {
        try {
          for await (const chunk of source) yield chunk as Buffer;
        } catch (error) {
          throw fail(error, `downloading ${target}`, `gcs: ${target} does not exist`);
        }
      }
      const output = Readable.from(relay(), { objectMode: false });
      return downloadOptions.signal ? addAbortSignal(downloadOptions.signal, output) : output;
    },
    async delete(key) {
      try {
        await bucket().file(objectName(key)).delete();
      } catch (error) {
        if (statusOf(error) !== 404) throw fail(error, `deleting ${objectUrl(key)}`);
        await confirmBucket();
      }
    },
    async copy(sourceKey, targetKey) {
      const source = objectUrl(sourceKey);
      try {
        await bucket()
          .file(objectName(sourceKey))
          .copy(bucket().file(objectName(targetKey)));
      } catch (error) {
        if (statusOf(error) === 404) await confirmBucket();
        throw fail(error, `copying ${source} to ${objectUrl(targetKey)}`, `gcs: ${source} does not exist`);
      }
    },
  };
}

function createClient(options: ResolvedOptions, context: ErrorContext): GoogleStorage {
  const { credentials, endpoint, maxRetries } = options;
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
    retryOptions: {
      // The client reads maxRetries 0 as "use the default": turn retries off instead.
      autoRetry: maxRetries > 0,
      maxRetries: Math.max(maxRetries, 1),
      // An upload sends the same bytes again, and delete ignores a missing object: retrying is safe here.
      idempotencyStrategy: IdempotencyStrategy.RetryAlways,
    },
  });
  // With STORAGE_EMULATOR_HOST set, the client drops `/storage/v1` from JSON API URLs, whatever apiEndpoint says.
  if (endpoint) client.baseUrl = `${endpoint}/storage/v1`;
  return client;
}
