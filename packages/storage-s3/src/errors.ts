import { defaultNetworkTimeoutMs, HoardError, type HoardErrorCode } from "@hoard/core";
import { connectionLostError, isAbortError, networkFailureOf, silentEndpointError, unreachableError } from "@hoard/core/plugin";

/** What was being done when an error happened, for the message. */
export interface ErrorContext {
  /** The S3 operation, e.g. `GetObject`. */
  operation: string;
  bucket: string;
  /** The full object key inside the bucket, when the operation is about one object. */
  objectKey?: string;
  /** The endpoint as configured (without credentials), or undefined for AWS. */
  endpoint: string | undefined;
  /** The silence after which an attempt is given up, for messages about it. @default defaultNetworkTimeoutMs */
  timeoutMs?: number;
}

const unauthenticatedCodes = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "InvalidToken",
  "ExpiredToken",
  "TokenRefreshRequired",
  "InvalidSecurity",
]);
const forbiddenCodes = new Set(["AccessDenied", "Forbidden", "AllAccessDisabled", "AccountProblem"]);
const invalidArgumentCodes = new Set([
  "InvalidArgument",
  "InvalidStorageClass",
  "InvalidEncryptionAlgorithmError",
  "KMS.NotFoundException",
]);

interface ServiceErrorShape {
  name?: string;
  code?: string;
  message?: string;
  errors?: unknown[];
  $metadata?: { httpStatusCode?: number };
}

/** The S3 error code (e.g. `NoSuchKey`), or the HTTP status as text for body-less responses. */
export function errorCodeOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const shape = error as ServiceErrorShape;
  if (shape.$metadata?.httpStatusCode !== undefined) {
    const name = shape.name;
    if (name && name !== "Unknown" && name !== "UnknownError" && name !== "S3ServiceException") return name;
    return String(shape.$metadata.httpStatusCode);
  }
  return shape.name;
}

/** The HTTP status of an S3 response error, when there was a response. */
export function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  return (error as ServiceErrorShape).$metadata?.httpStatusCode;
}

/** True for an attempt given up because the endpoint said nothing (socket or connection timeout). */
export function isSilence(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { name, message } = error as { name?: unknown; message?: unknown };
  return name === "TimeoutError" && typeof message === "string" && /of inactivity|did not establish a connection/.test(message);
}

/** The error for an endpoint that went silent: UNREACHABLE, naming the endpoint and the operation. */
export function silenceError(context: ErrorContext, cause: unknown): HoardError {
  return withDetail(
    silentEndpointError(
      "s3",
      where(context),
      context.timeoutMs ?? defaultNetworkTimeoutMs,
      `${context.operation} ${objectName(context)}`,
      cause,
    ),
    cause,
  );
}

const activities: Record<string, string> = { upload: "uploading", GetObject: "downloading", download: "downloading" };

/** The error for a connection that broke midway: the server went away, not the caller. */
function lostConnectionError(context: ErrorContext, reason: string, cause: unknown): HoardError {
  const activity = activities[context.operation];
  const doing = `${activity ?? `sending ${context.operation} for`} ${objectName(context)}`;
  return withDetail(connectionLostError("s3", where(context), doing, reason, cause), cause);
}

function objectName(context: ErrorContext): string {
  return context.objectKey === undefined ? `bucket ${context.bucket}` : `s3://${context.bucket}/${context.objectKey}`;
}

function where(context: ErrorContext): string {
  return context.endpoint ?? "the AWS S3 endpoint";
}

function detailOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function build(code: HoardErrorCode, message: string, error: unknown): HoardError {
  return new HoardError(code, `s3: ${message}`, { cause: error, detail: detailOf(error) });
}

/** A kit error with the SDK error's name and message as its detail, like every other error here. */
function withDetail(error: HoardError, cause: unknown): HoardError {
  return new HoardError(error.code, error.message, { cause, detail: detailOf(cause) });
}

/**
 * Converts whatever the AWS SDK threw into a HoardError with a message a user can act on. The
 * messages name the bucket, key and endpoint, never a credential.
 */
export function toS3Error(error: unknown, context: ErrorContext): HoardError {
  if (HoardError.isInstance(error)) return error;
  const shape = (typeof error === "object" && error !== null ? error : {}) as ServiceErrorShape;
  if (isAbortError(error)) return build("ABORTED", `${context.operation} of ${objectName(context)} was aborted`, error);
  if (isSilence(error)) return silenceError(context, error);

  const failure = networkFailureOf(error);
  const connectTimedOut = shape.name === "TimeoutError" && /without establishing a connection/.test(shape.message ?? "");
  if (failure?.kind === "unreachable" || connectTimedOut) {
    const code = failure?.kind === "unreachable" ? failure.code : "connection timed out";
    return withDetail(unreachableError("s3", where(context), code, "check --s3-endpoint, --s3-region and the network", error), error);
  }
  if (shape.$metadata?.httpStatusCode === undefined && (shape.name === "TimeoutError" || failure?.kind === "lost")) {
    return lostConnectionError(context, failure?.code ?? shape.message ?? "TimeoutError", error);
  }
  if (shape.name === "CredentialsProviderError") {
    return build(
      "UNAUTHENTICATED",
      "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, choose a profile with AWS_PROFILE, or run with an instance or task role",
      error,
    );
  }
  if (shape.message === "Region is missing") {
    return build("INVALID_ARGUMENT", "no region configured: pass --s3-region or set AWS_REGION", error);
  }

  const code = errorCodeOf(error);
  const status = httpStatusOf(error);
  if (code && unauthenticatedCodes.has(code)) {
    return build(
      "UNAUTHENTICATED",
      `${where(context)} rejected the credentials (${code}) for ${context.operation} on bucket ${context.bucket}: check the access key ID and secret access key`,
      error,
    );
  }
  if (code === "NoSuchBucket") return missingBucketError(context, error);
  if (code === "PreconditionFailed" || code === "ConditionalRequestConflict" || status === 412) {
    return build("ALREADY_EXISTS", `${objectName(context)} already exists; not overwriting it`, error);
  }
  if (code === "InvalidObjectState") {
    return build("STORAGE_FAILED", `${objectName(context)} is in an archive storage class: restore it in S3 before reading it`, error);
  }
  if (code === "NoSuchKey" || code === "NotFound" || status === 404) {
    return build("NOT_FOUND", `${objectName(context)} does not exist`, error);
  }
  if ((code && forbiddenCodes.has(code)) || status === 403) {
    return build(
      "ACCESS_DENIED",
      `access denied for ${context.operation} on ${objectName(context)}: check the bucket policy and the credentials' permissions`,
      error,
    );
  }
  if (
    code === "PermanentRedirect" ||
    code === "AuthorizationHeaderMalformed" ||
    code === "IllegalLocationConstraintException" ||
    status === 301
  ) {
    return build(
      "INVALID_ARGUMENT",
      `bucket ${context.bucket} is in another region (${code}): pass the bucket's region with --s3-region`,
      error,
    );
  }
  if (code && invalidArgumentCodes.has(code)) {
    return build(
      "INVALID_ARGUMENT",
      `${context.operation} on ${objectName(context)} was refused (${code}): ${shape.message ?? ""}`.trim(),
      error,
    );
  }
  const reason = code && shape.message && shape.message !== code ? `${code}: ${shape.message}` : (shape.message ?? code ?? String(error));
  return build("STORAGE_FAILED", `${context.operation} on ${objectName(context)} failed: ${reason}`, error);
}

/** The error for a bucket that does not exist, naming it and where it was looked for. */
export function missingBucketError(context: ErrorContext, cause: unknown): HoardError {
  return build(
    "NOT_FOUND",
    `bucket ${context.bucket} does not exist at ${where(context)}: create it, or check the bucket name, --s3-endpoint and --s3-region`,
    cause,
  );
}

/** True for the errors that mean "these credentials are not valid", as opposed to "not allowed". */
export function isCredentialError(error: unknown): boolean {
  const code = errorCodeOf(error);
  return code !== undefined && unauthenticatedCodes.has(code);
}
