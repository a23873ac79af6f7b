// Manifests, verify and the drill comparison, through the pipelines with local storage and a
// driver whose dump is a stream of known bytes (the real databases' proofs are in the CLI's
// proof.integration.test.ts).
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { beforeEach, describe, expect, it } from "vitest";
import type { Driver, Inventory, RestoreInput } from "../src/driver.ts";
import { isHoardError } from "../src/errors.ts";
import { manifestKey, parseManifest } from "../src/manifest.ts";
import { backup } from "../src/pipelines/backup.ts";
import { compareInventories } from "../src/pipelines/drill.ts";
import { listBackupsWithManifests } from "../src/pipelines/list.ts";
import { prune } from "../src/pipelines/prune.ts";
import { guessKind, verify } from "../src/pipelines/verify.ts";
import type { Storage } from "../src/storage.ts";
import { filesUnder, freshDirectories, freshStorage } from "./helpers.ts";

const freshDirectory = freshDirectories("proof");
const now = new Date("2026-05-01T02:03:04Z");

/** Deterministic dump bytes: "row <n>\n" lines ending with a trailer the fake archive check wants. */
function dumpBytes(rows: number): Buffer {
  const lines = Array.from({ length: rows }, (_, index) => `row ${index}\n`);
  return Buffer.from(`${lines.join("")}-- end\n`);
}

interface Checked {
  inputs: number;
}

function fakeDriver(rows = 20_000, options: { failDescribe?: boolean } = {}): Driver & { checked: Checked } {
  const checked = { inputs: 0 };
  return {
    name: "fake",
    url: "fake://user@host/db",
    extension: "sql",
    checked,
    async dump() {
      return { kind: "stream", stream: Readable.from([dumpBytes(rows)]) };
    },
    async restore() {},
    async describe() {
      if (options.failDescribe) throw new Error("the server said no");
      return { server: { product: "Fake", version: "1.2" }, tool: { name: "fake-dump", version: "3.4" } };
    },
    async inventory(): Promise<Inventory> {
      return { items: [{ name: "rows", kind: "table", count: rows }], exactCounts: false };
    },
    async checkArchive(input: RestoreInput) {
      if (input.kind !== "stream") throw new Error("stream expected");
      checked.inputs += 1;
      let text = "";
      let lines = 0;
      for await (const chunk of input.stream) {
        const piece = (chunk as Buffer).toString("latin1");
        lines += piece.split("\n").length - 1;
        text = (text + piece).slice(-16);
      }
      if (!text.endsWith("-- end\n")) throw Object.assign(new Error("no trailer"), { code: "CORRUPT" });
      return { summary: `${lines - 1} rows`, inventory: { items: [{ name: "rows", kind: "table", count: lines - 1 }], exactCounts: true } };
    },
  };
}

let storageDirectory: string;
let temporaryDirectory: string;
let storage: Storage;

beforeEach(async () => {
  ({ storageDirectory, temporaryDirectory, storage } = await freshStorage(freshDirectory));
});

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a failure");
}

describe("manifest", () => {
  it.each(["stream", "file"] as const)(
    "%s mode: stored after the object, with the stored bytes' size and SHA-256 and what the driver told",
    async (mode) => {
      const order: string[] = [];
      const watching: Storage = {
        ...storage,
        async upload(key, body, options) {
          const stored = await storage.upload(key, body, options);
          order.push(key);
          return stored;
        },
      };
      const result = await backup({ driver: fakeDriver(), storage: watching, mode, now, temporaryDirectory, compressionLevel: 4 });
      expect(order).toEqual([result.key, manifestKey(result.key)]);
      const stored = await readFile(join(storageDirectory, result.key));
      const manifest = parseManifest(await readFile(join(storageDirectory, manifestKey(result.key)), "utf8"), "manifest");
      expect(manifest).toEqual(result.manifest);
      expect(manifest).toMatchObject({
        format: "hoard-manifest",
        formatVersion: 1,
        key: "backup-20260501020304.sql.zst",
        database: {
          kind: "fake",
          url: "fake://user@host/db",
          server: { product: "Fake", version: "1.2" },
          tool: { name: "fake-dump", version: "3.4" },
        },
        object: { size: stored.length, sha256: createHash("sha256").update(stored).digest("hex") },
        compression: { format: "zstd", level: 4 },
        contents: { items: [{ name: "rows", kind: "table", count: 20_000 }], exactCounts: false },
      });
      expect(manifest.hoardVersion).toMatch(/^\d+\.\d+\.\d+/);
      expect(manifest.encryption).toBeUndefined();
      expect(Date.parse(manifest.startedAt)).toBeLessThanOrEqual(Date.parse(manifest.finishedAt));
    },
  );

  it("goes without the versions when the driver cannot tell them, and says so", async () => {
    const warnings: string[] = [];
    const logger = { event: (event: { type: string; message?: string }) => event.type === "log" && warnings.push(event.message ?? "") };
    const result = await backup({ driver: fakeDriver(10, { failDescribe: true }), storage, now, temporaryDirectory, logger });
    expect(result.manifest.database).toEqual({ kind: "fake", url: "fake://user@host/db" });
    expect(warnings.join("\n")).toContain("the server said no");
  });

  it("a manifest that cannot be stored fails the backup and removes the object", async () => {
    const refusing: Storage = {
      ...storage,
      async upload(key, body, options) {
        if (key.endsWith(".manifest.json")) {
          body.destroy();
          throw new Error("quota exceeded");
        }
        return storage.upload(key, body, options);
      },
    };
    const error = await caught(backup({ driver: fakeDriver(), storage: refusing, now, temporaryDirectory }));
    expect(isHoardError(error, "STORAGE_FAILED"), String(error)).toBe(true);
    expect((error as Error).message).toContain("was removed");
    expect(await filesUnder(storageDirectory)).toEqual([]);
  });

  it("list tells backups with a manifest from those without (older, foreign) and unreadable ones; prune deletes a manifest with its backup", async () => {
    const first = await backup({ driver: fakeDriver(), storage, now, temporaryDirectory });
    const second = await backup({ driver: fakeDriver(), storage, now: new Date("2026-05-02T00:00:00Z"), temporaryDirectory });
    await writeFile(join(storageDirectory, "backup-20260101000000.sql.gz"), gzipSync(dumpBytes(3)));
    await writeFile(join(storageDirectory, "backup-20260201000000.sql.gz"), gzipSync(dumpBytes(3)));
    await writeFile(join(storageDirectory, "backup-20260201000000.sql.gz.manifest.json"), "{ not json");
    const listed = await listBackupsWithManifests(storage);
    expect(listed.map((entry) => [entry.key, entry.manifest.state])).toEqual([
      [second.key, "present"],
      [first.key, "present"],
      ["backup-20260201000000.sql.gz", "unreadable"],
      ["backup-20260101000000.sql.gz", "missing"],
    ]);
    const present = listed[0]?.manifest;
    expect(present?.state === "present" && present.manifest.object.sha256).toBe(second.manifest.object.sha256);

    await prune({ storage, policy: { keepLast: 1 }, now: new Date("2026-05-03T00:00:00Z") });
    expect(await filesUnder(storageDirectory)).toEqual([second.key, second.manifestKey]);
  });
});

describe("verify", () => {
  it("passes a good backup: size, checksum, decompression and the driver's archive check", async () => {
    const driver = fakeDriver(5000);
    const stored = await backup({ driver, storage, now, temporaryDirectory });
    const result = await verify({ storage, key: stored.key, driver, temporaryDirectory });
    expect(result).toMatchObject({ key: stored.key, size: stored.size, sha256: stored.manifest.object.sha256, kind: "fake" });
    expect(result.archive?.summary).toBe("5000 rows");
    expect(driver.checked.inputs).toBe(1);
  });

  it("fails a flipped byte, a truncated object and a missing manifest, each with one line", async () => {
    const driver = fakeDriver(5000);
    const stored = await backup({ driver, storage, now, temporaryDirectory });
    const path = join(storageDirectory, stored.key);
    const good = await readFile(path);

    // The last byte belongs to gzip's length trailer: decompression may not notice, the checksum does.
    const flipped = Buffer.from(good);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 0x01;
    await writeFile(path, flipped);
    const changed = await caught(verify({ storage, key: stored.key, driver, temporaryDirectory }));
    expect(isHoardError(changed, "CORRUPT_ARCHIVE"), String(changed)).toBe(true);
    expect((changed as Error).message).not.toContain("\n");

    await writeFile(path, good.subarray(0, good.length - 100));
    const truncated = await caught(verify({ storage, key: stored.key, driver, temporaryDirectory }));
    expect(isHoardError(truncated, "CORRUPT_ARCHIVE"), String(truncated)).toBe(true);
    expect((truncated as Error).message).toContain("truncated");

    await writeFile(path, good);
    await storage.delete(stored.manifestKey);
    const missing = await caught(verify({ storage, key: stored.key, driver, temporaryDirectory }));
    expect(isHoardError(missing, "NOT_FOUND"), String(missing)).toBe(true);
    expect((missing as Error).message).toContain("has no manifest");
    // Asked for, the structure alone is checked, by the driver given.
    const structure = await verify({ storage, key: stored.key, driver, structureOnly: true, temporaryDirectory });
    expect(structure.manifest).toBeUndefined();
    expect(structure.archive?.summary).toBe("5000 rows");
  });

  it("a structure-only check of an archive no driver can read fails rather than passing unchecked", async () => {
    await writeFile(join(storageDirectory, "backup-20260101000000.sql.gz"), gzipSync("something else\n"));
    const error = await caught(
      verify({ storage, key: "backup-20260101000000.sql.gz", driver: async () => undefined, structureOnly: true }),
    );
    expect(isHoardError(error, "UNSUPPORTED_FORMAT"), String(error)).toBe(true);
  });

  it("backup --verify: a stored object that differs from what was sent fails the backup and removes it and its manifest", async () => {
    const tampering: Storage = {
      ...storage,
      async upload(key, body, options) {
        if (key.endsWith(".manifest.json")) return storage.upload(key, body, options);
        const chunks: Buffer[] = [];
        for await (const chunk of body) chunks.push(chunk as Buffer);
        const bytes = Buffer.concat(chunks);
        bytes[20] = (bytes[20] ?? 0) ^ 0xff;
        const stored = await storage.upload(key, Readable.from([bytes]), { signal: options?.signal });
        return stored;
      },
    };
    const error = await caught(backup({ driver: fakeDriver(), storage: tampering, now, temporaryDirectory, verify: true }));
    expect(isHoardError(error), String(error)).toBe(true);
    expect((error as Error).message).toContain("verification of the stored backup failed");
    expect(await filesUnder(storageDirectory)).toEqual([]);

    const good = await backup({ driver: fakeDriver(), storage, now, temporaryDirectory, verify: true });
    expect(good.verification?.sha256).toBe(good.manifest.object.sha256);
  });

  it("guesses the kind of a backup without a manifest from its name and first bytes", () => {
    expect(guessKind("a/backup-20260101000000.dump.gz", Buffer.from("PGDMP"))).toBe("postgresql");
    expect(guessKind("backup-20260101000000.archive.gz", Buffer.alloc(0))).toBe("mongodb");
    expect(guessKind("backup-20260101000000.sql.gz", Buffer.from("-- MariaDB dump 10.19"))).toBe("mariadb");
    expect(guessKind("backup-20260101000000.sql.gz", Buffer.from("/*M!999999\\- enable the sandbox mode */"))).toBe("mariadb");
    expect(guessKind("backup-20260101000000.sql", Buffer.from("PRAGMA page_size=4096;"))).toBe("sqlite");
    expect(guessKind("backup-20260101000000.sql", Buffer.from("--\n-- PostgreSQL database dump\n"))).toBe("postgresql");
    expect(guessKind("backup-20260101000000.sql", Buffer.from("hello"))).toBeUndefined();
  });
});

describe("drill comparison", () => {
  const manifest: Inventory = {
    items: [
      { database: "public", name: "item", kind: "table", count: 10 },
      { database: "public", name: "item_id_seq", kind: "sequence" },
      { database: "public", name: "note", kind: "table" },
    ],
    exactCounts: true,
  };

  it("finds nothing when the same tables hold the same counts, whatever the database is called", () => {
    const restored: Inventory = {
      items: [
        { database: "public", name: "item", kind: "table", count: 10 },
        { database: "public", name: "note", kind: "table", count: 3 },
      ],
      exactCounts: true,
    };
    expect(compareInventories(manifest, restored)).toEqual([]);
    const single = { items: [{ database: "shop", name: "t", kind: "collection" as const, count: 2 }], exactCounts: true };
    expect(
      compareInventories(single, { items: [{ database: "drill_1", name: "t", kind: "collection", count: 2 }], exactCounts: true }),
    ).toEqual([]);
  });

  it("names a missing table, an unexpected one and a count that differs; estimates are not compared", () => {
    const restored: Inventory = {
      items: [
        { database: "public", name: "item", kind: "table", count: 9 },
        { database: "public", name: "extra", kind: "table", count: 1 },
      ],
      exactCounts: true,
    };
    expect(compareInventories(manifest, restored)).toEqual([
      { item: "item", expected: 10, restored: 9 },
      { item: "note", expected: "present", restored: "absent" },
      { item: "extra", expected: "absent", restored: 1 },
    ]);
    expect(compareInventories({ ...manifest, exactCounts: false }, restored).map((difference) => difference.item)).toEqual([
      "note",
      "extra",
    ]);
  });
});
