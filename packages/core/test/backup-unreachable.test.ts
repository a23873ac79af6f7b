import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Driver } from "../src/driver.ts";
import { HoardError, isHoardError } from "../src/errors.ts";
import { backup } from "../src/pipelines/backup.ts";
import { createLocalStorage } from "../src/storage/local.ts";

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-unreachable-"));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** A driver whose describe fails as given; counts the calls that come after it. */
function driverFailingDescribe(error: Error) {
  const calls = { inventory: 0, dump: 0 };
  const driver: Driver = {
    name: "stand-in",
    url: "stand-in://db",
    extension: "dump",
    async describe() {
      throw error;
    },
    async inventory() {
      calls.inventory += 1;
      return { items: [], exactCounts: false };
    },
    async dump() {
      calls.dump += 1;
      return { kind: "stream", stream: Readable.from([Buffer.from("dump")]) };
    },
    async restore() {},
  };
  return { driver, calls };
}

describe("backup when the driver cannot describe the server", () => {
  it("fails at once with UNREACHABLE, without asking the inventory or starting the dump (each would wait out the timeout again)", async () => {
    const { driver, calls } = driverFailingDescribe(new HoardError("UNREACHABLE", "stand-in: no answer from db:5432 within 1 s"));
    const storage = createLocalStorage({ directory });
    const error = await backup({ driver, storage }).catch((caught: unknown) => caught);
    expect(isHoardError(error, "UNREACHABLE")).toBe(true);
    expect(calls).toEqual({ inventory: 0, dump: 0 });
    expect(await readdir(directory)).toEqual([]);
  });

  it.each([
    ["UNAUTHENTICATED", "stand-in: authentication failed"],
    ["NOT_FOUND", 'stand-in: database "shop" does not exist'],
  ] as const)("fails at once with %s too, the one line the user sees", async (code, message) => {
    const { driver, calls } = driverFailingDescribe(new HoardError(code, message));
    const error = await backup({ driver, storage: createLocalStorage({ directory }) }).catch((caught: unknown) => caught);
    expect(isHoardError(error, code)).toBe(true);
    expect((error as Error).message).toBe(message);
    expect(calls).toEqual({ inventory: 0, dump: 0 });
  });

  it("goes on without the versions for any other failure, and stores the backup", async () => {
    const { driver, calls } = driverFailingDescribe(new HoardError("TOOL_FAILED", "stand-in: --version printed nothing"));
    const storage = createLocalStorage({ directory });
    const result = await backup({ driver, storage });
    expect(calls).toEqual({ inventory: 1, dump: 1 });
    expect((await readdir(directory)).sort()).toEqual([result.key, `${result.key}.manifest.json`]);
  });
});
