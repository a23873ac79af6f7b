import { isHoardError } from "@hoard/core";
import { describe, expect, it } from "vitest";
import { createStorageFromUrl, parseByteSize, s3OptionsFromUrl } from "../src/index.ts";
import { silentAttemptsFor } from "../src/options.ts";

describe("s3OptionsFromUrl", () => {
  it("takes the bucket and prefix from the URL", () => {
    expect(s3OptionsFromUrl("s3://my-bucket/daily/db/")).toMatchObject({ bucket: "my-bucket", prefix: "daily/db" });
    expect(s3OptionsFromUrl("s3://my-bucket")).toMatchObject({ bucket: "my-bucket", prefix: "" });
  });

  it("maps every --s3-* setting, typed or as strings", () => {
    const options = s3OptionsFromUrl("s3://b/p", {
      s3Endpoint: "http://127.0.0.1:7070",
      s3Region: "eu-west-3",
      s3ForcePathStyle: "false",
      s3AccessKeyId: "AKIAEXAMPLE",
      s3SecretAccessKey: "secret",
      s3SessionToken: "token",
      s3Sse: "aes256",
      s3StorageClass: "standard_ia",
      s3PartSize: "64MiB",
      s3QueueSize: 8,
    });
    expect(options).toEqual({
      bucket: "b",
      prefix: "p",
      endpoint: "http://127.0.0.1:7070",
      region: "eu-west-3",
      forcePathStyle: false,
      credentials: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "secret", sessionToken: "token" },
      serverSideEncryption: "AES256",
      storageClass: "STANDARD_IA",
      partSize: 64 * 1024 * 1024,
      queueSize: 8,
    });
  });

  it("leaves credentials to the AWS SDK chain when none are given", () => {
    expect(s3OptionsFromUrl("s3://b", { s3Region: "" }).credentials).toBeUndefined();
  });

  it("implies aws:kms from a KMS key ID", () => {
    const storage = createStorageFromUrl("s3://b", { s3SseKmsKeyId: "alias/backups", s3Region: "us-east-1" });
    expect(storage.url).toBe("s3://b");
  });

  it.each([
    ["gs://b/p", {}, /not a s3:\/\/bucket\/prefix URL/],
    ["s3://b/p?region=eu-west-1", {}, /--s3-\* flags/],
    ["s3://user:pass@b/p", {}, /--s3-\* flags/],
    ["s3://b", { s3AccessKeyId: "AKIAEXAMPLE" }, /go together/],
    ["s3://b", { s3SessionToken: "t" }, /--s3-session-token needs/],
    ["s3://b", { s3ForcePathStyle: "maybe" }, /s3: invalid --s3-force-path-style: "maybe" is not true or false/],
    ["s3://b", { s3PartSize: "lots" }, /s3: invalid --s3-part-size: "lots" is not a size/],
    ["s3://b", { s3QueueSize: "2.5" }, /s3: invalid --s3-queue-size: "2.5" is not a whole number/],
    ["s3://b", { s3Sse: "aws:kms:dsse" }, /s3: invalid --s3-sse: "aws:kms:dsse" is not one of AES256, aws:kms/],
  ])("rejects %s with %o", (url, settings, message) => {
    let caught: unknown;
    try {
      s3OptionsFromUrl(url, settings);
    } catch (error) {
      caught = error;
    }
    expect(isHoardError(caught, "INVALID_ARGUMENT")).toBe(true);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).not.toContain("pass@");
  });

  it.each([
    [{ s3PartSize: "1MiB" }, /s3: invalid --s3-part-size: "1MiB" is below the minimum of 5242880/],
    [{ s3QueueSize: "0" }, /s3: invalid --s3-queue-size: "0" is below the minimum of 1/],
    [{ s3Sse: "AES256", s3SseKmsKeyId: "k" }, /KMS key ID needs server-side encryption aws:kms/],
    [{ s3Endpoint: "127.0.0.1:7070" }, /endpoint .* must be http or https|invalid endpoint/],
  ])("refuses invalid storage options %o before any request", (settings, message) => {
    expect(() => createStorageFromUrl("s3://b", settings)).toThrow(message);
  });
});

describe("parseByteSize", () => {
  it.each([
    ["5242880", 5242880],
    ["16MiB", 16 * 1024 ** 2],
    ["16M", 16 * 1024 ** 2],
    ["16mb", 16 * 1024 ** 2],
    ["512KiB", 512 * 1024],
    ["1G", 1024 ** 3],
    ["100B", 100],
    ["16 TB", 16 * 1024 ** 4],
  ])("reads %s", (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(["", "MiB", "1.5M", "-1", "16 PB"])("refuses %s", (text) => {
    expect(parseByteSize(text)).toBeUndefined();
  });
});

describe("timeoutMs", () => {
  it("comes from the common settings, as a number or as text", () => {
    expect(s3OptionsFromUrl("s3://b", { timeoutMs: 2500 }).timeoutMs).toBe(2500);
    expect(s3OptionsFromUrl("s3://b", { timeoutMs: " 700 " } as never).timeoutMs).toBe(700);
    expect(s3OptionsFromUrl("s3://b").timeoutMs).toBeUndefined();
  });

  it.each([0, -1, 1.5, "soon", "15s"])("rejects %s", (timeoutMs) => {
    expect(() => s3OptionsFromUrl("s3://b", { timeoutMs } as never)).toThrow(
      /^s3: invalid --timeout: "[^"]*" (is not a whole number|is below the minimum of 1)$/,
    );
  });

  it("bounds the attempts that end in silence to three, and to about a minute together", () => {
    expect(silentAttemptsFor(15_000, 3)).toBe(3);
    expect(silentAttemptsFor(15_000, 20)).toBe(3);
    expect(silentAttemptsFor(1_000, 20)).toBe(3);
    expect(silentAttemptsFor(1_000, 1)).toBe(1);
    expect(silentAttemptsFor(20_000, 3)).toBe(2);
    expect(silentAttemptsFor(30_000, 3)).toBe(1);
    expect(silentAttemptsFor(120_000, 3)).toBe(1);
  });
});
