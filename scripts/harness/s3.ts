import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { SignableRequest } from "./aws-signature.ts";
import { signedFetch } from "./aws-signature.ts";
import { acceptsConnections, freePort, loopbackHost } from "./network.ts";
import { requireTool } from "./paths.ts";
import type { ManagedProcess } from "./process.ts";
import { makeTemporaryDirectory, removeTemporaryDirectory, startProcess, waitUntil } from "./process.ts";
import type { RunningServer } from "./server.ts";
import { randomName, stopOnce } from "./server.ts";

/** An S3-compatible server (versitygw, posix backend) on loopback. Use path-style addressing. */
export interface S3Server extends RunningServer {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Creates a bucket with a signed CreateBucket request (default name `hoard-test-<random>`). */
  createBucket(name?: string): Promise<string>;
  /** Sends a SigV4-signed request; `path` is the path-style path with query, e.g. "/bucket?list-type=2". */
  request(method: string, path: string, body?: string | Uint8Array): Promise<Response>;
}

const region = "us-east-1";

/**
 * Starts versitygw (`.cache/bin/versitygw`, built by scripts/install-tools.sh) with the posix
 * backend on a free port, with random root credentials and temporary data and metadata
 * (sidecar) directories that stop() removes.
 */
export async function startS3(): Promise<S3Server> {
  const command = requireTool("versitygw");
  const directory = makeTemporaryDirectory("s3");
  const accessKeyId = `hoard${randomBytes(8).toString("hex")}`;
  const secretAccessKey = randomBytes(24).toString("base64url");
  let server: ManagedProcess | undefined;
  try {
    const port = await freePort();
    const dataDirectory = join(directory, "data");
    const metadataDirectory = join(directory, "meta");
    await mkdir(dataDirectory);
    await mkdir(metadataDirectory);
    server = startProcess({
      name: "versitygw",
      command,
      args: ["--port", `${loopbackHost}:${port}`, "--region", region, "posix", "--sidecar", metadataDirectory, dataDirectory],
      env: { ...process.env, ROOT_ACCESS_KEY: accessKeyId, ROOT_SECRET_KEY: secretAccessKey },
      logPath: join(directory, "versitygw.log"),
      cwd: directory,
    });
    const address = `${loopbackHost}:${port}`;
    await waitUntil(`versitygw accepts connections on ${address}`, () => acceptsConnections(loopbackHost, port), {
      server,
    });
    const endpoint = `http://${loopbackHost}:${port}`;
    const credentials = { accessKeyId, secretAccessKey, region };
    const request = (method: string, path: string, body?: string | Uint8Array): Promise<Response> => {
      const signable: SignableRequest = { method, url: `${endpoint}${path}`, body };
      return signedFetch(signable, credentials);
    };
    const running = server;
    return {
      endpoint,
      region,
      accessKeyId,
      secretAccessKey,
      request,
      async createBucket(name = randomName("hoard-test", "-")) {
        const response = await request("PUT", `/${encodeURIComponent(name)}`);
        if (!response.ok) {
          throw new Error(`CreateBucket ${name} failed: HTTP ${response.status} ${await response.text()}`);
        }
        await response.arrayBuffer();
        return name;
      },
      stop: stopOnce(async () => {
        await running.stop({ signal: "SIGTERM", timeoutMs: 10_000 });
        await removeTemporaryDirectory(directory);
      }),
    };
  } catch (error) {
    await server?.stop({ signal: "SIGKILL" });
    await removeTemporaryDirectory(directory);
    throw error;
  }
}
