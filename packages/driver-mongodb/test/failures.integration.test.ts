import { createServer } from "node:net";
import { gzipSync } from "node:zlib";
import { backup, type HoardEvent, isHoardError, listBackups, restore } from "@hoard/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseMongoUrl } from "../src/connection-string.ts";
import { createMongoDriver } from "../src/index.ts";
import { databaseUrl, newDatabaseUrl, snapshotFixture } from "./fixture.ts";
import { dumpToBuffer, failureOf, put, seedSmall, temporaryStorage } from "./helpers.ts";

const server = inject("mongo");

/** A port on loopback where nothing listens. */
async function closedPort(): Promise<number> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const address = listener.address();
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}

describe("mongodb failures (built-in engine)", () => {
  let place: Awaited<ReturnType<typeof temporaryStorage>>;
  let archive: Buffer;
  let source: string;

  beforeAll(async () => {
    place = await temporaryStorage();
    source = newDatabaseUrl(server.url);
    await seedSmall(source, 200);
    archive = await dumpToBuffer(createMongoDriver({ url: source, engine: "builtin" }));
  });
  afterAll(async () => {
    await place.remove();
  });

  it("fails a backup of an unreachable server with UNREACHABLE and stores nothing", async () => {
    const url = `mongodb://127.0.0.1:${await closedPort()}/shop?serverSelectionTimeoutMS=1500`;
    const error = await failureOf(
      backup({ driver: createMongoDriver({ url, engine: "builtin" }), storage: place.storage, prefix: "unreachable" }),
    );
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    // The manifest's first question (describe) finds out, and the backup stops there.
    expect(String((error as Error).message)).toMatch(/mongodb: describe: cannot reach mongodb:\/\/127\.0\.0\.1:\d+\/shop/);
    expect(await place.files()).toEqual([]);
  });

  it("fails a backup with bad credentials with UNAUTHENTICATED, without the password, and stores nothing", async () => {
    const { hosts } = parseMongoUrl(server.url);
    const url = `mongodb://nobody:Wr0ngPassw0rd@${hosts}/shop?serverSelectionTimeoutMS=5000`;
    const error = await failureOf(
      backup({ driver: createMongoDriver({ url, engine: "builtin" }), storage: place.storage, prefix: "credentials" }),
    );
    expect(isHoardError(error, "UNAUTHENTICATED"), String(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/authentication failed/);
    expect(String((error as Error).message)).not.toContain("Wr0ngPassw0rd");
    expect(await place.files()).toEqual([]);
    expect(await listBackups(place.storage, { prefix: "credentials" })).toEqual([]);
  });

  it("fails the restore of a truncated archive with CORRUPT_ARCHIVE", async () => {
    for (const [key, bytes] of [
      ["cut-20260101000000.archive", archive.subarray(0, Math.floor(archive.length / 2))],
      // Only the final terminator is missing: the reader must still notice.
      ["cut-20260101000001.archive", archive.subarray(0, archive.length - 4)],
      ["cut-20260101000002.archive.gz", gzipSync(archive.subarray(0, archive.length - 10))],
      // A gzip stream that itself is cut short.
      ["cut-20260101000003.archive", gzipSync(archive).subarray(0, 200)],
    ] as const) {
      await put(place.storage, key, bytes);
      const error = await failureOf(
        restore({ driver: createMongoDriver({ url: newDatabaseUrl(server.url), engine: "builtin" }), storage: place.storage, key }),
      );
      expect(isHoardError(error, "CORRUPT_ARCHIVE"), `${key}: ${String(error)}`).toBe(true);
    }
  });

  it("fails the restore of an archive whose data changed with CORRUPT_ARCHIVE (CRC mismatch)", async () => {
    const damaged = Buffer.from(archive);
    const position = damaged.lastIndexOf(Buffer.from("MARKER"));
    damaged[position] = "N".charCodeAt(0);
    await put(place.storage, "crc-20260101000000.archive", damaged);
    const error = await failureOf(
      restore({
        driver: createMongoDriver({ url: newDatabaseUrl(server.url), engine: "builtin" }),
        storage: place.storage,
        key: "crc-20260101000000.archive",
      }),
    );
    expect(isHoardError(error, "CORRUPT_ARCHIVE")).toBe(true);
    expect(String((error as Error).message)).toMatch(/CRC mismatch/);
  });

  it("says UNSUPPORTED_FORMAT for a file that is not a mongodump archive", async () => {
    await put(place.storage, "other-20260101000000.archive.gz", gzipSync(Buffer.from("-- PostgreSQL database dump\n")));
    const error = await failureOf(
      restore({
        driver: createMongoDriver({ url: newDatabaseUrl(server.url), engine: "builtin" }),
        storage: place.storage,
        key: "other-20260101000000.archive.gz",
      }),
    );
    expect(isHoardError(error, "UNSUPPORTED_FORMAT"), String(error)).toBe(true);
  });

  it("refuses to restore over a non-empty target unless drop is set", async () => {
    await put(place.storage, "twice-20260101000000.archive", archive);
    const target = newDatabaseUrl(server.url);
    const key = "twice-20260101000000.archive";
    await restore({ driver: createMongoDriver({ url: target, engine: "builtin" }), storage: place.storage, key });
    const error = await failureOf(restore({ driver: createMongoDriver({ url: target, engine: "builtin" }), storage: place.storage, key }));
    expect(isHoardError(error, "TARGET_NOT_EMPTY"), String(error)).toBe(true);
    expect(String((error as Error).message)).toMatch(/is not empty \(1 collection: notes\); use --replace to restore over it/);
    await restore({ driver: createMongoDriver({ url: target, engine: "builtin", drop: true }), storage: place.storage, key });
    expect(await snapshotFixture(target)).toEqual(await snapshotFixture(source));
  });

  it("falls back to the built-in engine when mongodump is not installed (engine auto)", async () => {
    const events: HoardEvent[] = [];
    const driver = createMongoDriver({
      url: source,
      mongodumpPath: "hoard-no-such-mongodump",
      logger: { event: (event) => events.push(event) },
    });
    expect((await dumpToBuffer(driver)).equals(archive)).toBe(true);
    expect(events).toContainEqual({
      type: "log",
      level: "info",
      message: "mongodb: hoard-no-such-mongodump not found on PATH; using the built-in engine",
    });
  });

  it("restores into the archive's own database when the URL names none", async () => {
    const name = parseMongoUrl(source).database as string;
    const copyServer = databaseUrl(server.url, undefined);
    // Restoring the source archive onto its own database with drop leaves it as it was.
    await put(place.storage, "same-20260101000000.archive", archive);
    const before = await snapshotFixture(source);
    await restore({
      driver: createMongoDriver({ url: copyServer, engine: "builtin", drop: true }),
      storage: place.storage,
      key: "same-20260101000000.archive",
    });
    expect(await snapshotFixture(databaseUrl(server.url, name))).toEqual(before);
  });
});
