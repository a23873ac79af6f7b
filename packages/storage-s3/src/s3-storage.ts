import { addAbortSignal, Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  S3Client,
  type StorageClass,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { DownloadOptions, Storage, StorageObject, UploadOptions } from "@hoard/core";
import { HoardError, toHoardError } from "@hoard/core";
import { copyInParts } from "./multipart-copy.js";
import { type ErrorContext, httpStatusOf, isCredentialError, missingBucketError, toS3Error } from "./s3-errors.js";
import { maximumParts, resolveOptions, type S3StorageOptions } from "./s3-options.js";

/**
 * Storage in an S3 bucket (AWS or any S3-compatible service). The S3 client is created on first
 * use. Uploads stream through `@aws-sdk/lib-storage` with bounded memory; a failed or aborted
 * multipart upload is aborted on the server so no parts are left behind.
 */
export function createS3Storage(options: S3StorageOptions): Storage {
  const settings = resolveOptions(options);
  const { bucket, prefix, endpoint } = settings;
  let client: S3Client | undefined;
  let bucketConfirmed = false;
  const s3 = (): S3Client => {
    client ??= new S3Client(settings.clientConfig);
    return client;
  };
  const contextFor = (operation: string, objectKey?: string): ErrorContext => ({ operation, bucket, objectKey, endpoint });
  const objectKeyOf = (key: string): string => {
    if (!key || key.startsWith("/")) throw new HoardError("INVALID_ARGUMENT", `s3: invalid key "${key}"`);
    return prefix ? `${prefix}/${key}` : key;
  };
  const writeParameters = {
    ...(settings.serverSideEncryption && { ServerSideEncryption: settings.serverSideEncryption }),
    ...(settings.sseKmsKeyId && { SSEKMSKeyId: settings.sseKmsKeyId }),
    ...(settings.storageClass && { StorageClass: settings.storageClass as StorageClass }),
  };

  /** A 404 from HeadObject does not say whether the key or the bucket is missing: ask once. */
  async function confirmBucket(): Promise<void> {
    if (bucketConfirmed) return;
    try {
      await s3().send(new HeadBucketCommand({ Bucket: bucket }));
      bucketConfirmed = true;
    } catch (error) {
      if (httpStatusOf(error) === 404) throw missingBucketError(contextFor("HeadBucket"), error);
      // 403 and others: without s3:ListBucket nothing more can be learnt; the key is missing.
      bucketConfirmed = httpStatusOf(error) === 403;
    }
  }

  /** A 403 from HeadObject has no body: a ranged GET tells bad credentials from a denied key. */
  async function explainForbidden(objectKey: string, headError: unknown): Promise<HoardError> {
    try {
      const response = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: objectKey, Range: "bytes=0-0" }));
      (response.Body as Readable | undefined)?.destroy();
    } catch (error) {
      if (isCredentialError(error) || httpStatusOf(error) === 403) return toS3Error(error, contextFor("HeadObject", objectKey));
    }
    return toS3Error(headError, contextFor("HeadObject", objectKey));
  }

  async function statKey(key: string): Promise<StorageObject | undefined> {
    const objectKey = objectKeyOf(key);
    try {
      const head = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey }));
      return { key, size: head.ContentLength ?? 0, lastModified: head.LastModified };
    } catch (error) {
      const status = httpStatusOf(error);
      if (status === 404) {
        await confirmBucket();
        return undefined;
      }
      if (status === 403) throw await explainForbidden(objectKey, error);
      throw toS3Error(error, contextFor("HeadObject", objectKey));
    }
  }

  /** Sends AbortMultipartUpload, ignoring "no such upload": the upload may already be gone. */
  async function abortMultipartUpload(objectKey: string, uploadId: string | undefined): Promise<void> {
    if (!uploadId) return;
    try {
      await s3().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: objectKey, UploadId: uploadId }));
    } catch (error) {
      if (httpStatusOf(error) !== 404) throw toS3Error(error, contextFor("AbortMultipartUpload", objectKey));
    }
  }

  async function upload(key: string, body: Readable, uploadOptions: UploadOptions = {}): Promise<StorageObject> {
    const objectKey = objectKeyOf(key);
    const { signal, contentLength, onProgress } = uploadOptions;
    if (signal?.aborted) {
      body.destroy();
      throw new HoardError("ABORTED", `s3: upload of s3://${bucket}/${objectKey} aborted before it started`);
    }
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    // The pipeline tears the counter down when the source fails or the signal fires; lib-storage
    // then stops reading, waits for the parts in flight and aborts the multipart upload.
    let sourceError: unknown;
    const feeding = pipeline(body, counter, signal ? { signal } : {}).catch((error: unknown) => {
      sourceError ??= error;
    });
    const partSize = Math.max(settings.partSize, Math.ceil((contentLength ?? 0) / maximumParts));
    const uploader = new Upload({
      client: s3(),
      params: { Bucket: bucket, Key: objectKey, Body: counter, ContentLength: contentLength, ...writeParameters },
      partSize,
      queueSize: settings.queueSize,
      leavePartsOnError: false,
    });
    if (onProgress) {
      uploader.on("httpUploadProgress", (progress) => {
        if (progress.loaded !== undefined) onProgress(progress.loaded);
      });
    }
    try {
      await uploader.done();
      return { key, size: bytes };
    } catch (error) {
      counter.destroy();
      await feeding;
      // When the source breaks, lib-storage fails with the source's own error; when S3 fails, the
      // pipeline only reports that the counter was torn down.
      const sourceFailed = sourceError !== undefined && error === sourceError;
      // lib-storage aborts the multipart upload itself; aborting again covers a failed abort.
      await abortMultipartUpload(objectKey, uploader.uploadId).catch(() => undefined);
      if (signal?.aborted) {
        throw new HoardError("ABORTED", `s3: upload of s3://${bucket}/${objectKey} aborted; nothing was stored`, { cause: error });
      }
      if (sourceFailed) {
        throw toHoardError(sourceError, "STORAGE_FAILED", `s3: upload of s3://${bucket}/${objectKey} stopped: its source failed`);
      }
      if (error instanceof Error && /Exceeded \d+ parts/.test(error.message)) {
        throw new HoardError(
          "STORAGE_FAILED",
          `s3: s3://${bucket}/${objectKey} is larger than ${maximumParts} parts of ${partSize} bytes: raise --s3-part-size`,
          { cause: error },
        );
      }
      throw toS3Error(error, contextFor("upload", objectKey));
    }
  }

  async function download(key: string, downloadOptions: DownloadOptions = {}): Promise<Readable> {
    const objectKey = objectKeyOf(key);
    try {
      const response = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }), { abortSignal: downloadOptions.signal });
      const body = response.Body;
      if (!(body instanceof Readable)) {
        throw new HoardError("STORAGE_FAILED", `s3: GetObject returned no readable body for s3://${bucket}/${objectKey}`);
      }
      return downloadOptions.signal ? addAbortSignal(downloadOptions.signal, body) : body;
    } catch (error) {
      throw toS3Error(error, contextFor("GetObject", objectKey));
    }
  }

  async function* list(listPrefix = ""): AsyncGenerator<StorageObject> {
    // No trimming: "backup/" must not match "backups-1".
    const fullPrefix = prefix ? `${prefix}/${listPrefix}` : listPrefix;
    const pages = paginateListObjectsV2({ client: s3(), pageSize: 1000 }, { Bucket: bucket, Prefix: fullPrefix });
    try {
      for await (const page of pages) {
        for (const object of page.Contents ?? []) {
          // Keys ending in "/" are folder markers made by consoles, not objects hoard wrote.
          if (!object.Key || object.Key.endsWith("/")) continue;
          const key = prefix ? object.Key.slice(prefix.length + 1) : object.Key;
          yield { key, size: object.Size ?? 0, lastModified: object.LastModified };
        }
      }
    } catch (error) {
      throw toS3Error(error, contextFor("ListObjectsV2", fullPrefix));
    }
  }

  async function copy(sourceKey: string, targetKey: string): Promise<void> {
    const sourceObjectKey = objectKeyOf(sourceKey);
    const targetObjectKey = objectKeyOf(targetKey);
    const source = await statKey(sourceKey);
    if (!source) throw new HoardError("NOT_FOUND", `s3: cannot copy s3://${bucket}/${sourceObjectKey}: it does not exist`);
    const copySource = `${bucket}/${sourceObjectKey.split("/").map(encodeURIComponent).join("/")}`;
    if (source.size <= settings.multipartCopyThreshold || source.size === 0) {
      try {
        await s3().send(new CopyObjectCommand({ Bucket: bucket, Key: targetObjectKey, CopySource: copySource, ...writeParameters }));
      } catch (error) {
        throw toS3Error(error, contextFor("CopyObject", targetObjectKey));
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
      });
    } catch (error) {
      throw toS3Error(error, contextFor("multipart copy", targetObjectKey));
    }
  }

  return {
    url: prefix ? `s3://${bucket}/${prefix}` : `s3://${bucket}`,
    scheme: "s3",
    stat: statKey,
    async exists(key) {
      return (await statKey(key)) !== undefined;
    },
    list,
    upload,
    download,
    async delete(key) {
      const objectKey = objectKeyOf(key);
      try {
        await s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey }));
      } catch (error) {
        throw toS3Error(error, contextFor("DeleteObject", objectKey));
      }
    },
    copy,
  };
}
