import { randomUUID } from "node:crypto";
import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { CreateWriteStreamOptions, File, FileMetadata } from "@google-cloud/storage";
import { HoardError, type StorageObject, type UploadOptions } from "@hoard/core";
import { silenceTimer, within } from "@hoard/core/plugin";
import { statusOf } from "./errors.js";

/** Custom metadata naming the upload that wrote an object, so cleanup never deletes another writer's object. */
const uploadIdKey = "hoard-upload-id";

/** Where and how one upload writes. */
export interface UploadTarget {
  file: File;
  key: string;
  /** The object's gs:// URL, for messages. */
  url: string;
  chunkSize: number;
  storageClass: string | undefined;
  /** False for emulators, which get no credentials. */
  authenticated: boolean;
  /** How long the upload may wait on the store without a byte moving. */
  timeoutMs: number;
  /** Retries of a single-request upload that failed for a transient reason. */
  maxRetries: number;
  /** Maps a failure to the error to throw. */
  toError(error: unknown): HoardError;
  /** The error for a store that stopped answering. */
  silence(): HoardError;
  /** The error for a key that already exists. */
  exists(): HoardError;
}

export function toStorageObject(key: string, metadata: FileMetadata): StorageObject {
  return { key, size: Number(metadata.size ?? 0), lastModified: metadata.updated ? new Date(metadata.updated) : undefined };
}

/** Every write creates the object or fails: GCS refuses it with 412 when the name exists, atomically. */
const createOnly = { ifGenerationMatch: 0 };
/** After an abort, how long the request that finalises the object gets to land, so the object can be found and deleted. */
const abortGraceMs = 300;

/**
 * Uploads a stream. Up to one chunk is read first: a body that fits goes in one plain request (the only reliable way
 * for an empty one); a larger one goes through a resumable session in chunks. A session is finalised only after the
 * source ended, so a failing or aborted source never completes an object; on any failure the session is cancelled
 * and an object this upload did complete is deleted. Both kinds of request carry `ifGenerationMatch: 0`: an existing
 * object, or one that appears meanwhile, is never replaced (ALREADY_EXISTS).
 */
export async function uploadObject(target: UploadTarget, body: Readable, options: UploadOptions = {}): Promise<StorageObject> {
  const { file, chunkSize, timeoutMs } = target;
  const { signal, contentLength, onProgress } = options;
  const uploadId = randomUUID();
  const metadata: FileMetadata = { metadata: { [uploadIdKey]: uploadId } };
  if (target.storageClass) metadata.storageClass = target.storageClass;

  const source = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let sent = 0;
  let sourceEnded = false;
  /** The request stream in flight, and how to fail it. */
  let active: Writable | undefined;
  let stopReason: HoardError | undefined;
  const cancel = (reason: HoardError) => {
    stopReason ??= reason;
    active?.destroy(reason);
    body.destroy(reason);
  };
  const silence = silenceTimer(timeoutMs, () => cancel(target.silence()));
  let graceTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    const reason = new HoardError("ABORTED", `gcs: upload of ${target.url} aborted`, { cause: signal?.reason });
    // Once the source has ended, the last request may be finalising the object: it gets a moment to land, so that
    // the object it creates is found and deleted below.
    if (sourceEnded) graceTimer = setTimeout(() => cancel(reason), abortGraceMs);
    else cancel(reason);
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  /** The next chunk of the body, or undefined at its end; checks the byte count against `contentLength`. */
  async function next(): Promise<Buffer | undefined> {
    silence.pause();
    const result = await source.next().finally(() => silence.resume());
    if (result.done) {
      sourceEnded = true;
      if (contentLength !== undefined && sent !== contentLength) {
        throw new HoardError("STORAGE_FAILED", `gcs: uploading ${target.url}: the source ended after ${sent} of ${contentLength} bytes`);
      }
      return undefined;
    }
    const chunk = typeof result.value === "string" ? Buffer.from(result.value) : result.value;
    sent += chunk.length;
    if (contentLength !== undefined && sent > contentLength) {
      throw new HoardError("STORAGE_FAILED", `gcs: uploading ${target.url}: the source has more than the announced ${contentLength} bytes`);
    }
    onProgress?.(sent);
    return chunk;
  }

  /** Starts a request stream, timing its silence. */
  function open(writeOptions: CreateWriteStreamOptions): Writable {
    const output = file.createWriteStream({ ...writeOptions, metadata, preconditionOpts: createOnly });
    active = output;
    output.on("progress", () => silence.arm());
    if (stopReason) output.destroy(stopReason);
    return output;
  }

  let sessionUrl: string | undefined;
  let failed = false;
  try {
    if (signal?.aborted) throw new HoardError("ABORTED", `gcs: upload of ${target.url} aborted before it started`);
    const head: Buffer[] = [];
    let headBytes = 0;
    while (headBytes < chunkSize) {
      const chunk = await next();
      if (!chunk) break;
      head.push(chunk);
      headBytes += chunk.length;
    }
    if (stopReason) throw stopReason;
    // Less than a chunk means the source has ended.
    if (headBytes < chunkSize) {
      await uploadInOneRequest(Buffer.concat(head, headBytes));
    } else {
      const output = open({ resumable: true, chunkSize });
      // Stop reading at once when the upload fails, even if the source is waiting for data.
      output.once("error", () => body.destroy());
      output.on("uri", (uri: string) => {
        sessionUrl = uri;
        if (failed) void cancelSession(file, uri, target.authenticated);
      });
      silence.arm();
      await pipeline(Readable.from(paced(output, chunkSize, head, next), { objectMode: false }), output);
    }
    silence.stop();
    const stored = toStorageObject(target.key, file.metadata);
    if (stored.size !== sent) {
      throw new HoardError("STORAGE_FAILED", `gcs: uploading ${target.url}: the store kept ${stored.size} of ${sent} bytes`);
    }
    if (signal?.aborted) throw new HoardError("ABORTED", `gcs: upload of ${target.url} aborted`, { cause: signal.reason });
    return stored;
  } catch (error) {
    failed = true;
    silence.stop();
    clearTimeout(graceTimer);
    body.destroy();
    // After an abort or a silence the store may not answer: the clean-up is bounded, and goes on in the background.
    await within(signal?.aborted ? abortGraceMs : timeoutMs, async () => {
      if (sessionUrl) await cancelSession(file, sessionUrl, target.authenticated);
      await discard(file, uploadId);
    });
    if (signal?.aborted) {
      throw new HoardError("ABORTED", `gcs: upload of ${target.url} aborted`, { cause: target.toError(error) });
    }
    const reason = stopReason ?? error;
    throw statusOf(reason) === 412 ? target.exists() : target.toError(reason);
  } finally {
    silence.stop();
    clearTimeout(graceTimer);
    signal?.removeEventListener("abort", onAbort);
  }

  /**
   * One plain request, retried on transient failures (a dropped connection, 429, 5xx) but not on silence. A retry
   * refused with 412 may be refused because the attempt before it did store the object: an object carrying this
   * upload's id is this upload's.
   */
  async function uploadInOneRequest(data: Buffer): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const output = open({ resumable: false });
        silence.arm();
        // In slices, so that the request takes them one by one and each restarts the silence timer.
        await pipeline(Readable.from(slices(data), { objectMode: false }), output);
        return;
      } catch (error) {
        if (stopReason || signal?.aborted) throw error;
        if (statusOf(error) === 412 && attempt > 0 && (await storedByThisUpload(file, uploadId))) return;
        const retryable = file.storage.retryOptions.retryableErrorFn?.(error as never) ?? false;
        if (!retryable || attempt >= target.maxRetries) throw error;
        silence.pause();
        await new Promise((resolve) => setTimeout(resolve, 2 ** attempt * 500 + Math.random() * 500));
        silence.resume();
      }
    }
  }
}

function* slices(data: Buffer, size = 64 * 1024): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
  // An empty body still makes one write, so that the request is sent.
  if (data.length === 0) yield data;
}

/** True when the object exists and was written by this upload. */
async function storedByThisUpload(file: File, uploadId: string): Promise<boolean> {
  try {
    const [metadata] = await file.getMetadata();
    if (metadata.metadata?.[uploadIdKey] !== uploadId) return false;
    file.metadata = metadata;
    return true;
  } catch {
    return false;
  }
}

/**
 * The head, then the rest of the body, held back to one chunk beyond what the client has started sending. The client
 * lets writes run ahead of what it sends (it releases its buffer twice per chunk), which without this grows memory by
 * up to a chunk per chunk sent; with it an upload holds about two chunks.
 */
async function* paced(
  output: NodeJS.EventEmitter,
  chunkSize: number,
  head: Buffer[],
  next: () => Promise<Buffer | undefined>,
): AsyncGenerator<Buffer> {
  let sending = 0;
  let stopped = false;
  let resume: (() => void) | undefined;
  const wake = () => {
    resume?.();
    resume = undefined;
  };
  output.on("progress", (event: { bytesWritten: number }) => {
    sending = event.bytesWritten;
    wake();
  });
  output.once("close", () => {
    stopped = true;
    wake();
  });
  let given = 0;
  for (let chunk = head.shift() ?? (await next()); chunk; chunk = head.shift() ?? (await next())) {
    while (!stopped && given - sending > chunkSize) {
      await new Promise<void>((resolve) => {
        resume = resolve;
      });
    }
    given += chunk.length;
    yield chunk;
  }
}

/** Deletes the object this upload completed, if it did, and no other writer's (checked by upload id and generation). */
async function discard(file: File, uploadId: string): Promise<void> {
  try {
    const [metadata] = await file.getMetadata();
    if (metadata.metadata?.[uploadIdKey] === uploadId) await file.delete({ ifGenerationMatch: metadata.generation });
  } catch {
    // 404: nothing was written. Anything else: nothing more can be done; the upload's own error is what matters.
  }
}

/** Cancels a resumable session so the chunks it holds are dropped now rather than when it expires a week later. */
async function cancelSession(file: File, sessionUrl: string, authenticated: boolean): Promise<void> {
  try {
    if (authenticated) {
      await file.storage.authClient.request({ url: sessionUrl, method: "DELETE", timeout: 10_000, validateStatus: () => true });
    } else {
      const response = await fetch(sessionUrl, { method: "DELETE", signal: AbortSignal.timeout(10_000) });
      await response.body?.cancel();
    }
  } catch {
    // Best effort: an uncancelled session holds no object and expires by itself.
  }
}
