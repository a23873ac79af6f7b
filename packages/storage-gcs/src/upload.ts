import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { File, FileMetadata } from "@google-cloud/storage";
import { HoardError, type StorageObject, type UploadOptions } from "@hoard/core";

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
  /** Maps a failure to the error to throw. */
  toError(error: unknown): HoardError;
}

export function toStorageObject(key: string, metadata: FileMetadata): StorageObject {
  return { key, size: Number(metadata.size ?? 0), lastModified: metadata.updated ? new Date(metadata.updated) : undefined };
}

/**
 * Uploads a stream. Up to one chunk is read first: a body that fits goes in one plain request (the only reliable way
 * for an empty one); a larger one goes through a resumable session in chunks. A session is finalised only after the
 * source ended, so a failing or aborted source never completes an object; on any failure the session is cancelled
 * and an object this upload did complete is deleted.
 */
export async function uploadObject(target: UploadTarget, body: Readable, options: UploadOptions = {}): Promise<StorageObject> {
  const { file, chunkSize } = target;
  const { signal, contentLength, onProgress } = options;
  const uploadId = randomUUID();
  const metadata: FileMetadata = { metadata: { [uploadIdKey]: uploadId } };
  if (target.storageClass) metadata.storageClass = target.storageClass;

  const source = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let sent = 0;
  let sourceEnded = false;
  // Once the source has ended, the last request may be finalising the object and cannot be called back: an abort
  // then lets the upload finish and deletes the object.
  const onAbort = () => {
    if (!sourceEnded) body.destroy(signal?.reason instanceof Error ? signal.reason : new Error("upload aborted"));
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  /** The next chunk of the body, or undefined at its end; checks the byte count against `contentLength`. */
  async function next(): Promise<Buffer | undefined> {
    const result = await source.next();
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

  let sessionUrl: string | undefined;
  let failed = false;
  try {
    if (signal?.aborted) throw signal.reason;
    const head: Buffer[] = [];
    let headBytes = 0;
    while (headBytes < chunkSize) {
      const chunk = await next();
      if (!chunk) break;
      head.push(chunk);
      headBytes += chunk.length;
    }
    // Less than a chunk means the source has ended.
    if (headBytes < chunkSize) {
      await file.save(Buffer.concat(head, headBytes), { resumable: false, metadata });
    } else {
      const output = file.createWriteStream({ resumable: true, chunkSize, metadata });
      // Stop reading at once when the upload fails, even if the source is waiting for data.
      output.once("error", () => body.destroy());
      output.on("uri", (uri: string) => {
        sessionUrl = uri;
        if (failed) void cancelSession(file, uri, target.authenticated);
      });
      await pipeline(Readable.from(paced(output, chunkSize, head, next), { objectMode: false }), output);
    }
    const stored = toStorageObject(target.key, file.metadata);
    if (stored.size !== sent) {
      throw new HoardError("STORAGE_FAILED", `gcs: uploading ${target.url}: the store kept ${stored.size} of ${sent} bytes`);
    }
    if (signal?.aborted) throw signal.reason;
    return stored;
  } catch (error) {
    failed = true;
    body.destroy();
    if (sessionUrl) await cancelSession(file, sessionUrl, target.authenticated);
    await discard(file, uploadId);
    if (signal?.aborted) throw new HoardError("ABORTED", `gcs: upload of ${target.url} aborted`, { cause: target.toError(error) });
    throw target.toError(error);
  } finally {
    signal?.removeEventListener("abort", onAbort);
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
