import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { StorageOptions } from "@google-cloud/storage";
import { isHoardError } from "@hoard/core";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createGcsStorage, createStorageFromUrl } from "../src/index.ts";
import { createBucket, emulator } from "./emulator.ts";

// fake-gcs-server accepts any request and the client sends none of its credentials to an emulator, so a real
// authentication cannot be shown here. What can be shown: the options reach the real client (recorded below, the
// client itself is not replaced) and its auth layer holds them, the storage works with them against the emulator,
// and credentials that cannot be loaded fail with UNAUTHENTICATED before any request.
const created = vi.hoisted(() => [] as Array<{ options: StorageOptions; client: unknown }>);

vi.mock("@google-cloud/storage", async (importOriginal) => {
  const actual = await importOriginal<typeof import("@google-cloud/storage")>();
  class RecordingStorage extends actual.Storage {
    constructor(options: StorageOptions = {}) {
      super(options);
      created.push({ options, client: this });
    }
  }
  return { ...actual, Storage: RecordingStorage };
});

/** What google-auth-library's GoogleAuth keeps of the credentials it was given. */
interface AuthState {
  keyFilename?: string;
  jsonContent?: { client_email?: string; private_key?: string } | null;
}

function lastClient(): { options: StorageOptions; auth: AuthState } {
  const last = created.at(-1);
  if (!last) throw new Error("no client was created");
  return { options: last.options, auth: (last.client as { authClient: AuthState }).authClient };
}

const { privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});
const clientEmail = "backup@hoard-test.iam.gserviceaccount.com";

describe("gcs credentials", () => {
  let directory: string;
  let keyFile: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "hoard-gcs-key-"));
    keyFile = join(directory, "key.json");
    await writeFile(keyFile, JSON.stringify({ type: "service_account", client_email: clientEmail, private_key: privateKey }), {
      mode: 0o600,
    });
  });
  afterAll(() => rm(directory, { recursive: true, force: true }));
  beforeEach(() => {
    created.length = 0;
  });

  it("creates the client lazily, on first use", async () => {
    const storage = createGcsStorage({ bucket: await createBucket(), apiEndpoint: emulator().endpoint });
    expect(created).toHaveLength(0);
    await storage.exists("a");
    await storage.exists("b");
    expect(created).toHaveLength(1);
  });

  it("passes a key file to the client", async () => {
    const storage = createGcsStorage({
      bucket: await createBucket(),
      keyFilename: keyFile,
      projectId: "hoard-test",
      apiEndpoint: emulator().endpoint,
    });
    await storage.upload("a.txt", Readable.from([Buffer.from("a")]));
    const { options, auth } = lastClient();
    expect(options).toMatchObject({ keyFilename: keyFile, projectId: "hoard-test", apiEndpoint: emulator().endpoint });
    expect(options.credentials).toBeUndefined();
    expect(auth.keyFilename).toBe(keyFile);
  });

  it("passes inline credentials to the client, turning escaped newlines into real ones", async () => {
    const escaped = privateKey.replace(/\n/g, "\\n");
    const storage = createStorageFromUrl(`gs://${await createBucket()}/p`, {
      gcsClientEmail: clientEmail,
      gcsPrivateKey: escaped,
      gcsProject: "hoard-test",
      gcsEndpoint: emulator().endpoint,
    });
    await storage.upload("a.txt", Readable.from([Buffer.from("a")]));
    const { options, auth } = lastClient();
    expect(options.credentials).toEqual({ client_email: clientEmail, private_key: privateKey });
    expect(options.keyFilename).toBeUndefined();
    expect(auth.jsonContent).toMatchObject({ client_email: clientEmail, private_key: privateKey });
  });

  it("maps the URL settings to client options", async () => {
    const storage = createStorageFromUrl(`gs://${await createBucket()}/a/b`, {
      gcsKeyFile: keyFile,
      gcsProject: "p",
      gcsEndpoint: emulator().endpoint,
    });
    await storage.exists("x");
    expect(lastClient().options).toMatchObject({ keyFilename: keyFile, projectId: "p", apiEndpoint: emulator().endpoint });
  });

  it("uses Application Default Credentials when given none", async () => {
    const storage = createGcsStorage({ bucket: await createBucket(), apiEndpoint: emulator().endpoint });
    await storage.exists("x");
    const { options } = lastClient();
    expect(options.keyFilename).toBeUndefined();
    expect(options.credentials).toBeUndefined();
  });

  it("fails with UNAUTHENTICATED for an unreadable key file, before any request", async () => {
    // The default endpoint: the key file is read before anything is sent, so this needs no network.
    const storage = createGcsStorage({ bucket: "any", keyFilename: join(directory, "missing.json"), maxRetries: 0 });
    const error = await storage.exists("x").catch((caught: unknown) => caught);
    expect(isHoardError(error, "UNAUTHENTICATED")).toBe(true);
    expect((error as Error).message).toContain(`cannot read the service-account key file ${join(directory, "missing.json")}`);
  });

  it("fails with UNAUTHENTICATED for a malformed inline key, and never shows the key", async () => {
    const secret = "-----BEGIN PRIVATE KEY-----\\nTHIS-IS-SECRET-MATERIAL\\n-----END PRIVATE KEY-----\\n";
    const storage = createStorageFromUrl("gs://any/p", { gcsClientEmail: clientEmail, gcsPrivateKey: secret });
    const error = await storage.exists("x").catch((caught: unknown) => caught);
    expect(isHoardError(error, "UNAUTHENTICATED")).toBe(true);
    const shown = `${(error as Error).message} ${String((error as Error).cause)} ${JSON.stringify(error)}`;
    expect(shown).not.toContain("THIS-IS-SECRET-MATERIAL");
  });
});
