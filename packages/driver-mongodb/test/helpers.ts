import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import * as zlib from "node:zlib";
import { createLocalStorage, type Driver, type Storage } from "@hoard/core";
import { rejection } from "@hoard/test-harness/vitest";
import { BSON } from "mongodb";
import { encodeArchive } from "../src/archive-writer.ts";
import { insert, withClient } from "./fixture.ts";

/** A local storage in a fresh directory, and a way to look at every file in it (temporary ones too). */
export async function temporaryStorage(): Promise<{
  storage: Storage;
  directory: string;
  files(): Promise<string[]>;
  remove(): Promise<void>;
}> {
  const directory = await mkdtemp(join(tmpdir(), "hoard-mongodb-storage-"));
  return {
    storage: createLocalStorage({ directory }),
    directory,
    files: async () => (await readdir(directory, { recursive: true })).map(String),
    remove: () => rm(directory, { recursive: true, force: true }),
  };
}

/** Runs the driver's dump and gathers the archive (small test databases only). */
export async function dumpToBuffer(driver: Driver): Promise<Buffer> {
  const workDirectory = await mkdtemp(join(tmpdir(), "hoard-mongodb-work-"));
  try {
    const output = await driver.dump({ workDirectory });
    if (output.kind !== "stream") throw new Error("the MongoDB driver dumps to a stream");
    const chunks: Buffer[] = [];
    for await (const chunk of output.stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } finally {
    await rm(workDirectory, { recursive: true, force: true });
  }
}

/** Stores bytes under a key. */
export async function put(storage: Storage, key: string, bytes: Buffer): Promise<void> {
  await storage.upload(key, Readable.from([bytes]));
}

/**
 * zstd-compresses bytes with Node's zlib where it has zstd (22.15+), else with the `zstd` program
 * (Debian package zstd), which core's restore also uses to read .zst on older Node.js.
 */
export function zstdCompress(bytes: Buffer): Buffer {
  const native = (zlib as unknown as { zstdCompressSync?: (input: Buffer) => Buffer }).zstdCompressSync;
  if (native) return native(bytes);
  const result = spawnSync("zstd", ["-q", "-c"], { input: bytes, maxBuffer: 1024 * 1024 * 1024 });
  if (result.error || result.status !== 0) {
    throw new Error(`zstd is needed for this test (apt-get install zstd): ${result.error?.message ?? result.stderr.toString()}`);
  }
  return result.stdout;
}

/** What a promise rejects with, failing the test when it resolves. */
export const failureOf: (promise: Promise<unknown>) => Promise<unknown> = rejection;

/** A small database: `count` notes with a unique index, enough to make an archive worth damaging. */
export async function seedSmall(url: string, count: number): Promise<void> {
  await withClient(url, async (client) => {
    await insert(
      client.db(),
      "notes",
      Array.from({ length: count }, (_, index) => ({ _id: index, text: `note number ${index} MARKER` })),
    );
    await client.db().collection("notes").createIndex({ text: 1 }, { name: "by_text", unique: true });
  });
}

/** A fresh temporary directory (`<prefix>…`) with an empty `work` directory inside it. */
export async function directoryWithWork(prefix: string): Promise<{ directory: string; workDirectory: string }> {
  const directory = await mkdtemp(join(tmpdir(), prefix));
  const workDirectory = join(directory, "work");
  await mkdir(workDirectory);
  return { directory, workDirectory };
}

/** A whole, valid archive of one small collection (`shop.orders`, two documents), for the stand-in tool suites. */
export async function tinyArchive(): Promise<Buffer> {
  const orders = { database: "shop", collection: "orders", metadata: '{"indexes":[]}', size: 0, type: "collection" };
  const documents = [BSON.serialize({ _id: 1, item: "book" }), BSON.serialize({ _id: 2, item: "lamp" })];
  const chunks: Buffer[] = [];
  const header = { concurrentCollections: 1, formatVersion: "0.1", serverVersion: "7.0.0", toolVersion: "hoard tests" };
  for await (const chunk of encodeArchive(header, [{ metadata: orders, documents: () => Readable.from(documents) }])) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Polls `check` every 20 ms until it holds; false when `timeoutMs` passed first. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
