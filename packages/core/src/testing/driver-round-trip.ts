import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Driver } from "../driver.js";
import { backup } from "../pipelines/backup.js";
import { listBackups } from "../pipelines/list.js";
import { restore } from "../pipelines/restore.js";
import { createLocalStorage } from "../storage/local.js";
import type { Storage } from "../storage.js";

export interface DriverRoundTripOptions {
  /** Creates an empty database (or server namespace) and returns its URL. */
  createDatabase(): Promise<string>;
  /** Fills a database with the fixture. */
  seed(url: string): Promise<void>;
  /** Reads back everything the fixture covers, as a value `toEqual` can compare. */
  snapshot(url: string): Promise<unknown>;
  /** Creates the driver for a URL, e.g. `(url) => createPostgresDriver({ url })`. */
  driver(url: string): Driver | Promise<Driver>;
  /** Storage to use; a fresh local directory when omitted. */
  storage?(): Promise<Storage>;
  timeoutMs?: number;
}

/**
 * The round trip every driver must pass: seed a database, back it up in stream and file mode, list
 * it, restore it into a new empty database, and compare everything the snapshot reads.
 */
export function describeDriverRoundTrip(name: string, options: DriverRoundTripOptions): void {
  describe(`${name} round trip`, () => {
    let storage: Storage;
    let directory: string | undefined;
    let sourceUrl: string;
    let expected: unknown;

    beforeAll(async () => {
      if (options.storage) storage = await options.storage();
      else {
        directory = await mkdtemp(join(tmpdir(), "hoard-round-trip-"));
        storage = createLocalStorage({ directory });
      }
      sourceUrl = await options.createDatabase();
      await options.seed(sourceUrl);
      expected = await options.snapshot(sourceUrl);
    }, options.timeoutMs ?? 120_000);

    afterAll(async () => {
      if (directory) await rm(directory, { recursive: true, force: true });
    });

    it("reads the fixture: an empty database's snapshot differs from the seeded one", async () => {
      // Without this, a snapshot that reads nothing would make every round trip pass. Failing to
      // read an empty database (its tables are missing) counts as differing.
      const empty = await options.snapshot(await options.createDatabase()).catch((error: unknown) => ({ unreadable: String(error) }));
      expect(empty).not.toEqual(expected);
    });

    for (const mode of ["stream", "file"] as const) {
      it(
        `backs up in ${mode} mode and restores into an empty database exactly`,
        async () => {
          const prefix = `round-trip-${mode}`;
          const result = await backup({ driver: await options.driver(sourceUrl), storage, prefix, mode });
          expect(result.size).toBeGreaterThan(0);
          const listed = await listBackups(storage, { prefix });
          expect(listed.map((entry) => entry.key)).toEqual([result.key]);

          const targetUrl = await options.createDatabase();
          await restore({ driver: await options.driver(targetUrl), storage, latest: { prefix }, mode });
          expect(await options.snapshot(targetUrl)).toEqual(expected);
        },
        options.timeoutMs ?? 120_000,
      );
    }
  });
}
