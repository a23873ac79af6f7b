import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Driver } from "../src/driver.ts";
import { HoardError, isHoardError } from "../src/errors.ts";
import type { HoardEvent } from "../src/logger.ts";
import { backup } from "../src/pipelines/backup.ts";
import { createLocalStorage } from "../src/storage/local.ts";

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-unreachable-"));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/**
 * A driver whose describe fails as given once the dump has started (the questions run beside the
 * dump: a backup that asked them first would wait here for ever); counts the calls and tells whether
 * the dump's stream was stopped.
 */
function driverFailingDescribe(error: Error, inventoryError?: Error) {
  const calls = { inventory: 0, dump: 0 };
  const dumpStream = { destroyed: false };
  let dumpStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    dumpStarted = resolve;
  });
  const driver: Driver = {
    name: "stand-in",
    url: "stand-in://db",
    extension: "dump",
    async describe() {
      await started;
      throw error;
    },
    async inventory() {
      calls.inventory += 1;
      if (inventoryError) throw inventoryError;
      return { items: [{ database: "public", name: "orders", kind: "table", count: 3 }], exactCounts: false };
    },
    async dump() {
      calls.dump += 1;
      dumpStarted();
      let sent = false;
      // A dump that goes on until it is read to its end or stopped.
      const stream = new Readable({
        read() {
          if (!sent) this.push(Buffer.from("dump"));
          else this.push(null);
          sent = true;
        },
        destroy(cause, callback) {
          dumpStream.destroyed = true;
          callback(cause);
        },
      });
      return { kind: "stream", stream };
    },
    async restore() {},
  };
  return { driver, calls, dumpStream };
}

describe("backup when the driver cannot describe the server", () => {
  it("fails with UNREACHABLE after one wait: the questions run beside the dump, which is stopped; nothing is stored", async () => {
    const { driver, calls, dumpStream } = driverFailingDescribe(
      new HoardError("UNREACHABLE", "stand-in: no answer from db:5432 within 1 s"),
    );
    const storage = createLocalStorage({ directory });
    const error = await backup({ driver, storage }).catch((caught: unknown) => caught);
    expect(isHoardError(error, "UNREACHABLE")).toBe(true);
    expect(calls.dump).toBe(1);
    expect(dumpStream.destroyed).toBe(true);
    expect(await readdir(directory)).toEqual([]);
  });

  it.each([
    ["UNAUTHENTICATED", "stand-in: authentication failed"],
    ["NOT_FOUND", 'stand-in: database "shop" does not exist'],
  ] as const)("fails with %s too, the one line the user sees, and stops the dump", async (code, message) => {
    const { driver, dumpStream } = driverFailingDescribe(new HoardError(code, message));
    const error = await backup({ driver, storage: createLocalStorage({ directory }) }).catch((caught: unknown) => caught);
    expect(isHoardError(error, code)).toBe(true);
    expect((error as Error).message).toBe(message);
    expect(dumpStream.destroyed).toBe(true);
    expect(await readdir(directory)).toEqual([]);
  });

  it("says only the shared cause: no warning about the other question's failure beside it", async () => {
    // A missing database: describe says NOT_FOUND, the inventory's query fails too, with a plain tool failure.
    const { driver } = driverFailingDescribe(
      new HoardError("NOT_FOUND", 'stand-in: database "shop" does not exist'),
      new HoardError("TOOL_FAILED", 'psql failed (exit code 2): database "shop" does not exist'),
    );
    const events: HoardEvent[] = [];
    const logger = { event: (event: HoardEvent) => events.push(event) };
    const error = await backup({ driver, storage: createLocalStorage({ directory }), logger }).catch((caught: unknown) => caught);
    expect(isHoardError(error, "NOT_FOUND")).toBe(true);
    expect(events.filter((event) => event.type === "log" && event.level === "warn")).toEqual([]);
    expect(await readdir(directory)).toEqual([]);
  });

  it("goes on without the versions for any other failure, and stores the backup with its contents", async () => {
    const { driver, calls } = driverFailingDescribe(new HoardError("TOOL_FAILED", "stand-in: --version printed nothing"));
    const storage = createLocalStorage({ directory });
    const result = await backup({ driver, storage });
    expect(calls).toEqual({ inventory: 1, dump: 1 });
    expect(result.manifest.database.server).toBeUndefined();
    expect(result.manifest.contents?.items.map((item) => item.name)).toEqual(["orders"]);
    expect((await readdir(directory)).sort()).toEqual([result.key, `${result.key}.manifest.json`]);
  });
});
