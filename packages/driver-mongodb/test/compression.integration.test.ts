import { gzipSync } from "node:zlib";
import { restore } from "@hoard/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createMongoDriver } from "../src/index.ts";
import { newDatabaseUrl, seedFixture, snapshotFixture } from "./fixture.ts";
import { dumpToBuffer, put, temporaryStorage, zstdCompress } from "./helpers.ts";

const server = inject("mongo");

describe("compressed archives (built-in engine)", () => {
  let archive: Buffer;
  let expected: unknown;
  let place: Awaited<ReturnType<typeof temporaryStorage>>;

  beforeAll(async () => {
    place = await temporaryStorage();
    const source = newDatabaseUrl(server.url);
    await seedFixture(source);
    expected = await snapshotFixture(source);
    archive = await dumpToBuffer(createMongoDriver({ url: source, engine: "builtin" }));
  });
  afterAll(async () => {
    await place.remove();
  });

  const cases: Array<[string, string, () => Buffer]> = [
    ["gzip named .archive.gz (undone by core's pipeline)", "backup-20260101000000.archive.gz", () => gzipSync(archive)],
    [
      "gzip named .archive (found by content, as mongodump --gzip --archive writes it)",
      "backup-20260101000001.archive",
      () => gzipSync(archive),
    ],
    ["zstd named .archive.zst (undone by core's pipeline)", "backup-20260101000002.archive.zst", () => zstdCompress(archive)],
    ["zstd named .archive (found by content)", "backup-20260101000003.archive", () => zstdCompress(archive)],
    ["gzip inside .gz (compressed twice)", "backup-20260101000004.archive.gz", () => gzipSync(gzipSync(archive))],
  ];

  for (const [title, key, compress] of cases) {
    it(`restores ${title}`, async () => {
      await put(place.storage, key, compress());
      const target = newDatabaseUrl(server.url);
      await restore({ driver: createMongoDriver({ url: target, engine: "builtin" }), storage: place.storage, key });
      expect(await snapshotFixture(target)).toEqual(expected);
    });
  }
});
