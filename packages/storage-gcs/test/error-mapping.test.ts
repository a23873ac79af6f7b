import { PassThrough, Readable } from "node:stream";
import { ApiError, type BucketOptions } from "@google-cloud/storage";
import { isHoardError } from "@hoard/core";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { createGcsStorage } from "../src/index.ts";

// fake-gcs-server never answers 401 or 403 and never rejects credentials, so these cases are shown here with the
// errors the client library raises (its own ApiError; auth failures as google-auth-library shapes them), thrown from
// the real client's object methods. The client is otherwise real.
const failure = vi.hoisted(() => ({ error: undefined as unknown }));

vi.mock("@google-cloud/storage", async (importOriginal) => {
  const actual = await importOriginal<typeof import("@google-cloud/storage")>();
  const fail = async () => {
    throw failure.error;
  };
  class FailingStorage extends actual.Storage {
    override bucket(name: string, options?: BucketOptions) {
      const bucket = super.bucket(name, options);
      const makeFile = bucket.file.bind(bucket);
      Object.assign(bucket, {
        getFiles: fail,
        file: (fileName: string) =>
          Object.assign(makeFile(fileName), {
            getMetadata: fail,
            delete: fail,
            save: fail,
            copy: fail,
            // An upload's request stream fails as the client's does.
            createWriteStream: () => {
              const stream = new PassThrough();
              process.nextTick(() => stream.destroy(failure.error as Error));
              return stream;
            },
          }),
      });
      return bucket;
    }
  }
  return { ...actual, Storage: FailingStorage };
});

/** The client's own error class, as it reports an HTTP status. */
function apiError(code: number, message: string): ApiError {
  return Object.assign(new ApiError(message), { code });
}

const storage = createGcsStorage({ bucket: "backups", prefix: "db", apiEndpoint: "http://127.0.0.1:9", maxRetries: 0 });

async function errorOf(operation: () => Promise<unknown>): Promise<Error> {
  const error = await operation().then(
    () => expect.fail("expected a rejection"),
    (caught: unknown) => caught,
  );
  return error as Error;
}

describe("gcs error mapping", () => {
  beforeEach(() => {
    failure.error = undefined;
  });

  it("tells forbidden (403) apart from missing", async () => {
    failure.error = apiError(403, "backup@p.iam.gserviceaccount.com does not have storage.objects.get access");
    for (const operation of [() => storage.exists("a"), () => storage.stat("a"), () => storage.download("a"), () => storage.delete("a")]) {
      const error = await errorOf(operation);
      expect(isHoardError(error, "ACCESS_DENIED"), String(error)).toBe(true);
      expect(error.message).toMatch(/^gcs: .* access denied .*bucket backups/);
    }
    const listing = await errorOf(async () => storage.list()[Symbol.asyncIterator]().next());
    expect(isHoardError(listing, "ACCESS_DENIED")).toBe(true);
    const upload = await errorOf(() => storage.upload("a", Readable.from([Buffer.from("a")])));
    expect(isHoardError(upload, "ACCESS_DENIED")).toBe(true);
  });

  it("maps 401 and rejected credentials to UNAUTHENTICATED with what to do", async () => {
    failure.error = apiError(401, "Anonymous caller does not have storage.objects.get access");
    const anonymous = await errorOf(() => storage.exists("a"));
    expect(isHoardError(anonymous, "UNAUTHENTICATED")).toBe(true);
    expect(anonymous.message).toContain("--gcs-key-file");
    expect(anonymous.message).toContain("GOOGLE_APPLICATION_CREDENTIALS");

    // google-auth-library's token refusal: a 400 carrying the request, whose headers and body hold secrets.
    failure.error = Object.assign(new Error("invalid_grant: Invalid JWT Signature."), {
      status: 400,
      response: { status: 400 },
      config: { headers: { Authorization: "Bearer SECRET-ACCESS-TOKEN" }, data: "assertion=SECRET-ASSERTION" },
    });
    const refused = await errorOf(() => storage.exists("a"));
    expect(isHoardError(refused, "UNAUTHENTICATED")).toBe(true);
    expect(refused.message).toContain("invalid_grant");
    const everything = JSON.stringify({ refused, cause: refused.cause, keys: Object.entries(refused.cause as object) });
    expect(everything).not.toContain("SECRET");
  });

  it("removes key material from messages", async () => {
    failure.error = new Error("could not use -----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY----- for signing");
    const error = await errorOf(() => storage.exists("a"));
    expect(error.message).not.toContain("MIIsecret");
    expect(error.message).toContain("[redacted key]");
  });

  it("maps transient server errors to STORAGE_FAILED and connection errors to UNREACHABLE", async () => {
    failure.error = apiError(503, "Service Unavailable");
    const unavailable = await errorOf(() => storage.exists("a"));
    expect(isHoardError(unavailable, "STORAGE_FAILED")).toBe(true);
    expect(unavailable.message).toBe("gcs: reading gs://backups/db/a failed: Service Unavailable");

    failure.error = Object.assign(new Error("getaddrinfo ENOTFOUND storage.googleapis.com"), { code: "ENOTFOUND" });
    const unreachable = await errorOf(() => storage.exists("a"));
    expect(isHoardError(unreachable, "UNREACHABLE")).toBe(true);
  });
});
