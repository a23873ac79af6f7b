/**
 * `prune` on a real local directory: the floor (the newest backup, the newest `keepMin`), the
 * window measured from the newest backup, `allowDeleteAll`, and objects prune does not own.
 */
import { Readable } from "node:stream";
import { beforeEach, describe, expect, it } from "vitest";
import { isHoardError } from "../src/errors.ts";
import type { HoardEvent, Logger } from "../src/logger.ts";
import { formatTimestamp } from "../src/naming.ts";
import { prune } from "../src/pipelines/prune.ts";
import type { RetentionPolicy } from "../src/retention.ts";
import type { Storage } from "../src/storage.ts";
import { filesUnder, freshDirectories, freshStorage } from "./helpers.ts";

const freshDirectory = freshDirectories("prune-floor");
const day = 86_400_000;
const now = new Date("2026-06-01T00:00:00Z");

let directory: string;
let storage: Storage;

beforeEach(async () => {
  ({ storageDirectory: directory, storage } = await freshStorage(freshDirectory));
});

async function put(...keys: string[]): Promise<void> {
  for (const key of keys) await storage.upload(key, Readable.from([Buffer.from(`content of ${key}`)]));
}

function recorder(): Logger & { deleted: string[] } {
  const deleted: string[] = [];
  return { deleted, event: (event: HoardEvent) => (event.type === "deleted" ? void deleted.push(event.key) : undefined) };
}

/** Daily backups at 03:00 from `first` for `count` days. */
function daily(prefix: string, first: string, count: number): string[] {
  return Array.from(
    { length: count },
    (_, index) => `${prefix}-${formatTimestamp(new Date(Date.parse(`${first}T03:00:00Z`) + index * day))}.dump.gz`,
  );
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe("backups that stopped long ago", () => {
  it("--older-than keeps the last window of them instead of deleting every one", async () => {
    // Ten daily backups that ended four months before now.
    const backups = daily("db", "2026-01-20", 10);
    await put(...backups);
    const logger = recorder();
    const result = await prune({ storage, prefix: "db", policy: { olderThanMs: 3 * day }, logger, now });
    expect(result.keep.map(({ backup, reasons }) => [backup.key, reasons])).toEqual(
      backups
        .slice(7)
        .reverse()
        .map((key) => [key, ["newer-than"]]),
    );
    expect(logger.deleted).toEqual(backups.slice(0, 7).reverse());
    expect(await filesUnder(directory)).toEqual(backups.slice(7));
  });
});

describe("the floor", () => {
  it("keeps the newest keepMin backups on top of the policy, and says why", async () => {
    const backups = daily("db", "2026-05-01", 10);
    await put(...backups);
    const result = await prune({ storage, prefix: "db", policy: { keepWeekly: 1, keepMin: 4 }, now });
    expect(result.keep.map(({ backup, reasons }) => [backup.key, reasons])).toEqual([
      [backups[9], ["weekly"]],
      [backups[8], ["minimum"]],
      [backups[7], ["minimum"]],
      [backups[6], ["minimum"]],
    ]);
    expect(await filesUnder(directory)).toEqual(backups.slice(6));
  });

  it("a second prune with the same policy deletes nothing more", async () => {
    const backups = daily("db", "2026-05-01", 10);
    await put(...backups);
    const policy: RetentionPolicy = { olderThanMs: 2 * day, keepMin: 3 };
    await prune({ storage, prefix: "db", policy, now });
    const again = await prune({ storage, prefix: "db", policy, now });
    expect(again.remove).toEqual([]);
    expect(await filesUnder(directory)).toEqual(backups.slice(7));
  });

  it.each<[string, RetentionPolicy]>([
    ["keepMin 0", { keepLast: 1, keepMin: 0 }],
    ["keepMin with allowDeleteAll", { keepLast: 1, keepMin: 2, allowDeleteAll: true }],
    ["no rule", {}],
    ["a zero window as the only rule", { olderThanMs: 0 }],
  ])("refuses %s with INVALID_ARGUMENT before asking the storage anything", async (_name, policy) => {
    const untouchable: Storage = {
      ...storage,
      list() {
        throw new Error("the storage was asked");
      },
      async delete() {
        throw new Error("the storage was asked");
      },
    };
    const error = await caught(prune({ storage: untouchable, prefix: "db", policy, now }));
    expect(isHoardError(error, "INVALID_ARGUMENT"), String(error)).toBe(true);
  });
});

describe("objects prune does not own", () => {
  const ours = daily("db", "2026-05-20", 4);
  const companions = ours.flatMap((key) => [`${key}.manifest.json`, `${key}.sha256`]);
  const strangers = [
    "notes.txt",
    "db-old-20260101000000.dump.gz", // the prefix db-old
    "db-old-20260101000000.dump.gz.sha256",
    "dbx-20260101000000.dump.gz",
    "db/nightly-20260101000000.dump.gz", // the prefix db/nightly
    "db-20260101000000.dump.gz.sha256", // a checksum whose backup is gone
    "db-20260102000000.txt", // not a backup extension
    "db-20260103000000", // no extension
    "db-latest.dump.gz", // no timestamp
    "other/db-20260104000000.dump.gz", // the same name in another folder
  ];

  beforeEach(async () => {
    await put(...ours, ...companions, ...strangers);
  });

  it("allowDeleteAll without a rule deletes every backup of the prefix and its companions, and nothing else", async () => {
    const dry = await prune({ storage, prefix: "db", policy: { allowDeleteAll: true }, dryRun: true, now });
    expect(dry.keep).toEqual([]);
    expect(dry.remove.map(({ backup }) => backup.key)).toEqual([...ours].reverse());
    expect(await filesUnder(directory)).toEqual([...ours, ...companions, ...strangers].sort());

    const logger = recorder();
    await prune({ storage, prefix: "db", policy: { allowDeleteAll: true }, logger, now });
    expect([...logger.deleted].sort()).toEqual([...ours, ...companions].sort());
    expect(await filesUnder(directory)).toEqual([...strangers].sort());
  });

  it("a policy deletes the old backups of the prefix with their companions, and nothing else", async () => {
    const logger = recorder();
    const result = await prune({ storage, prefix: "db", policy: { keepLast: 1 }, logger, now });
    expect(result.keep.map(({ backup }) => backup.key)).toEqual([ours[3]]);
    expect(await filesUnder(directory)).toEqual([ours[3], `${ours[3]}.manifest.json`, `${ours[3]}.sha256`, ...strangers].sort());
  });
});
