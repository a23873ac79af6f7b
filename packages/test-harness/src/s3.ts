import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { acceptsConnections, freePort, loopbackHost } from "./network.ts";
import { requireTool } from "./paths.ts";
import { launchInTemporaryDirectory, waitUntil } from "./process.ts";
import type { RunningServer } from "./server.ts";
import { randomName, stopOnce } from "./server.ts";

/** How to reach an S3-compatible server: plain data, so it can cross into test workers. */
export interface S3Connection {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** An S3-compatible server (versitygw, posix backend) on loopback. Use path-style addressing. */
export interface S3Server extends RunningServer, S3Connection {
  /** An AWS SDK client on this server (path-style, root credentials), made on first use; stop() destroys it. */
  client(): S3Client;
  /** Creates a bucket with CreateBucket (default name `hoard-test-<random>`). */
  createBucket(name?: string): Promise<string>;
}

const region = "us-east-1";

/** An AWS SDK client on an S3-compatible test server: path-style addressing, the server's credentials. */
export function s3Client(connection: S3Connection): S3Client {
  return new S3Client({
    endpoint: connection.endpoint,
    region: connection.region,
    credentials: { accessKeyId: connection.accessKeyId, secretAccessKey: connection.secretAccessKey },
    forcePathStyle: true,
  });
}

/** Creates a bucket through the AWS SDK and returns its name (default `hoard-test-<random>`). */
export async function createS3Bucket(client: S3Client, name = randomName("hoard-test", "-")): Promise<string> {
  await client.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

/**
 * Starts versitygw (`.cache/bin/versitygw`, built by scripts/install-tools.sh) with the posix
 * backend on a free port, with random root credentials and temporary data and metadata
 * (sidecar) directories that stop() removes.
 */
export async function startS3(): Promise<S3Server> {
  const command = requireTool("versitygw");
  const accessKeyId = `hoard${randomBytes(8).toString("hex")}`;
  const secretAccessKey = randomBytes(24).toString("base64url");
  return launchInTemporaryDirectory("s3", async ({ directory, launch, shutdown }) => {
    const port = await freePort();
    const dataDirectory = join(directory, "data");
    const metadataDirectory = join(directory, "meta");
    await mkdir(dataDirectory);
    await mkdir(metadataDirectory);
    const server = launch({
      name: "versitygw",
      command,
      args: ["--port", `${loopbackHost}:${port}`, "--region", region, "posix", "--sidecar", metadataDirectory, dataDirectory],
      env: { ...process.env, ROOT_ACCESS_KEY: accessKeyId, ROOT_SECRET_KEY: secretAccessKey },
    });
    const address = `${loopbackHost}:${port}`;
    await waitUntil(`versitygw accepts connections on ${address}`, () => acceptsConnections(loopbackHost, port), {
      server,
    });
    const connection: S3Connection = { endpoint: `http://${loopbackHost}:${port}`, region, accessKeyId, secretAccessKey };
    let client: S3Client | undefined;
    const getClient = (): S3Client => {
      client ??= s3Client(connection);
      return client;
    };
    return {
      ...connection,
      client: getClient,
      createBucket: (name) => createS3Bucket(getClient(), name),
      stop: stopOnce(async () => {
        client?.destroy();
        await shutdown("SIGTERM", 10_000);
      }),
    };
  });
}
