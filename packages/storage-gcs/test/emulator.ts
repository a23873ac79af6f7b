import { randomBytes } from "node:crypto";
import { inject } from "vitest";

/** The shared fake-gcs-server, from test/global-setup.ts. */
export function emulator(): { endpoint: string; projectId: string } {
  return inject("gcs");
}

/** Creates an empty bucket with a unique name on the shared fake-gcs-server, through its JSON API. */
export async function createBucket(): Promise<string> {
  const { endpoint, projectId } = emulator();
  const name = `hoard-test-${randomBytes(6).toString("hex")}`;
  const response = await fetch(`${endpoint}/storage/v1/b?project=${projectId}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`creating bucket ${name} failed: HTTP ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
  return name;
}

/** Every object name in a bucket, read straight from the emulator's JSON API (not through the code under test). */
export async function objectNames(bucket: string): Promise<string[]> {
  const names: string[] = [];
  let pageToken = "";
  do {
    const query = new URLSearchParams({ maxResults: "1000", ...(pageToken ? { pageToken } : {}) });
    const response = await fetch(`${emulator().endpoint}/storage/v1/b/${bucket}/o?${query}`);
    if (!response.ok) throw new Error(`listing ${bucket} failed: HTTP ${response.status}`);
    const page = (await response.json()) as { items?: Array<{ name: string }>; nextPageToken?: string };
    names.push(...(page.items ?? []).map((item) => item.name));
    pageToken = page.nextPageToken ?? "";
  } while (pageToken);
  return names.sort();
}
