import { join } from "node:path";
import { freePort, loopbackHost } from "./network.ts";
import { requireTool } from "./paths.ts";
import { launchInTemporaryDirectory, waitUntil } from "./process.ts";
import type { RunningServer } from "./server.ts";
import { randomName, stopOnce } from "./server.ts";

/** A Google Cloud Storage emulator (fake-gcs-server, filesystem backend) on loopback. */
export interface GcsServer extends RunningServer {
  /** http://127.0.0.1:PORT: apiEndpoint for @google-cloud/storage, or STORAGE_EMULATOR_HOST. */
  endpoint: string;
  projectId: string;
  /** Creates a bucket through the JSON API (default name `hoard-test-<random>`). */
  createBucket(name?: string): Promise<string>;
}

const projectId = "hoard-test";

/**
 * Starts fake-gcs-server (`.cache/bin/fake-gcs-server`, built by scripts/install-tools.sh) over
 * plain HTTP on a free port, storing objects in a temporary directory that stop() removes. Its
 * external URL is the endpoint, so resumable uploads follow a Location header that works.
 */
export async function startGcs(): Promise<GcsServer> {
  const command = requireTool("fake-gcs-server");
  return launchInTemporaryDirectory("gcs", async ({ directory, launch, shutdown }) => {
    const port = await freePort();
    const endpoint = `http://${loopbackHost}:${port}`;
    const server = launch({
      name: "fake-gcs-server",
      command,
      args: [
        "-scheme",
        "http",
        "-host",
        loopbackHost,
        "-port",
        String(port),
        "-backend",
        "filesystem",
        "-filesystem-root",
        join(directory, "storage"),
        "-external-url",
        endpoint,
        "-public-host",
        `${loopbackHost}:${port}`,
        "-log-level",
        "warn",
      ],
    });
    await waitUntil(`fake-gcs-server lists buckets at ${endpoint}`, () => listsBuckets(endpoint), { server });
    return {
      endpoint,
      projectId,
      createBucket: (name = randomName("hoard-test", "-")) => createBucket(endpoint, name),
      stop: stopOnce(() => shutdown("SIGTERM", 10_000)),
    };
  });
}

async function listsBuckets(endpoint: string): Promise<boolean> {
  const response = await fetch(`${endpoint}/storage/v1/b?project=${projectId}`, {
    signal: AbortSignal.timeout(2_000),
  });
  await response.arrayBuffer();
  return response.ok;
}

async function createBucket(endpoint: string, name: string): Promise<string> {
  const response = await fetch(`${endpoint}/storage/v1/b?project=${projectId}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) {
    throw new Error(`creating GCS bucket ${name} failed: HTTP ${response.status} ${await response.text()}`);
  }
  await response.arrayBuffer();
  return name;
}
