import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline, type Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiError, type File, HashStreamValidator } from "@google-cloud/storage";

/** How to read one object. */
export interface DownloadTarget {
  file: File;
  /** False for emulators, which get no credentials. */
  authenticated: boolean;
  /** How long one attempt may wait for the answer's headers. */
  timeoutMs: number;
  /** Retries of an attempt that failed for a transient reason (no answer, 408, 429, 5xx) before the bytes started. */
  maxRetries: number;
  /** Ends the attempt in flight, and the download, when it fires. */
  signal: AbortSignal;
}

/** The longest error answer read for its message. */
const errorBodyLimit = 64 * 1024;

/**
 * The object's bytes, from one GET of its media URL (`alt=media`), with the client's credentials and its CRC32C check
 * of the whole object (`x-goog-hash`, when the store kept the bytes as sent). Resolves once the answer's headers
 * arrived; a failed answer rejects with the client's ApiError shape (`code` = the HTTP status).
 *
 * Not `File.createReadStream()`: from @google-cloud/storage 8.0.1 on (teeny-request 11 on node-fetch 3, up to 8.4.0
 * and teeny-request 11.1.1), its response body is consumed by three `pipeline()`s at once (node-fetch's own,
 * teeny-request's stream mode and the client's), which is 11 `close` and `error` listeners on one stream and a
 * MaxListenersExceededWarning on every download (googleapis/google-cloud-node#9185). This request has one consumer.
 */
export async function openObject(target: DownloadTarget): Promise<Readable> {
  const { file, signal } = target;
  const bucket = encodeURIComponent(file.bucket.name);
  const url = `${file.storage.baseUrl}/b/${bucket}/o/${encodeURIComponent(file.name)}?alt=media`;
  for (let attempt = 0; ; attempt++) {
    // Outside the retries: credentials that cannot be had are not a transient failure.
    const headers = target.authenticated ? await authorizationOf(url, file) : {};
    try {
      const response = await get(url, headers, target);
      if (response.statusCode === 200) return checked(response, file);
      throw await answerError(response);
    } catch (error) {
      if (signal.aborted) throw error;
      // As the client's own download did: any failure without an answer is retried, answers as its retry rules say.
      const answered = typeof (error as { code?: unknown }).code === "number";
      const retryable = !answered || (file.storage.retryOptions.retryableErrorFn?.(error as ApiError) ?? false);
      if (!retryable || attempt >= target.maxRetries) throw error;
      await sleep(2 ** attempt * 500 + Math.random() * 500, undefined, { signal });
    }
  }
}

/** The headers with which the client authenticates its own requests (a bearer token, refreshed as needed). */
async function authorizationOf(url: string, file: File): Promise<Record<string, string>> {
  const headers: Record<string, string> = {};
  (await file.storage.authClient.getRequestHeaders(url)).forEach((value, name) => {
    headers[name] = value;
  });
  return headers;
}

/** One GET, resolving with the answer once its headers arrived; an answer slower than `timeoutMs` fails it. */
function get(url: string, headers: Record<string, string>, target: DownloadTarget): Promise<IncomingMessage> {
  return new Promise<IncomingMessage>((resolve, reject) => {
    const send = url.startsWith("https:") ? httpsRequest : httpRequest;
    const request = send(url, { headers, signal: target.signal });
    const timer = setTimeout(() => {
      request.destroy(Object.assign(new Error(`network timeout at: ${url}`), { type: "request-timeout" }));
    }, target.timeoutMs);
    request.once("response", (response) => {
      clearTimeout(timer);
      resolve(response);
    });
    request.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.end();
  });
}

/** The answer's bytes, through the client's CRC32C check when the store gave a checksum of exactly these bytes. */
function checked(response: IncomingMessage, file: File): Readable {
  const crc32c = hashesOf(response.headers["x-goog-hash"]).crc32c;
  // An object stored compressed comes back decompressed (no Accept-Encoding was sent): its checksum is of other bytes.
  if (!crc32c || response.headers["x-goog-stored-content-encoding"] !== "identity" || response.headers["content-encoding"]) {
    return response;
  }
  const validator = new HashStreamValidator({ crc32c: true, crc32cExpected: crc32c, crc32cGenerator: file.storage.crc32cGenerator });
  // Errors go both ways: a failed response fails the validator, a destroyed validator ends the request.
  pipeline(response, validator, () => {});
  return validator;
}

/** `crc32c=...,md5=...` (one header, or repeated). */
function hashesOf(header: string | string[] | undefined): Record<string, string> {
  const hashes: Record<string, string> = {};
  for (const pair of [header ?? []].flat().join(",").split(",")) {
    const at = pair.indexOf("=");
    if (at > 0) hashes[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return hashes;
}

/** The client's error for a failed answer: the JSON API's message, and the HTTP status as `code`. */
async function answerError(response: IncomingMessage): Promise<ApiError> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const part of response) {
    if (length < errorBodyLimit) parts.push(part as Buffer);
    length += (part as Buffer).length;
  }
  const body = Buffer.concat(parts).subarray(0, errorBodyLimit).toString("utf8");
  let message = body.trim() || `HTTP ${response.statusCode}`;
  let errors: unknown;
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown; errors?: unknown } };
    if (typeof parsed.error?.message === "string") message = parsed.error.message;
    errors = parsed.error?.errors;
  } catch {
    // Not JSON: the text is the message.
  }
  return Object.assign(new ApiError(message), { code: response.statusCode, errors });
}
