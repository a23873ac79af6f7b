import type { Driver, Inventory, InventoryItem, ScratchDatabase } from "../driver.js";
import type { DecryptionOptions } from "../encryption.js";
import { describeError, HoardError, toHoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";
import type { Storage } from "../storage.js";
import { restore } from "./restore.js";
import { type VerifyResult, verify } from "./verify.js";
import { withWorkDirectory } from "./work-directory.js";

export interface DrillOptions {
  storage: Storage;
  /** The backup to drill. Give either this or `latest`. */
  key?: string;
  latest?: { prefix: string };
  /**
   * The driver opened for the scratch database: the only database the drill touches. It must be
   * of the backup's kind and have `prepareScratch` and `inventory`.
   */
  driver: Driver;
  /** For a backup without a manifest: drill it anyway (nothing to compare the result with but the archive's own inventory). */
  structureOnly?: boolean;
  decryption?: DecryptionOptions;
  logger?: Logger;
  signal?: AbortSignal;
  temporaryDirectory?: string;
}

/** One difference between what the backup says it holds and what the drill restored. */
export interface DrillDifference {
  item: string;
  /** What the manifest (or the archive) says: a count, or `absent`/`present`. */
  expected: number | "present" | "absent";
  restored: number | "present" | "absent";
}

export interface DrillResult {
  /** The verification that ran first (size, checksum, archive structure). */
  verification: VerifyResult;
  /** Whether hoard created the scratch database (and dropped it again). */
  scratchCreated: boolean;
  /** How long the restore into the scratch database took, in milliseconds. */
  restoreMs: number;
  /** Tables or collections compared by name, and how many of them by count. */
  compared: { items: number; counts: number };
}

/**
 * A restore drill: verifies the backup, restores it into a scratch database (created by the
 * driver when the server allows, or an empty one the caller names; a non-empty one is refused
 * with TARGET_NOT_EMPTY), compares what was restored with the manifest's contents (the same
 * tables or collections; the same counts where the manifest's are exact) and with the archive's
 * own inventory where it has exact counts, and releases the scratch database (drops it when it
 * created it). Fails with CORRUPT_ARCHIVE naming the differences.
 */
export async function drill(options: DrillOptions): Promise<DrillResult> {
  const { driver, logger, signal } = options;
  if (!driver.prepareScratch || !driver.inventory) {
    throw new HoardError(
      "UNSUPPORTED_FORMAT",
      `${driver.name}: this driver cannot run restore drills (it has no scratch preparation or inventory)`,
    );
  }
  const verification = await verify({
    storage: options.storage,
    key: options.key,
    latest: options.latest,
    structureOnly: options.structureOnly,
    // The archive is checked by the drill database's driver, which must be of the backup's kind.
    driver: async (kind) => {
      if (kind !== driver.name) {
        throw new HoardError(
          "INVALID_ARGUMENT",
          `the backup is a ${kind} backup and the drill database is ${driver.name}: give a ${kind} URL`,
        );
      }
      return driver;
    },
    decryption: options.decryption,
    logger,
    signal,
    temporaryDirectory: options.temporaryDirectory,
  });
  return withWorkDirectory(options.temporaryDirectory, (workDirectory) => drillInto(driver, verification, options, workDirectory));
}

async function drillInto(driver: Driver, verification: VerifyResult, options: DrillOptions, workDirectory: string): Promise<DrillResult> {
  const { logger, signal } = options;
  const context = { signal, logger, workDirectory };
  // Checked by drill() already; repeated for the type checker.
  if (!driver.prepareScratch || !driver.inventory) throw new HoardError("INTERNAL", "drill: the driver lost its hooks");
  const scratch: ScratchDatabase = await driver.prepareScratch(context);
  log(logger, "info", `drill: ${scratch.created ? "created" : "using the empty"} scratch database ${driver.url}`);
  let result: DrillResult;
  try {
    const restored = await restore({
      storage: options.storage,
      key: verification.key,
      driver,
      decryption: options.decryption,
      logger,
      signal,
      temporaryDirectory: options.temporaryDirectory,
    });
    const inventory = await driver.inventory({ ...context, exactCounts: true });
    const expected = verification.manifest?.contents;
    const differences = [
      ...(expected ? compareInventories(expected, inventory) : []),
      ...(verification.archive?.inventory?.exactCounts ? compareInventories(verification.archive.inventory, inventory) : []),
    ];
    if (differences.length > 0) {
      const shown = [...new Map(differences.map((difference) => [difference.item, difference])).values()];
      throw new HoardError(
        "CORRUPT_ARCHIVE",
        `drill: the restored database differs from what ${verification.key} says it holds: ${shown
          .slice(0, 5)
          .map((difference) => `${difference.item} (expected ${difference.expected}, restored ${difference.restored})`)
          .join(", ")}${shown.length > 5 ? `, and ${shown.length - 5} more` : ""}`,
      );
    }
    const compared = comparedItems(inventory, expected, verification.archive?.inventory);
    result = { verification, scratchCreated: scratch.created, restoreMs: restored.durationMs, compared };
  } catch (error) {
    // The drill's own failure says more; a failed release is then a warning.
    await release(scratch, driver, logger).catch((releaseError: unknown) => log(logger, "warn", describeError(releaseError)));
    throw toHoardError(error, "INTERNAL", "drill failed");
  }
  await release(scratch, driver, logger);
  return result;
}

/** Releases the scratch database (drops it when the drill created it). */
async function release(scratch: ScratchDatabase, driver: Driver, logger: Logger | undefined): Promise<void> {
  try {
    await scratch.release();
  } catch (error) {
    throw toHoardError(error, "TOOL_FAILED", `drill: could not drop the scratch database ${driver.url}`);
  }
  if (scratch.created) log(logger, "info", `drill: dropped the scratch database ${driver.url}`);
}

/** Tables and collections only: what a restore must bring back, whatever else the server adds. */
const comparedKinds = new Set<InventoryItem["kind"]>(["table", "collection"]);

/**
 * The items of `expected` missing from `restored` (or the other way round), and, when
 * `expected` counts exactly, the counts that differ. The database part of a name is left out when
 * each side holds only one database: a drill restores into a database of another name.
 */
export function compareInventories(expected: Inventory, restored: Inventory): DrillDifference[] {
  const expectedItems = keyed(expected);
  const restoredItems = keyed(restored);
  const differences: DrillDifference[] = [];
  for (const [name, item] of expectedItems) {
    const found = restoredItems.get(name);
    if (!found) differences.push({ item: name, expected: item.count ?? "present", restored: "absent" });
    else if (
      expected.exactCounts &&
      restored.exactCounts &&
      item.count !== undefined &&
      found.count !== undefined &&
      item.count !== found.count
    ) {
      differences.push({ item: name, expected: item.count, restored: found.count });
    }
  }
  for (const [name, found] of restoredItems) {
    if (!expectedItems.has(name)) differences.push({ item: name, expected: "absent", restored: found.count ?? "present" });
  }
  return differences;
}

function keyed(inventory: Inventory): Map<string, InventoryItem> {
  const items = inventory.items.filter((item) => comparedKinds.has(item.kind));
  const databases = new Set(items.map((item) => item.database ?? ""));
  const qualified = databases.size > 1;
  return new Map(items.map((item) => [qualified && item.database ? `${item.database}.${item.name}` : item.name, item]));
}

function comparedItems(restored: Inventory, manifest: Inventory | undefined, archive: Inventory | undefined) {
  const items = restored.items.filter((item) => comparedKinds.has(item.kind)).length;
  const exact = [manifest, archive].find((inventory) => inventory?.exactCounts);
  const counts = exact ? exact.items.filter((item) => comparedKinds.has(item.kind) && item.count !== undefined).length : 0;
  return { items, counts };
}
