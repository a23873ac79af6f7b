import { HoardError, type HoardErrorCode } from "@hoard/core";
import {
  connectionLostError,
  isAbortError,
  abortedError as kitAbortedError,
  networkFailureOf,
  silentEndpointError,
  unreachableError,
} from "@hoard/core/plugin";

const credentialProblems =
  /Could not load the default credentials|invalid_grant|invalid_client|unauthorized_client|Could not refresh access token|DECODER routines|does not contain a client_email|private_key|key must be a string/i;
const credentialHelp =
  "set --gcs-key-file, or HOARD_GCS_CLIENT_EMAIL and HOARD_GCS_PRIVATE_KEY, or Application Default Credentials " +
  "(GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`)";

/** What a message needs to name besides the failed action. */
export interface ErrorContext {
  bucket: string;
  endpoint: string;
  keyFilename: string | undefined;
  /** Strings that must never appear in a message (the inline private key). */
  secrets: string[];
  /** The silence after which a request is given up, for messages about it. */
  timeoutMs: number;
}

/** The HTTP status of a client error, wherever this client version keeps it. */
export function statusOf(error: unknown): number | undefined {
  const candidate = error as { code?: unknown; status?: unknown; response?: { status?: unknown } } | undefined;
  for (const value of [candidate?.code, candidate?.status, candidate?.response?.status]) {
    if (typeof value === "number") return value;
  }
  return undefined;
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** A message with anything key-like removed, so no secret reaches a message or a log. */
function redact(message: string, secrets: string[]): string {
  let result = message.replace(/-----BEGIN [A-Z ]+-----[\s\S]*?(-----END [A-Z ]+-----|$)/g, "[redacted key]");
  for (const secret of secrets) result = result.split(secret).join("[redacted]");
  return result.replace(/\s+/g, " ").trim();
}

/**
 * A plain copy of an error without the client's request details, which can hold access tokens and signed
 * assertions: safe to keep as a `cause`.
 */
export function sanitizedError(error: unknown, secrets: string[]): Error {
  const copy = new Error(redact(error instanceof Error ? error.message : String(error), secrets));
  copy.name = error instanceof Error ? error.name : "Error";
  const status = statusOf(error);
  const code = codeOf(error);
  return Object.assign(copy, status === undefined ? {} : { status }, code === undefined ? {} : { code });
}

/** What node-fetch (JSON requests) and gaxios (resumable uploads) say when their request timeout passes. */
const requestTimedOut = /network timeout at|timeout of \d+ms exceeded|request-timeout/i;

/** UNREACHABLE for an endpoint that went silent, naming it and what was being done. */
export function silenceError(action: string, context: ErrorContext, cause?: unknown): HoardError {
  const sanitized = cause === undefined ? undefined : sanitizedError(cause, context.secrets);
  return silentEndpointError("gcs", context.endpoint, context.timeoutMs, action, sanitized);
}

/** ABORTED, for a call whose signal fired. */
export function abortedError(action: string, cause?: unknown): HoardError {
  return kitAbortedError("gcs", action, cause);
}

export function missingBucketMessage(bucket: string): string {
  return `gcs: bucket ${bucket} does not exist: create it first or check the storage URL`;
}

/**
 * Turns anything the client throws into a HoardError with an actionable `gcs:` message; the one place where client
 * errors are mapped. `action` says what failed ("reading gs://b/key"); `missing` is the message for a 404.
 */
export function toGcsError(error: unknown, action: string, context: ErrorContext, missing?: string): HoardError {
  if (HoardError.isInstance(error)) return error;
  const cause = sanitizedError(error, context.secrets);
  const reason = cause.message;
  const status = statusOf(error);
  const code = codeOf(error);
  const make = (hoardCode: HoardErrorCode, message: string) => new HoardError(hoardCode, message, { cause });

  if (isAbortError(cause)) return abortedError(action, cause);
  if (requestTimedOut.test(reason) || (error as { type?: unknown } | undefined)?.type === "request-timeout") {
    return silenceError(action, context, error);
  }
  if (code === "ENOENT" && context.keyFilename && (error as { path?: unknown }).path !== undefined) {
    return make("UNAUTHENTICATED", `gcs: cannot read the service-account key file ${context.keyFilename}: check --gcs-key-file`);
  }
  if (status === 401 || code?.startsWith("ERR_OSSL") || credentialProblems.test(reason)) {
    return make("UNAUTHENTICATED", `gcs: ${action} failed: the credentials were not accepted (${reason}); ${credentialHelp}`);
  }
  if (status === 403) {
    return make(
      "ACCESS_DENIED",
      `gcs: ${action} failed: access denied (${reason}); grant the account a role on bucket ${context.bucket} such as roles/storage.objectAdmin`,
    );
  }
  if (status === 404) return make("NOT_FOUND", missing ?? `gcs: ${action} failed: not found`);
  if (status === 412) return make("ALREADY_EXISTS", `gcs: ${action} failed: the object already exists; not overwriting it`);
  const failure = networkFailureOf(cause);
  if (failure?.kind === "unreachable") {
    return unreachableError("gcs", context.endpoint, failure.code, "check --gcs-endpoint and the network", cause);
  }
  if (status === undefined && failure?.kind === "lost") return connectionLostError("gcs", context.endpoint, action, failure.code, cause);
  return make("STORAGE_FAILED", `gcs: ${action} failed: ${reason}`);
}
