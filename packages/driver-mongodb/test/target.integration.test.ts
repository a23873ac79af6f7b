import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isHoardError, restore } from "@hoard/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseMongoUrl } from "../src/connection-string.ts";
import { createMongoDriver } from "../src/index.ts";
import { databaseUrl, insert, newDatabaseUrl, snapshotFixture, withClient } from "./fixture.ts";
import { dumpToBuffer, failureOf, put, temporaryStorage } from "./helpers.ts";

const server = inject("mongo");

/**
 * A restore without replace checks the target before it changes anything, and refuses one that
 * holds any collection (empty or not, system collections aside); with replace it drops what the
 * archive holds and leaves the rest alone. Against FerretDB, for the built-in engine and for the
 * tools engine's check (mongorestore itself is a stand-in here: it cannot be built on this machine).
 */
describe("mongodb restore into a target that holds data", () => {
  let place: Awaited<ReturnType<typeof temporaryStorage>>;
  let source: string;
  let archive: Buffer;
  const key = "shop-20260101000000.archive";
  const created: string[] = [];

  /** A new database on the test server, dropped after the tests. */
  function newDatabase(): string {
    const url = newDatabaseUrl(server.url);
    created.push(parseMongoUrl(url).database as string);
    return url;
  }

  beforeAll(async () => {
    place = await temporaryStorage();
    source = newDatabase();
    await withClient(source, async (client) => {
      await insert(client.db(), "orders", [
        { _id: 1, item: "book" },
        { _id: 2, item: "lamp" },
      ]);
      await insert(client.db(), "customers", [{ _id: 1, name: "Ada" }]);
    });
    archive = await dumpToBuffer(createMongoDriver({ url: source, engine: "builtin" }));
    await put(place.storage, key, archive);
  });

  afterAll(async () => {
    await place.remove();
    await withClient(server.url, async (client) => {
      for (const name of created) await client.db(name).dropDatabase();
    });
  });

  /** A target database holding an `orders` that differs from the archive's and a collection the archive lacks. */
  async function occupiedTarget(): Promise<string> {
    const target = newDatabase();
    await withClient(target, async (client) => {
      await insert(client.db(), "orders", [{ _id: 1, item: "stale" }]);
      await insert(client.db(), "notes", [{ _id: "keep", text: "not in the archive" }]);
    });
    return target;
  }

  describe("built-in engine", () => {
    it("refuses a non-empty target with TARGET_NOT_EMPTY, naming what it found, and leaves it untouched", async () => {
      const target = await occupiedTarget();
      const before = await snapshotFixture(target);
      const error = await failureOf(
        restore({ driver: createMongoDriver({ url: target, engine: "builtin" }), storage: place.storage, key }),
      );
      expect(isHoardError(error, "TARGET_NOT_EMPTY"), String(error)).toBe(true);
      expect((error as Error).message).toBe(
        `mongodb: ${parseMongoUrl(target).database} is not empty (2 collections, e.g. notes); use --replace to restore over it`,
      );
      expect(await snapshotFixture(target)).toEqual(before);
    });

    it("refuses a target whose only collection is empty", async () => {
      const target = newDatabase();
      await withClient(target, (client) =>
        client
          .db()
          .createCollection("placeholder")
          .then(() => undefined),
      );
      const error = await failureOf(
        restore({ driver: createMongoDriver({ url: target, engine: "builtin" }), storage: place.storage, key }),
      );
      expect(isHoardError(error, "TARGET_NOT_EMPTY"), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/is not empty \(1 collection: placeholder\)/);
      expect(await withClient(target, (client) => client.db().collection("placeholder").countDocuments())).toBe(0);
    });

    it("refuses, when the URL names no database, a database of the archive that holds data", async () => {
      const error = await failureOf(
        restore({
          driver: createMongoDriver({ url: databaseUrl(server.url, undefined), engine: "builtin" }),
          storage: place.storage,
          key,
        }),
      );
      expect(isHoardError(error, "TARGET_NOT_EMPTY"), String(error)).toBe(true);
      expect((error as Error).message).toContain(`${parseMongoUrl(source).database} is not empty (2 collections, e.g. customers)`);
    });

    it("with replace, restores the archive's collections over the target's and leaves the others alone", async () => {
      const target = await occupiedTarget();
      await restore({ driver: createMongoDriver({ url: target, engine: "builtin" }), storage: place.storage, key, replace: true });
      const restored = (await snapshotFixture(target)) as Record<string, unknown>;
      const expected = (await snapshotFixture(source)) as Record<string, unknown>;
      expect(restored.orders).toEqual(expected.orders);
      expect(restored.customers).toEqual(expected.customers);
      expect(await withClient(target, (client) => client.db().collection("notes").find().toArray())).toEqual([
        { _id: "keep", text: "not in the archive" },
      ]);
    });
  });

  describe("tools engine (stand-in mongorestore)", () => {
    let directory: string;
    let mongorestore: string;

    beforeAll(async () => {
      directory = await mkdtemp(join(tmpdir(), "hoard-mongodb-target-"));
      mongorestore = join(directory, "mongorestore");
      // Records its arguments and its input, as the real one would consume it.
      await writeFile(mongorestore, `#!/bin/sh\nprintf '%s\\n' "$@" > "${directory}/args"\ncat > "${directory}/stdin"\n`);
      await chmod(mongorestore, 0o755);
    });
    afterAll(async () => {
      await rm(directory, { recursive: true, force: true });
    });

    async function ran(): Promise<boolean> {
      return stat(join(directory, "args")).then(
        () => true,
        () => false,
      );
    }

    async function reset(): Promise<void> {
      await rm(join(directory, "args"), { force: true });
      await rm(join(directory, "stdin"), { force: true });
    }

    it("refuses a non-empty target before mongorestore runs", async () => {
      await reset();
      const target = await occupiedTarget();
      const error = await failureOf(
        restore({
          driver: createMongoDriver({ url: target, engine: "tools", mongorestorePath: mongorestore }),
          storage: place.storage,
          key,
        }),
      );
      expect(isHoardError(error, "TARGET_NOT_EMPTY"), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/is not empty \(2 collections, e\.g\. notes\); use --replace to restore over it$/);
      expect(await ran()).toBe(false);
    });

    it("refuses, when the URL names no database, the archive's databases (read from its prelude)", async () => {
      await reset();
      const error = await failureOf(
        restore({
          driver: createMongoDriver({ url: databaseUrl(server.url, undefined), engine: "tools", mongorestorePath: mongorestore }),
          storage: place.storage,
          key,
        }),
      );
      expect(isHoardError(error, "TARGET_NOT_EMPTY"), String(error)).toBe(true);
      expect((error as Error).message).toContain(`${parseMongoUrl(source).database} is not empty`);
      expect(await ran()).toBe(false);
    });

    it("passes the whole archive on after reading its prelude, when the archive's databases are empty", async () => {
      await reset();
      // The archive of a database that no longer exists on the server.
      const gone = newDatabase();
      await withClient(gone, (client) => insert(client.db(), "orders", [{ _id: 1, item: "book" }]));
      const goneArchive = await dumpToBuffer(createMongoDriver({ url: gone, engine: "builtin" }));
      await withClient(gone, (client) =>
        client
          .db()
          .dropDatabase()
          .then(() => undefined),
      );
      await put(place.storage, "gone-20260101000000.archive", goneArchive);
      await restore({
        driver: createMongoDriver({ url: databaseUrl(server.url, undefined), engine: "tools", mongorestorePath: mongorestore }),
        storage: place.storage,
        key: "gone-20260101000000.archive",
      });
      expect((await readFile(join(directory, "stdin"))).equals(goneArchive)).toBe(true);
      expect((await readFile(join(directory, "args"), "utf8")).trim().split("\n")).not.toContain("--drop");
    });

    it("with replace, passes --drop and runs without looking at the target", async () => {
      await reset();
      const target = await occupiedTarget();
      await restore({
        driver: createMongoDriver({ url: target, engine: "tools", mongorestorePath: mongorestore }),
        storage: place.storage,
        key,
        replace: true,
      });
      const args = (await readFile(join(directory, "args"), "utf8")).trim().split("\n");
      expect(args).toContain("--drop");
      expect((await readFile(join(directory, "stdin"))).equals(archive)).toBe(true);
    });
  });
});
