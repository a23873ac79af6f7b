import { S3ServiceException } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { type ErrorContext, toS3Error } from "../src/errors.ts";

// What the AWS SDK throws, built the way its deserializers build it, for the cases versitygw
// (running as root, without IAM) cannot produce: AccessDenied, region redirects, expired tokens.
function serviceError(name: string, status: number, message = name): S3ServiceException {
  return new S3ServiceException({ name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status }, message });
}

const context: ErrorContext = {
  operation: "GetObject",
  bucket: "backups",
  objectKey: "db/backup-1.sql.gz",
  endpoint: undefined,
  timeoutMs: 15_000,
};

describe("toS3Error", () => {
  it.each([
    [
      serviceError("AccessDenied", 403, "Access Denied"),
      "ACCESS_DENIED",
      "s3: access denied for GetObject on s3://backups/db/backup-1.sql.gz",
    ],
    [serviceError("Unknown", 403, "UnknownError"), "ACCESS_DENIED", "s3: access denied"],
    [serviceError("InvalidAccessKeyId", 403), "UNAUTHENTICATED", "s3: the AWS S3 endpoint rejected the credentials (InvalidAccessKeyId)"],
    [serviceError("SignatureDoesNotMatch", 403), "UNAUTHENTICATED", "check the access key ID and secret access key"],
    [serviceError("ExpiredToken", 400), "UNAUTHENTICATED", "(ExpiredToken)"],
    [serviceError("NoSuchBucket", 404), "NOT_FOUND", "s3: bucket backups does not exist at the AWS S3 endpoint"],
    [serviceError("NoSuchKey", 404), "NOT_FOUND", "s3: s3://backups/db/backup-1.sql.gz does not exist"],
    [
      serviceError("PermanentRedirect", 301),
      "INVALID_ARGUMENT",
      "is in another region (PermanentRedirect): pass the bucket's region with --s3-region",
    ],
    [serviceError("InvalidStorageClass", 400, "The storage class you specified is not valid"), "INVALID_ARGUMENT", "(InvalidStorageClass)"],
    [
      serviceError("SlowDown", 503, "Please reduce your request rate."),
      "STORAGE_FAILED",
      "failed: SlowDown: Please reduce your request rate.",
    ],
    [
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }),
      "UNREACHABLE",
      "s3: cannot reach the AWS S3 endpoint (ECONNREFUSED)",
    ],
    [
      Object.assign(new AggregateError([Object.assign(new Error("connect ECONNREFUSED ::1:9"), { code: "ECONNREFUSED" })], ""), {}),
      "UNREACHABLE",
      "(ECONNREFUSED)",
    ],
    [
      Object.assign(new Error("Socket timed out without establishing a connection within 1000 ms"), { name: "TimeoutError" }),
      "UNREACHABLE",
      "(connection timed out)",
    ],
    [
      Object.assign(new Error("write ECONNRESET"), { name: "TimeoutError", code: "ECONNRESET" }),
      "UNREACHABLE",
      "s3: connection to the AWS S3 endpoint lost while downloading s3://backups/db/backup-1.sql.gz (ECONNRESET)",
    ],
    [
      Object.assign(new Error("@smithy/node-http-handler - the request socket timed out after 15000 ms of inactivity (configured)"), {
        name: "TimeoutError",
      }),
      "UNREACHABLE",
      "s3: no answer from the AWS S3 endpoint within 15 s (GetObject s3://backups/db/backup-1.sql.gz)",
    ],
    [
      serviceError("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"),
      "ALREADY_EXISTS",
      "s3: s3://backups/db/backup-1.sql.gz already exists; not overwriting it",
    ],
    [serviceError("ConditionalRequestConflict", 409), "ALREADY_EXISTS", "already exists; not overwriting it"],
    [
      Object.assign(new Error("Could not load credentials from any providers"), { name: "CredentialsProviderError" }),
      "UNAUTHENTICATED",
      "no AWS credentials found",
    ],
    [new Error("Region is missing"), "INVALID_ARGUMENT", "s3: no region configured: pass --s3-region or set AWS_REGION"],
    [Object.assign(new Error("The operation was aborted"), { name: "AbortError" }), "ABORTED", "was aborted"],
  ])("maps %s", (error, code, message) => {
    const mapped = toS3Error(error, context);
    expect(mapped.code).toBe(code);
    expect(mapped.message).toContain(message);
    expect(mapped.message.startsWith("s3: ")).toBe(true);
    expect(mapped.cause).toBe(error);
  });

  it("names the configured endpoint and the bucket when there is no key", () => {
    const mapped = toS3Error(serviceError("AccessDenied", 403), { operation: "ListObjectsV2", bucket: "b", endpoint: "http://minio:9000" });
    expect(mapped.message).toBe(
      "s3: access denied for ListObjectsV2 on bucket b: check the bucket policy and the credentials' permissions",
    );
  });
});
