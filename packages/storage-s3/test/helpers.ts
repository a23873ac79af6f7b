import { randomBytes } from "node:crypto";
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import {
  type RecordedRequest,
  type RecordingProxy,
  s3Client,
  s3ErrorAnswer,
  startRecordingProxy as startHarnessRecordingProxy,
} from "@hoard/test-harness";
import { inject } from "vitest";
import type { S3StorageOptions } from "../src/index.ts";

/** Connection options for the versitygw started by global-setup.ts. */
export function connection(): Pick<S3StorageOptions, "endpoint" | "region" | "credentials"> {
  const s3 = inject("s3");
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  };
}

let client: S3Client | undefined;

/** A plain SDK client on the test server, to look behind the storage's back. */
export function testClient(): S3Client {
  client ??= s3Client(inject("s3"));
  return client;
}

/** Creates an empty bucket with a random name. */
export async function createBucket(): Promise<string> {
  const name = `hoard-s3-${randomBytes(6).toString("hex")}`;
  await testClient().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/** The keys of every object in a bucket, as the server lists them. */
export async function objectKeys(bucket: string): Promise<string[]> {
  const response = await testClient().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (response.Contents ?? []).map((object) => object.Key ?? "");
}

/** Multipart uploads still open in a bucket (parts a failed upload would leave behind). */
export async function openMultipartUploads(bucket: string): Promise<string[]> {
  const response = await testClient().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (response.Uploads ?? []).map((upload) => `${upload.Key ?? "?"} ${upload.UploadId ?? "?"}`);
}

export type { RecordedRequest } from "@hoard/test-harness";

/**
 * The harness's recording proxy in front of the test server: forwards every request unchanged (so
 * signatures still verify) and records what was sent; requests for which `failWhen` returns true
 * get a 500 InternalError instead, to break an upload midway while the real server still sees the
 * clean-up.
 */
export function startRecordingProxy(
  target: string,
  failWhen: (request: RecordedRequest) => boolean = () => false,
): Promise<RecordingProxy> {
  return startHarnessRecordingProxy(target, (request) => (failWhen(request) ? s3ErrorAnswer(500, "InternalError") : undefined));
}
