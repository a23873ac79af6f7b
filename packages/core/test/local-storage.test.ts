import { readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { isHoardError } from "../src/errors.ts";
import { createLocalStorage } from "../src/storage/local.ts";
import type { Storage } from "../src/storage.ts";
import { describeStorageContract } from "../src/testing/storage-contract.ts";
import { filesUnder, freshDirectories } from "./helpers.ts";

const freshDirectory = freshDirectories("local");

describeStorageContract("local", {
  create: async () => createLocalStorage({ directory: await freshDirectory("contract") }),
});

async function keysOf(storage: Storage, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storage.list(prefix)) keys.push(object.key);
  return keys.sort();
}

async function textOf(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe("local storage specifics", () => {
  let directory: string;
  let storage: Storage;

  beforeAll(async () => {
    directory = await freshDirectory("specific");
    storage = createLocalStorage({ directory });
  });

  it("writes under a temporary name: while an upload runs, the final name does not exist", async () => {
    const body = new PassThrough();
    const upload = storage.upload("atomic/backup-20260101000000.sql.gz", body);
    body.write(Buffer.alloc(512 * 1024, 1));
    await waitFor(async () => (await filesUnder(join(directory, "atomic"))).length > 0, "the temporary file");

    const during = await filesUnder(join(directory, "atomic"));
    expect(during).toHaveLength(1);
    expect(during[0]).toMatch(/^\.hoard-partial-[0-9a-f]+-backup-20260101000000\.sql\.gz$/);
    expect(await storage.exists("atomic/backup-20260101000000.sql.gz")).toBe(false);
    expect(await storage.stat("atomic/backup-20260101000000.sql.gz")).toBeUndefined();
    expect(await keysOf(storage, "atomic/")).toEqual([]);
    await expect(stat(join(directory, "atomic", "backup-20260101000000.sql.gz"))).rejects.toThrow();

    body.end(Buffer.alloc(1000, 2));
    const stored = await upload;
    expect(stored).toMatchObject({ key: "atomic/backup-20260101000000.sql.gz", size: 512 * 1024 + 1000 });
    expect(await filesUnder(join(directory, "atomic"))).toEqual(["backup-20260101000000.sql.gz"]);
    expect(await keysOf(storage, "atomic/")).toEqual(["atomic/backup-20260101000000.sql.gz"]);
  });

  it("leaves no temporary file behind when the body fails", async () => {
    const body = new PassThrough();
    const upload = storage.upload("failing/object.bin", body);
    body.write(Buffer.alloc(256 * 1024));
    await waitFor(async () => (await filesUnder(join(directory, "failing"))).length > 0, "the temporary file");
    body.destroy(new Error("the dump died"));
    const error = await caught(upload);
    expect(error).toBeDefined();
    expect((error as Error).message).toContain("the dump died");
    expect(await filesUnder(join(directory, "failing"))).toEqual([]);
    expect(await storage.exists("failing/object.bin")).toBe(false);
  });

  it("maps an aborted upload to ABORTED and leaves nothing", async () => {
    const controller = new AbortController();
    const body = new PassThrough();
    const upload = storage.upload("aborting/object.bin", body, { signal: controller.signal });
    body.write(Buffer.alloc(64 * 1024));
    await waitFor(async () => (await filesUnder(join(directory, "aborting"))).length > 0, "the temporary file");
    controller.abort();
    expect(isHoardError(await caught(upload), "ABORTED")).toBe(true);
    expect(await filesUnder(join(directory, "aborting"))).toEqual([]);
  });

  it("reports upload progress up to the full size", async () => {
    const seen: number[] = [];
    const chunks = Array.from({ length: 5 }, () => Buffer.alloc(10_000));
    await storage.upload("progress.bin", Readable.from(chunks), { onProgress: (bytes) => seen.push(bytes) });
    expect(seen.at(-1)).toBe(50_000);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  });

  it("keeps uploaded files private to the owner", async () => {
    await storage.upload("private.sql.gz", Readable.from([Buffer.from("secret rows")]));
    expect((await stat(join(directory, "private.sql.gz"))).mode & 0o777).toBe(0o600);
  });

  it("works before the directory exists, creating it on the first upload", async () => {
    const missing = join(await freshDirectory("later"), "not", "yet");
    const later = createLocalStorage({ directory: missing });
    expect(await keysOf(later)).toEqual([]);
    expect(await later.exists("x")).toBe(false);
    await later.upload("x", Readable.from([Buffer.from("x")]));
    expect(await readFile(join(missing, "x"), "utf8")).toBe("x");
  });

  it("accepts a file:// URL, an absolute path and a relative path for the same directory", async () => {
    const root = await freshDirectory("forms");
    const byUrl = createLocalStorage({ directory: pathToFileURL(root).toString() });
    const byPath = createLocalStorage({ directory: root });
    const byRelativePath = createLocalStorage({ directory: relative(process.cwd(), root) });
    await byUrl.upload("from-url.txt", Readable.from([Buffer.from("url")]));
    await byRelativePath.upload("from-relative.txt", Readable.from([Buffer.from("relative")]));
    for (const storageForm of [byUrl, byPath, byRelativePath]) {
      expect(storageForm.scheme).toBe("file");
      expect(storageForm.url).toBe(pathToFileURL(root).toString());
      expect(await keysOf(storageForm)).toEqual(["from-relative.txt", "from-url.txt"]);
      expect(await textOf(await storageForm.download("from-url.txt"))).toBe("url");
    }
  });

  it("handles a directory name with spaces given as a file URL", async () => {
    const root = join(await freshDirectory("spaces"), "my backups");
    const byUrl = createLocalStorage({ directory: pathToFileURL(root).toString() });
    await byUrl.upload("a.txt", Readable.from([Buffer.from("a")]));
    expect(await readFile(join(root, "a.txt"), "utf8")).toBe("a");
  });

  it.each(["../x", "a/../../x", "/etc/passwd", "", "../escape/deeper"])("refuses the key %j with INVALID_ARGUMENT", async (key) => {
    const root = await freshDirectory("escape");
    const inner = createLocalStorage({ directory: join(root, "inner") });
    const attempts: Array<() => Promise<unknown>> = [
      () => inner.upload(key, Readable.from([Buffer.from("evil")])),
      () => inner.download(key),
      () => inner.stat(key),
      () => inner.exists(key),
      () => inner.delete(key),
      () => inner.copy(key, "copy"),
      () => inner.copy("source", key),
    ];
    for (const attempt of attempts) {
      const error = await caught(Promise.resolve().then(attempt));
      expect(isHoardError(error, "INVALID_ARGUMENT"), `${key}: ${String(error)}`).toBe(true);
    }
    expect(await filesUnder(root)).toEqual([]);
  });

  it("refuses keys that name the storage directory itself, writing nothing beside it", async () => {
    const root = await freshDirectory("itself");
    const inner = createLocalStorage({ directory: join(root, "inner") });
    await inner.upload("existing.txt", Readable.from([Buffer.from("keep")]));
    for (const key of ["a/..", ".", "./"]) {
      const error = await caught(inner.upload(key, Readable.from([Buffer.from("x".repeat(100_000))])));
      expect(isHoardError(error, "INVALID_ARGUMENT"), `${key}: ${String(error)}`).toBe(true);
    }
    expect(await filesUnder(root)).toEqual([join("inner", "existing.txt")]);
  });

  it("fails a download of a missing key with NOT_FOUND", async () => {
    expect(isHoardError(await caught(storage.download("nothing/here.gz")), "NOT_FOUND")).toBe(true);
  });

  it("fails a copy from a missing key with NOT_FOUND naming that key, and creates nothing", async () => {
    const error = await caught(storage.copy("copy-missing/source.gz", "copy-missing/target.gz"));
    expect(isHoardError(error, "NOT_FOUND")).toBe(true);
    expect(await storage.exists("copy-missing/target.gz")).toBe(false);
    expect(await filesUnder(join(directory, "copy-missing"))).toEqual([]);
    expect((error as Error).message).toContain("copy-missing/source.gz");
  });
});
