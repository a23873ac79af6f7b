import type { Readable } from "node:stream";
import {
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandInput,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { HoardError } from "@hoard/core";
import { defaultPartGrowth, maximumParts, mebibyte } from "./options.js";
import { maximumPartSize } from "./settings.js";

/** S3's largest object: 5 TiB. */
export const maximumObjectSize = 5 * 1024 * 1024 * mebibyte;
/** Parts of a stream grow to at least 1/800 of the bytes already sent, but no larger than 1 GiB (unless the configured part size is larger). */
export const maximumGrownPartSize = 1024 * mebibyte;

/**
 * The size of the next part of a stream upload once `sent` bytes have gone into earlier parts:
 * the configured size until `sent` reaches `configured × growth`, then `sent / growth` rounded up
 * to a MiB, capped at 1 GiB. With the default growth of 800, 10,000 parts hold 5.68 TiB even from
 * the smallest part size (5 MiB), so any stream up to S3's 5 TiB fits; 8 MiB parts last for the
 * first 6.25 GiB, parts reach 128 MiB at 100 GiB and 1 GiB at 800 GiB.
 */
export function nextPartSize(sent: number, configured: number, growth = defaultPartGrowth): number {
  const grown = Math.min(maximumGrownPartSize, Math.ceil(sent / growth / mebibyte) * mebibyte);
  return Math.min(maximumPartSize, Math.max(configured, grown));
}

/** One upload of a body, in a single PutObject or in parts. */
export interface PartUpload {
  client: S3Client;
  bucket: string;
  key: string;
  body: Readable;
  /** The configured part size: the first parts' size. */
  partSize: number;
  /** The body's exact size when known: then every part has the same size. */
  contentLength?: number;
  /** How fast parts grow on a body of unknown size (see nextPartSize). */
  growth: number;
  /** Parts sent at the same time. */
  queueSize: number;
  /** Encryption and storage class, for PutObject and CreateMultipartUpload. */
  writeParameters: Partial<Pick<CreateMultipartUploadCommandInput, "ServerSideEncryption" | "SSEKMSKeyId" | "StorageClass">>;
  /** Cancels every request in flight; the upload then fails with the requests' error. */
  signal: AbortSignal;
  /** Called with the bytes stored so far, after each part. */
  onProgress?: (bytes: number) => void;
  /** Called with the upload ID as soon as the multipart upload exists. */
  onStarted?: (uploadId: string) => void;
  /** Aborts the multipart upload on the server; called after a failure, once no part is in flight. */
  abortUpload: (uploadId: string) => Promise<void>;
}

/**
 * Uploads a body conditionally (`If-None-Match: *`, so an existing object is never replaced):
 * with one PutObject when it fits in the first part, else as a multipart upload whose parts grow
 * with the stream (S3 allows parts of different sizes). At most `queueSize` parts are in flight
 * while the next one fills, so about `(queueSize + 1) × part size` bytes are held; each part is
 * filled in place, without a concatenation. On a failure (the body's, a request's) the parts in
 * flight are let finish, on the signal they are cancelled; once they have settled the multipart
 * upload is aborted, and the first error is thrown.
 */
export async function uploadInParts(upload: PartUpload): Promise<number> {
  const { client, bucket, key, contentLength } = upload;
  const sendOptions = { abortSignal: upload.signal };
  const fixedSize = contentLength === undefined ? undefined : Math.max(upload.partSize, Math.ceil(contentLength / maximumParts));
  const sizeAfter = (sent: number) => fixedSize ?? nextPartSize(sent, upload.partSize, upload.growth);
  const tooLarge = (): HoardError =>
    new HoardError(
      "STORAGE_FAILED",
      `s3: s3://${bucket}/${key} would be larger than S3 allows (5 TiB in at most ${maximumParts} parts); nothing was stored`,
    );
  if (contentLength !== undefined && contentLength > maximumObjectSize) throw tooLarge();

  let uploadId: string | undefined;
  let checksummed = false;
  const completed: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let firstError: unknown;
  let stored = 0;
  /** Bytes already in earlier parts. */
  let sent = 0;
  let partNumber = 0;
  let part: Buffer | undefined;
  /**
   * Buffers of parts already stored, for the next parts: a fresh buffer per part would leave the
   * sent ones to the garbage collector, which lets many pile up (128 MiB for 8 MiB parts).
   */
  const spare: Buffer[] = [];
  const bufferOf = (size: number): Buffer => {
    for (;;) {
      const reused = spare.pop();
      if (reused === undefined) return Buffer.allocUnsafe(size);
      // Parts never shrink: a smaller spare is of no more use.
      if (reused.length >= size) return reused.subarray(0, size);
    }
  };
  let filled = 0;

  /**
   * Keeps the first error and ends the loop reading the body. The parts in flight are left to
   * finish (each is bounded by the silence timeout): one cancelled on this side may still be stored
   * by the server after the abort and bring the upload back (seen on versitygw). Only the caller's
   * signal cancels them at once; the abort is then repeated until the upload is gone.
   */
  const failWith = (error: unknown) => {
    if (firstError !== undefined) return;
    firstError = error;
    upload.body.destroy();
  };

  async function sendPart(number: number, data: Buffer): Promise<void> {
    const result = await client.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: number,
        Body: data,
        ...(checksummed && { ChecksumAlgorithm: "CRC32" }),
      }),
      sendOptions,
    );
    if (!result.ETag) throw new Error(`UploadPart ${number} returned no ETag`);
    completed.push({
      PartNumber: number,
      ETag: result.ETag,
      ...(result.ChecksumCRC32 && { ChecksumCRC32: result.ChecksumCRC32 }),
      ...(result.ChecksumCRC32C && { ChecksumCRC32C: result.ChecksumCRC32C }),
      ...(result.ChecksumCRC64NVME && { ChecksumCRC64NVME: result.ChecksumCRC64NVME }),
      ...(result.ChecksumSHA1 && { ChecksumSHA1: result.ChecksumSHA1 }),
      ...(result.ChecksumSHA256 && { ChecksumSHA256: result.ChecksumSHA256 }),
    });
    stored += data.length;
    spare.push(Buffer.from(data.buffer, data.byteOffset, data.buffer.byteLength - data.byteOffset));
    upload.onProgress?.(stored);
  }

  /** Sends the full part, after waiting for a free slot; the first one starts the multipart upload. */
  async function dispatch(data: Buffer): Promise<void> {
    while (inFlight.size >= upload.queueSize) await Promise.race(inFlight);
    if (firstError !== undefined) throw firstError;
    partNumber += 1;
    if (partNumber > maximumParts) throw tooLarge();
    if (uploadId === undefined) {
      checksummed = (await client.config.requestChecksumCalculation()) === "WHEN_SUPPORTED";
      const created = await client.send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          ...upload.writeParameters,
          ...(checksummed && { ChecksumAlgorithm: "CRC32" }),
        }),
        sendOptions,
      );
      if (!created.UploadId) throw new Error("CreateMultipartUpload returned no upload ID");
      uploadId = created.UploadId;
      upload.onStarted?.(uploadId);
    }
    const sending: Promise<void> = sendPart(partNumber, data)
      .catch(failWith)
      .finally(() => inFlight.delete(sending));
    inFlight.add(sending);
  }

  try {
    for await (const chunk of upload.body) {
      if (firstError !== undefined) throw firstError;
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      let offset = 0;
      while (offset < bytes.length) {
        if (part !== undefined && filled === part.length) {
          // Full, and more is coming: it is not the last part.
          const data = part;
          part = undefined;
          sent += data.length;
          await dispatch(data);
        }
        if (part === undefined) {
          const size = sizeAfter(sent);
          if (sent >= maximumObjectSize) throw tooLarge();
          part = bufferOf(size);
          filled = 0;
        }
        const copied = bytes.copy(part, filled, offset);
        filled += copied;
        offset += copied;
      }
    }
    const last = part === undefined ? Buffer.alloc(0) : part.subarray(0, filled);
    const total = sent + last.length;
    if (contentLength !== undefined && total !== contentLength) {
      throw new HoardError(
        "STORAGE_FAILED",
        `s3: upload of s3://${bucket}/${key}: the body had ${total} bytes, not the ${contentLength} announced`,
      );
    }
    if (total > maximumObjectSize) throw tooLarge();
    if (uploadId === undefined && partNumber === 0) {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: last, IfNoneMatch: "*", ...upload.writeParameters }),
        sendOptions,
      );
      upload.onProgress?.(last.length);
      return total;
    }
    // A body ending on a part boundary still ends with that full part, never an empty one.
    if (last.length > 0) await dispatch(last);
    await Promise.all(inFlight);
    if (firstError !== undefined) throw firstError;
    completed.sort((left, right) => (left.PartNumber ?? 0) - (right.PartNumber ?? 0));
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: completed },
        IfNoneMatch: "*",
      }),
      sendOptions,
    );
    return total;
  } catch (error) {
    failWith(error);
    // Parts still arriving after the abort could be kept: abort only once none is in flight.
    await Promise.allSettled(inFlight);
    if (uploadId !== undefined) await upload.abortUpload(uploadId).catch(() => undefined);
    throw firstError;
  }
}
