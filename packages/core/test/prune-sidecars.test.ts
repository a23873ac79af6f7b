import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import type { Driver, RestoreInput } from "../src/driver.ts";
import { isHoardError } from "../src/errors.ts";
import type { HoardEvent, Logger } from "../src/logger.ts";
import { formatTimestamp } from "../src/naming.ts";
import { latestBackup, listBackups } from "../src/pipelines/list.ts";
import { prune } from "../src/pipelines/prune.ts";
import { restore } from "../src/pipelines/restore.ts";
import { futureBackups } from "../src/retention.ts";
import { createLocalStorage } from "../src/storage/local.ts";
import type { Storage } from "../src/storage.ts";

const created: string[] = [];
const hour = 3_600_000;
const day = 24 * hour;

afterAll(async () => {
  for (const directory of created) await rm(directory, { recursive: true, force: true });
});

let directory: string;
let storage: Storage;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-prune-sidecars-"));
  created.push(directory);
  storage = createLocalStorage({ directory });
});

function recorder(): Logger & { events: HoardEvent[] } {
  const events: HoardEvent[] = [];
  return { events, event: (event) => events.push(event) };
}

const logged = (logger: { events: HoardEvent[] }, level: string) =>
  logger.events.flatMap((event) => (event.type === "log" && event.level === level ? [event.message] : []));

async function put(key: string, content: string | Buffer): Promise<void> {
  await storage.upload(key, Readable.from([typeof content === "string" ? Buffer.from(content) : content]));
}

async function files(): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(directory, join(entry.parentPath, entry.name)))
    .sort();
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

const nameAt = (time: Date | number, extension = "dump.gz", prefix = "backup") =>
  `${prefix}-${formatTimestamp(new Date(time))}.${extension}`;

describe("backups and their companions", () => {
  const now = new Date("2026-01-10T12:00:00Z");
  // Ten daily backups, each with a checksum and a manifest written after it.
  const backups = Array.from({ length: 10 }, (_, index) => nameAt(Date.UTC(2026, 0, index + 1, 3)));
  const companionsOf = (key: string) => [`${key}.manifest.json`, `${key}.sha256`];

  beforeEach(async () => {
    for (const key of backups) {
      await put(key, gzipSync(`dump of ${key}`));
      await put(`${key}.sha256`, `0123abcd  ${key}\n`);
      await put(`${key}.manifest.json`, "{}");
    }
    await put("notes.txt", "not a backup");
  });

  it("lists only the backups, each with its companions", async () => {
    const listed = await listBackups(storage, { prefix: "backup" });
    expect(listed.map((entry) => entry.key)).toEqual([...backups].reverse());
    for (const entry of listed) expect(entry.companions).toEqual(companionsOf(entry.key));
    expect((await listBackups(storage)).map((entry) => entry.key)).toEqual([...backups].reverse());
  });

  it("takes the newest real backup as the latest, and restores it rather than its checksum", async () => {
    expect((await latestBackup(storage, "backup"))?.key).toBe(backups[9]);
    const restored: string[] = [];
    const driver: Driver = {
      name: "fake",
      url: "fake://db",
      extension: "dump",
      async dump() {
        throw new Error("not used");
      },
      async restore(input: RestoreInput) {
        if (input.kind !== "stream") throw new Error("expected a stream");
        const chunks: Buffer[] = [];
        for await (const chunk of input.stream) chunks.push(chunk as Buffer);
        restored.push(Buffer.concat(chunks).toString());
      },
    };
    const result = await restore({ driver, storage, latest: { prefix: "backup" } });
    expect(result.key).toBe(backups[9]);
    expect(restored).toEqual([`dump of ${backups[9]}`]);
  });

  it("prune --keep-daily keeps the newest real backups and deletes old ones together with their companions", async () => {
    const logger = recorder();
    const result = await prune({ storage, policy: { keepDaily: 7 }, logger, now });
    expect(result.keep.map((planned) => planned.backup.key)).toEqual(backups.slice(3).reverse());
    expect(result.remove.map((planned) => planned.backup.key)).toEqual(backups.slice(0, 3).reverse());
    expect(result.remove.map((planned) => planned.backup.companions)).toEqual(backups.slice(0, 3).reverse().map(companionsOf));
    expect(await files()).toEqual([...backups.slice(3).flatMap((key) => [key, ...companionsOf(key)]), "notes.txt"].sort());
    // Each backup goes first, then what belongs to it.
    expect(logger.events.flatMap((event) => (event.type === "deleted" ? [event.key] : []))).toEqual(
      backups
        .slice(0, 3)
        .reverse()
        .flatMap((key) => [key, ...companionsOf(key)]),
    );
  });

  it("a dry run lists the companions it would delete and deletes nothing", async () => {
    const before = await files();
    const result = await prune({ storage, policy: { keepLast: 2 }, dryRun: true, now });
    expect(result.remove).toHaveLength(8);
    expect(result.remove.every((planned) => planned.backup.companions?.length === 2)).toBe(true);
    expect(result.swept).toEqual([]);
    expect(await files()).toEqual(before);
  });

  it("leaves a companion whose backup is gone (an orphan) alone and does not take it for a backup", async () => {
    await storage.delete(backups[9] as string);
    expect((await latestBackup(storage, "backup"))?.key).toBe(backups[8]);
    const result = await prune({ storage, policy: { keepLast: 10 }, now });
    expect(result.remove).toEqual([]);
    expect(await files()).toContain(`${backups[9]}.sha256`);
  });
});

describe("future-dated backups", () => {
  const now = new Date("2026-01-10T12:00:00Z");
  const future = nameAt(Date.UTC(2026, 2, 1)); // seven weeks ahead: a machine with a wrong clock
  const soon = nameAt(now.getTime() + 59 * 60_000); // within the hour: an honest clock difference
  const real = [nameAt(Date.UTC(2026, 0, 8, 3)), nameAt(Date.UTC(2026, 0, 9, 3))];

  beforeEach(async () => {
    for (const key of [future, ...real]) await put(key, gzipSync(key));
  });

  it("latestBackup skips a backup dated more than an hour ahead, with a warning, and futureBackups names it", async () => {
    const logger = recorder();
    expect((await latestBackup(storage, "backup", { now, logger }))?.key).toBe(real[1]);
    expect(logged(logger, "warn")).toHaveLength(1);
    expect(logged(logger, "warn")[0]).toContain(future);
    expect(futureBackups(await listBackups(storage, { prefix: "backup" }), now).map((entry) => entry.key)).toEqual([future]);

    await put(soon, gzipSync(soon));
    expect((await latestBackup(storage, "backup", { now }))?.key).toBe(soon);
  });

  it("prune keeps it as future-dated without giving it a keep slot, and warns", async () => {
    const logger = recorder();
    const result = await prune({ storage, policy: { keepLast: 1 }, logger, now });
    expect(result.keep.map((planned) => [planned.backup.key, planned.reasons])).toEqual([
      [future, ["future-dated"]],
      [real[1], ["last"]],
    ]);
    expect(result.remove.map((planned) => planned.backup.key)).toEqual([real[0]]);
    expect(await files()).toEqual([future, real[1]].sort());
    expect(logged(logger, "warn").join("\n")).toContain(`${future}: future-dated (kept, check the clock)`);
  });

  it("prune never deletes it by age, and measures the window from the newest real backup, not from it", async () => {
    const result = await prune({ storage, policy: { olderThanMs: day }, now });
    // real[0] is exactly a day before real[1], the newest real backup: outside the window, as in restic.
    expect(result.keep.map((planned) => planned.backup.key)).toEqual([future, real[1]]);
    expect(await files()).toEqual([future, real[1]].sort());
  });
});

describe("prune sweeps what killed uploads left", () => {
  async function partial(name: string, ageMs: number): Promise<string> {
    const path = join(directory, `.hoard-partial-a1b2c3d4e5f6-${name}`);
    await writeFile(path, "half a dump");
    const time = new Date(Date.now() - ageMs);
    await utimes(path, time, time);
    return path;
  }

  it("removes stale temporary files of the prefix after deleting, logs and returns them; keeps a fresh one", async () => {
    const now = new Date();
    const kept = nameAt(now.getTime() - hour);
    const old = nameAt(now.getTime() - 3 * day);
    await put(kept, gzipSync("kept"));
    await put(old, gzipSync("old"));
    const killed = nameAt(now.getTime() - 2 * day);
    await partial(killed, 2 * day);
    const running = nameAt(now.getTime() - 60_000);
    await partial(running, 60_000);
    await partial(nameAt(now.getTime() - 2 * day, "sql.gz", "other"), 2 * day);

    const dry = await prune({ storage, policy: { keepLast: 1 }, dryRun: true, now });
    expect(dry.swept).toEqual([]);
    expect((await files()).filter((name) => name.startsWith(".hoard-partial-"))).toHaveLength(3);

    const logger = recorder();
    const result = await prune({ storage, policy: { keepLast: 1 }, logger, now });
    expect(result.remove.map((planned) => planned.backup.key)).toEqual([old]);
    expect(result.swept.map(({ key, kind }) => ({ key, kind }))).toEqual([{ key: killed, kind: "temporary file" }]);
    expect(logged(logger, "info").some((message) => message.includes(killed) && message.includes("temporary file"))).toBe(true);
    expect(await files()).toEqual(
      [
        kept,
        `.hoard-partial-a1b2c3d4e5f6-${running}`,
        `.hoard-partial-a1b2c3d4e5f6-${nameAt(now.getTime() - 2 * day, "sql.gz", "other")}`,
      ].sort(),
    );
  });

  it("keeps the leftovers of another prefix that begins with this one's name and a dash", async () => {
    // `backup-old` is another job's prefix: its killed uploads are that job's prune's to sweep.
    const now = new Date();
    await put(nameAt(now.getTime() - hour), gzipSync("kept"));
    const killed = nameAt(now.getTime() - 2 * day);
    await partial(killed, 2 * day);
    const otherJob = nameAt(now.getTime() - 2 * day, "dump.gz", "backup-old");
    await partial(otherJob, 2 * day);
    const sidecar = `${nameAt(now.getTime() - 2 * day)}.manifest.json`;
    await partial(sidecar, 2 * day);
    const result = await prune({ storage, policy: { keepLast: 1 }, now });
    expect(result.swept.map(({ key }) => key).sort()).toEqual([killed, sidecar].sort());
    expect((await files()).filter((name) => name.startsWith(".hoard-partial-"))).toEqual([`.hoard-partial-a1b2c3d4e5f6-${otherJob}`]);
  });

  it("is not stopped by a store without sweep", async () => {
    const withoutSweep: Storage = { ...storage, sweep: undefined };
    await put(nameAt(Date.UTC(2026, 0, 1)), gzipSync("x"));
    const result = await prune({ storage: withoutSweep, policy: { keepLast: 1 }, now: new Date("2026-01-02T00:00:00Z") });
    expect(result.swept).toEqual([]);
  });
});

describe("one prefix rule for backup, list, prune and restore --latest", () => {
  it.each(["a/../../b", "a/./b", "a//b", "../b", "nightly#1", "what?", "100%"])(
    "refuses %j everywhere with INVALID_ARGUMENT",
    async (prefix) => {
      await put(nameAt(Date.UTC(2026, 0, 1)), gzipSync("x"));
      const attempts: Array<[string, () => Promise<unknown>]> = [
        ["list", () => listBackups(storage, { prefix })],
        ["latest", () => latestBackup(storage, prefix)],
        ["prune", () => prune({ storage, prefix, policy: { keepLast: 1 } })],
      ];
      for (const [name, attempt] of attempts) {
        const error = await caught(attempt());
        expect(isHoardError(error, "INVALID_ARGUMENT"), `${name}: ${String(error)}`).toBe(true);
        expect((error as Error).message, name).toContain(`invalid prefix "${prefix}"`);
      }
    },
  );
});
