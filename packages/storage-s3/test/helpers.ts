import { randomBytes } from "node:crypto";
import { createServer, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { CreateBucketCommand, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
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
  const { endpoint, region, credentials } = connection();
  client ??= new S3Client({ endpoint, region, credentials, forcePathStyle: true });
  return client;
}

/** Creates an empty bucket with a random name. */
export async function createBucket(): Promise<string> {
  const name = `hoard-s3-${randomBytes(6).toString("hex")}`;
  await testClient().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/** Multipart uploads still open in a bucket (parts a failed upload would leave behind). */
export async function openMultipartUploads(bucket: string): Promise<string[]> {
  const response = await testClient().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (response.Uploads ?? []).map((upload) => `${upload.Key ?? "?"} ${upload.UploadId ?? "?"}`);
}

/** One request that passed through a recording proxy. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * An HTTP proxy in front of the test server that forwards every request unchanged (so signatures
 * still verify) and records what was sent: versitygw accepts some headers without reporting them
 * back, and this shows they left the client. It can also fail chosen requests, to break an upload
 * midway while the real server still sees the clean-up.
 */
export async function startRecordingProxy(
  target: string,
  /** Requests for which this returns true get a 500 InternalError instead of being forwarded. */
  failWhen: (request: RecordedRequest) => boolean = () => false,
): Promise<{ endpoint: string; requests: RecordedRequest[]; stop(): Promise<void> }> {
  const requests: RecordedRequest[] = [];
  const targetUrl = new URL(target);
  const server = createServer((incoming, outgoing) => {
    const recorded = { method: incoming.method ?? "", url: incoming.url ?? "", headers: incoming.headers };
    requests.push(recorded);
    if (failWhen(recorded)) {
      incoming.resume();
      outgoing.writeHead(500, { "content-type": "application/xml" });
      outgoing.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>',
      );
      return;
    }
    const forwarded = httpRequest(
      { host: targetUrl.hostname, port: targetUrl.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (response) => {
        outgoing.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(outgoing);
      },
    );
    forwarded.on("error", () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
