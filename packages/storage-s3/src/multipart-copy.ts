import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandInput,
  type S3Client,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { HoardError } from "@hoard/core";
import { httpStatusOf } from "./errors.js";
import { maximumParts } from "./options.js";

/** A server-side copy of one object, part by part. */
export interface MultipartCopy {
  client: S3Client;
  bucket: string;
  /** `bucket/url-encoded-key` of the source, as the x-amz-copy-source header wants it. */
  copySource: string;
  targetKey: string;
  /** The source's size in bytes. */
  size: number;
  /** Bytes per part; raised when the object would need more than 10,000 parts. */
  partSize: number;
  /** Parts copied at the same time. */
  concurrency: number;
  /** Encryption and storage class for the target. */
  writeParameters: Partial<Pick<CreateMultipartUploadCommandInput, "ServerSideEncryption" | "SSEKMSKeyId" | "StorageClass">>;
  /** Stops the copy; the multipart upload is still aborted. */
  signal?: AbortSignal;
}

/** The byte ranges of a multipart copy, numbered from 1. */
export function copyParts(size: number, partSize: number): { partNumber: number; range: string }[] {
  const effectivePartSize = Math.max(partSize, Math.ceil(size / maximumParts));
  return Array.from({ length: Math.ceil(size / effectivePartSize) }, (_, index) => ({
    partNumber: index + 1,
    range: `bytes=${index * effectivePartSize}-${Math.min(size, (index + 1) * effectivePartSize) - 1}`,
  }));
}

/**
 * Copies an object with CreateMultipartUpload, UploadPartCopy and CompleteMultipartUpload, which
 * S3 needs beyond CopyObject's 5 GiB. On failure the multipart upload is aborted once no part is
 * in flight any more, and the SDK's error is thrown for the caller to map.
 */
export async function copyInParts(copy: MultipartCopy): Promise<void> {
  const { client, bucket, targetKey, signal } = copy;
  const sendOptions = { abortSignal: signal };
  let uploadId: string | undefined;
  try {
    const created = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: targetKey, ...copy.writeParameters }),
      sendOptions,
    );
    uploadId = created.UploadId;
    const parts: { PartNumber: number; ETag: string }[] = [];
    await forEachConcurrently(copyParts(copy.size, copy.partSize), copy.concurrency, async ({ partNumber, range }) => {
      const result = await client.send(
        new UploadPartCopyCommand({
          Bucket: bucket,
          Key: targetKey,
          UploadId: uploadId,
          PartNumber: partNumber,
          CopySource: copy.copySource,
          CopySourceRange: range,
        }),
        sendOptions,
      );
      const etag = result.CopyPartResult?.ETag;
      if (!etag) throw new HoardError("STORAGE_FAILED", `s3: UploadPartCopy of part ${partNumber} of ${targetKey} returned no ETag`);
      parts.push({ PartNumber: partNumber, ETag: etag });
    });
    parts.sort((left, right) => left.PartNumber - right.PartNumber);
    // Conditional, like every write: an object that appeared meanwhile is not replaced.
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: targetKey,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
        IfNoneMatch: "*",
      }),
      sendOptions,
    );
  } catch (error) {
    if (uploadId) {
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: targetKey, UploadId: uploadId }), {
          abortSignal: AbortSignal.timeout(60_000),
        })
        .catch((abortError: unknown) => {
          // Already gone is fine; otherwise keep the copy's error, which says what went wrong first.
          if (httpStatusOf(abortError) !== 404 && error instanceof Error && error.cause === undefined) error.cause = abortError;
        });
    }
    throw error;
  }
}

/**
 * Runs `work` on every item with at most `limit` at a time. After a failure no new item starts,
 * and the failure is thrown only once the items in flight have settled, so nothing still runs
 * when the caller cleans up.
 */
async function forEachConcurrently<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
