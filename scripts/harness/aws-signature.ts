import { createHash, createHmac } from "node:crypto";

/** Credentials and scope for AWS Signature Version 4. */
export interface SigningCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Default "s3". */
  service?: string;
}

/** A request to sign: the body is sent as is, its SHA-256 goes into x-amz-content-sha256. */
export interface SignableRequest {
  method: string;
  url: string;
  headers?: Record<string, string> | undefined;
  body?: string | Uint8Array | undefined;
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/** RFC 3986 percent-encoding, as SigV4 wants it for query strings. */
function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(url: URL): string {
  return [...url.searchParams]
    .map(([name, value]) => [encodeRfc3986(name), encodeRfc3986(value)] as const)
    .sort(([leftName, leftValue], [rightName, rightValue]) =>
      leftName === rightName ? (leftValue < rightValue ? -1 : 1) : leftName < rightName ? -1 : 1,
    )
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

/** "20260101T000000Z" */
function amzDate(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/**
 * Signs a request with AWS Signature Version 4 (single chunk, signed payload hash) and returns the
 * headers to send: the given ones plus x-amz-date, x-amz-content-sha256 and Authorization. The
 * Host header is signed as the URL's host, which is what fetch sends. The path must be sent as
 * given in the URL (S3 does not normalise it), so keep it to plain characters.
 */
export function signRequest(request: SignableRequest, credentials: SigningCredentials, now = new Date()): Record<string, string> {
  const url = new URL(request.url);
  const timestamp = amzDate(now);
  const day = timestamp.slice(0, 8);
  const service = credentials.service ?? "s3";
  const payloadHash = sha256Hex(request.body ?? "");
  const headers: Record<string, string> = {
    ...request.headers,
    "x-amz-date": timestamp,
    "x-amz-content-sha256": payloadHash,
  };
  const signed = Object.entries({ ...headers, host: url.host })
    .map(([name, value]) => [name.toLowerCase(), value.trim().replace(/\s+/g, " ")] as const)
    .sort(([left], [right]) => (left < right ? -1 : 1));
  const signedHeaderNames = signed.map(([name]) => name).join(";");
  const canonicalRequest = [
    request.method.toUpperCase(),
    url.pathname || "/",
    canonicalQuery(url),
    signed.map(([name, value]) => `${name}:${value}\n`).join(""),
    signedHeaderNames,
    payloadHash,
  ].join("\n");
  const scope = `${day}/${credentials.region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", timestamp, scope, sha256Hex(canonicalRequest)].join("\n");
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), credentials.region), service), "aws4_request");
  const signature = createHmac("sha256", signingKey).update(stringToSign).digest("hex");
  headers.authorization =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, ` + `SignedHeaders=${signedHeaderNames}, Signature=${signature}`;
  return headers;
}

/** fetch() with a SigV4-signed request. */
export function signedFetch(request: SignableRequest, credentials: SigningCredentials): Promise<Response> {
  return fetch(request.url, {
    method: request.method,
    headers: signRequest(request, credentials),
    // A copy: fetch's types want a Uint8Array over a plain ArrayBuffer.
    body: typeof request.body === "string" || request.body === undefined ? (request.body ?? null) : new Uint8Array(request.body),
  });
}
