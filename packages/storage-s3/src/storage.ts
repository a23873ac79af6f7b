import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as delay } from "node:timers/promises";
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  paginateListObjectsV2,
  type S3Client,
  type StorageClass,
} from "@aws-sdk/client-s3";
import type {
  DownloadOptions,
  RequestOptions,
  Storage,
  StorageObject,
  StorageSettings,
  SweepOptions,
  SweptItem,
  UploadOptions,
} from "@hoard/core";
import { HoardError } from "@hoard/core";
import { byteCounter, existsVia, guardDownload, objectNaming, toHoardError } from "@hoard/core/plugin";
import { createClient } from "./client.js";
import { type ErrorContext, httpStatusOf, isCredentialError, missingBucketError, silenceError, toS3Error } from "./errors.js";
import { copyInParts } from "./multipart-copy.js";
import { resolveOptions, type S3StorageOptions, s3OptionsFromUrl } from "./options.js";
import { wasSilenced } from "./silence.js";
import { uploadInParts } from "./upload.js";

/**
 * Storage in an S3 bucket (AWS or any S3-compatible service). The S3 client is created on first
 * use. Uploads stream in parts that grow with the stream (see upload.ts), with bounded memory; a
 * failed or aborted multipart upload is aborted on the server so no parts are left behind. Every write is
 * conditional (`If-None-Match: *`), so an existing object is never replaced.
 */
export function createS3Storage(options: S3StorageOptions): Storage {
  const settings = resolveOptions(options);
  const { bucket, prefix, endpoint, timeoutMs } = settings;
  let client: S3Client | undefined;
  let bucketConfirmed = false;
  const s3 = (): S3Client => {
    client ??= createClient(settings);
    return client;
  };
  const contextFor = (operation: string, objectKey?: string): ErrorContext => ({ operation, bucket, objectKey, endpoint, timeoutMs });
  const naming = objectNaming("s3", prefix);
  const objectKeyOf = naming.objectName;
  const fullPrefixOf = naming.listPrefix;
  const writeParameters = {
    ...(settings.serverSideEncryption && { ServerSideEncryption: settings.serverSideEncryption }),
    ...(settings.sseKmsKeyId && { SSEKMSKeyId: settings.sseKmsKeyId }),
    ...(settings.storageClass && { StorageClass: settings.storageClass as StorageClass }),
  };
  const abortedError = (context: ErrorContext, cause?: unknown): HoardError =>
    new HoardError("ABORTED", `s3: ${context.operation} of ${objectUrl(context.objectKey)} was aborted`, { cause });
  const objectUrl = (objectKey: string | undefined): string => `s3://${bucket}${objectKey === undefined ? "" : `/${objectKey}`}`;
  /** The error to throw for a failed request: ABORTED only when the caller's signal fired. */
  const fail = (error: unknown, context: ErrorContext, signal: AbortSignal | undefined): HoardError =>
    signal?.aborted ? abortedError(context, error) : toS3Error(error, context);

  /** A 404 from HeadObject does not say whether the key or the bucket is missing: ask once. */
  async function confirmBucket(signal: AbortSignal | undefined): Promise<void> {
    if (bucketConfirmed) return;
    try {
      await s3().send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal });
      bucketConfirmed = true;
    } catch (error) {
      if (signal?.aborted) throw abortedError(contextFor("HeadBucket"), error);
      if (httpStatusOf(error) === 404) throw missingBucketError(contextFor("HeadBucket"), error);
      // 403 and others: without s3:ListBucket nothing more can be learnt; the key is missing.
      bucketConfirmed = httpStatusOf(error) === 403;
    }
  }

  /** A 403 from HeadObject has no body: a ranged GET tells bad credentials from a denied key. */
  async function explainForbidden(objectKey: string, headError: unknown, signal: AbortSignal | undefined): Promise<HoardError> {
    const context = contextFor("HeadObject", objectKey);
    try {
      const response = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: objectKey, Range: "bytes=0-0" }), {
        abortSignal: signal,
      });
      (response.Body as Readable | undefined)?.destroy();
    } catch (error) {
      if (signal?.aborted) return abortedError(context, error);
      if (isCredentialError(error) || httpStatusOf(error) === 403) return toS3Error(error, context);
    }
    return toS3Error(headError, context);
  }

  async function statKey(key: string, signal?: AbortSignal): Promise<StorageObject | undefined> {
    const objectKey = objectKeyOf(key);
    const context = contextFor("HeadObject", objectKey);
    try {
      const head = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: signal });
      return { key, size: head.ContentLength ?? 0, lastModified: head.LastModified };
    } catch (error) {
      if (signal?.aborted) throw abortedError(context, error);
      const status = httpStatusOf(error);
      if (status === 404) {
        await confirmBucket(signal);
        return undefined;
      }
      if (status === 403) throw await explainForbidden(objectKey, error, signal);
      throw toS3Error(error, context);
    }
  }

  /**
   * Sends AbortMultipartUpload, ignoring "no such upload": the upload may already be gone. Used
   * after a failure, it gives up after a while rather than hang on a silent endpoint.
   */
  /**
   * Aborts a multipart upload until the store no longer knows it. A part whose request was still
   * being processed when the abort ran may still be stored, and bring the upload back (S3's
   * documentation says to abort again until ListParts finds nothing; versitygw was seen to do it).
   */
  async function abortMultipartUpload(objectKey: string, uploadId: string | undefined, signal?: AbortSignal): Promise<void> {
    if (!uploadId) return;
    const request = () => ({ abortSignal: signal ?? AbortSignal.timeout(2 * timeoutMs) });
    for (let attempt = 1; ; attempt += 1) {
      try {
        await s3().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: objectKey, UploadId: uploadId }), request());
      } catch (error) {
        if (httpStatusOf(error) !== 404) throw fail(error, contextFor("AbortMultipartUpload", objectKey), signal);
      }
      // Gone (404), or the check is not allowed or fails: nothing more can be done here; a later
      // prune's sweep removes what is left.
      const gone = await s3()
        .send(new ListPartsCommand({ Bucket: bucket, Key: objectKey, UploadId: uploadId }), request())
        .then(
          () => false,
          () => true,
        );
      if (gone || attempt >= 5 || signal?.aborted) return;
      await delay(100 * attempt);
    }
  }

  async function upload(key: string, body: Readable, uploadOptions: UploadOptions = {}): Promise<StorageObject> {
    const objectKey = naming.uploadName(key, body);
    const { signal, contentLength, onProgress } = uploadOptions;
    if (signal?.aborted) {
      body.destroy();
      throw new HoardError("ABORTED", `s3: upload of s3://${bucket}/${objectKey} aborted before it started`);
    }
    const counter = byteCounter();
    // The pipeline tears the counter down when the source fails or the signal fires; the upload
    // then stops reading, cancels the parts in flight and aborts the multipart upload.
    let sourceError: unknown;
    const feeding = pipeline(body, counter, signal ? { signal } : {}).catch((error: unknown) => {
      sourceError ??= error;
    });
    // The caller's signal also cancels the requests in flight, so an abort does not wait for a
    // hung request.
    const requests = new AbortController();
    const onAbort = () => requests.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let uploadId: string | undefined;
    try {
      const size = await uploadInParts({
        client: s3(),
        bucket,
        key: objectKey,
        body: counter,
        partSize: settings.partSize,
        contentLength,
        growth: settings.partGrowth,
        queueSize: settings.queueSize,
        writeParameters,
        signal: requests.signal,
        onProgress,
        onStarted: (id) => {
          uploadId = id;
        },
        abortUpload: async (id) => {
          await abortMultipartUpload(objectKey, id);
          uploadId = undefined;
        },
      });
      return { key, size };
    } catch (error) {
      counter.destroy();
      await feeding;
      // When the source breaks, the upload fails with the source's own error; when S3 fails, the
      // pipeline only reports that the counter was torn down.
      const sourceFailed = sourceError !== undefined && error === sourceError;
      // The upload aborts the multipart upload itself; trying again covers a failed abort.
      await abortMultipartUpload(objectKey, uploadId).catch(() => undefined);
      if (signal?.aborted) {
        throw new HoardError("ABORTED", `s3: upload of s3://${bucket}/${objectKey} aborted; nothing was stored`, { cause: error });
      }
      if (sourceFailed) {
        throw toHoardError(sourceError, "STORAGE_FAILED", `s3: upload of s3://${bucket}/${objectKey} stopped: its source failed`);
      }
      throw toS3Error(error, contextFor("upload", objectKey));
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async function download(key: string, downloadOptions: DownloadOptions = {}): Promise<Readable> {
    const objectKey = objectKeyOf(key);
    const { signal } = downloadOptions;
    const context = contextFor("GetObject", objectKey);
    let body: unknown;
    let socket: unknown;
    const command = new GetObjectCommand({ Bucket: bucket, Key: objectKey });
    // The raw response's socket, to tell a silence from a reset if the body fails later.
    command.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        socket = (result.response as { body?: { socket?: unknown } } | undefined)?.body?.socket;
        return result;
      },
      { step: "deserialize", name: "hoardResponseSocket" },
    );
    try {
      const response = await s3().send(command, { abortSignal: signal });
      body = response.Body;
    } catch (error) {
      throw fail(error, context, signal);
    }
    if (!(body instanceof Readable)) {
      throw new HoardError("STORAGE_FAILED", `s3: GetObject returned no readable body for s3://${bucket}/${objectKey}`);
    }
    if (signal?.aborted) {
      body.destroy();
      throw abortedError(context, signal.reason);
    }
    // The socket's silence timer closes it, and the body only sees the connection reset.
    return guardDownload(body, {
      signal,
      aborted: (cause) => abortedError(context, cause),
      failed: (error) => (wasSilenced(socket) ? silenceError(context, error) : toS3Error(error, context)),
    });
  }

  async function* list(listPrefix = "", requestOptions: RequestOptions = {}): AsyncGenerator<StorageObject> {
    // No trimming: "backup/" must not match "backups-1".
    const fullPrefix = fullPrefixOf(listPrefix);
    const { signal } = requestOptions;
    const pages = paginateListObjectsV2({ client: s3(), pageSize: 1000 }, { Bucket: bucket, Prefix: fullPrefix }, { abortSignal: signal });
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          // Keys ending in "/" are folder markers made by consoles, not objects hoard wrote.
          if (!object.Key || object.Key.endsWith("/")) continue;
          yield { key: naming.keyOf(object.Key), size: object.Size ?? 0, lastModified: object.LastModified };
        }
      }
    } catch (error) {
      throw fail(error, contextFor("ListObjectsV2", fullPrefix), signal);
    }
  }

  async function copy(sourceKey: string, targetKey: string, requestOptions: RequestOptions = {}): Promise<void> {
    const sourceObjectKey = objectKeyOf(sourceKey);
    const targetObjectKey = objectKeyOf(targetKey);
    const { signal } = requestOptions;
    const source = await statKey(sourceKey, signal);
    if (!source) throw new HoardError("NOT_FOUND", `s3: cannot copy s3://${bucket}/${sourceObjectKey}: it does not exist`);
    // The copy itself is conditional (If-None-Match), which AWS S3 decides atomically; this look-up
    // first gives the same answer on services that ignore the condition on copies (versitygw).
    if (await statKey(targetKey, signal)) {
      throw new HoardError("ALREADY_EXISTS", `s3: s3://${bucket}/${targetObjectKey} already exists; not overwriting it`);
    }
    const copySource = `${bucket}/${sourceObjectKey.split("/").map(encodeURIComponent).join("/")}`;
    if (source.size <= settings.multipartCopyThreshold || source.size === 0) {
      try {
        await s3().send(
          new CopyObjectCommand({ Bucket: bucket, Key: targetObjectKey, CopySource: copySource, IfNoneMatch: "*", ...writeParameters }),
          { abortSignal: signal },
        );
      } catch (error) {
        throw fail(error, contextFor("CopyObject", targetObjectKey), signal);
      }
      return;
    }
    try {
      await copyInParts({
        client: s3(),
        bucket,
        copySource,
        targetKey: targetObjectKey,
        size: source.size,
        partSize: settings.copyPartSize,
        concurrency: settings.queueSize,
        writeParameters,
        signal,
      });
    } catch (error) {
      throw fail(error, contextFor("multipart copy", targetObjectKey), signal);
    }
  }

  /**
   * Aborts the multipart uploads under `prefix` that were started before `before`: what uploads
   * killed outright (kill -9, a lost machine) leave behind, holding storage until aborted.
   */
  async function sweep(sweepOptions: SweepOptions): Promise<SweptItem[]> {
    const { before, signal, keyMatches } = sweepOptions;
    const fullPrefix = fullPrefixOf(sweepOptions.prefix ?? "");
    const context = contextFor("ListMultipartUploads", fullPrefix);
    const swept: SweptItem[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page: Awaited<ReturnType<typeof listUploads>>;
      try {
        page = await listUploads(fullPrefix, keyMarker, uploadIdMarker, signal);
      } catch (error) {
        throw fail(error, context, signal);
      }
      for (const open of page.Uploads ?? []) {
        if (!open.Key || !open.UploadId || !open.Initiated || open.Initiated >= before) continue;
        if (prefix && !open.Key.startsWith(`${prefix}/`)) continue;
        const key = naming.keyOf(open.Key);
        if (keyMatches && !keyMatches(key)) continue;
        await abortMultipartUpload(open.Key, open.UploadId, signal ?? AbortSignal.timeout(4 * timeoutMs));
        swept.push({ key, kind: "multipart upload", startedAt: open.Initiated });
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined);
    return swept;
  }

  function listUploads(listPrefix: string, keyMarker: string | undefined, uploadIdMarker: string | undefined, signal?: AbortSignal) {
    return s3().send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: listPrefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      { abortSignal: signal },
    );
  }

  const stat = (key: string, requestOptions?: RequestOptions) => statKey(key, requestOptions?.signal);
  return {
    url: prefix ? `s3://${bucket}/${prefix}` : `s3://${bucket}`,
    scheme: "s3",
    stat,
    exists: existsVia(stat),
    list,
    upload,
    download,
    async delete(key, requestOptions = {}) {
      const objectKey = objectKeyOf(key);
      const { signal } = requestOptions;
      try {
        await s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: signal });
      } catch (error) {
        throw fail(error, contextFor("DeleteObject", objectKey), signal);
      }
    },
    copy,
    sweep,
  };
}

/** The registry's entry point: `s3://bucket/prefix` plus `s3*` settings to a Storage. */
export function createStorageFromUrl(url: string, settings: StorageSettings = {}): Storage {
  return createS3Storage(s3OptionsFromUrl(url, settings));
}
