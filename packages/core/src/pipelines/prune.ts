import { isHoardError, toHoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";
import { validatePrefix } from "../naming.js";
import { describeRetentionRule, type PrunePlan, planRetention, type RetentionPolicy } from "../retention.js";
import type { Storage, SweptItem } from "../storage.js";
import { listBackups } from "./list.js";

/** Leftovers of uploads started longer ago than this are swept: no upload of a backup runs a day. */
const sweepAfterMs = 24 * 3_600_000;

export interface PruneOptions {
  storage: Storage;
  policy: RetentionPolicy;
  /** Only backups of exactly this prefix are considered. @default "backup" */
  prefix?: string;
  /** Plan only; delete nothing. */
  dryRun?: boolean;
  logger?: Logger;
  now?: Date;
  /** Stops the prune between (and during) storage calls; it then fails with ABORTED. */
  signal?: AbortSignal;
}

export interface PruneResult extends PrunePlan {
  dryRun: boolean;
  /**
   * What killed uploads of this prefix left behind (temporary files, open multipart uploads)
   * started more than a day ago, removed after the backups; empty in a dry run.
   */
  swept: SweptItem[];
}

/**
 * Lists the backups of one prefix, plans with the retention policy, and deletes the rest: each
 * backup first, then its companions (`<backup key>.<anything>`, e.g. a `.sha256`). Future-dated
 * backups are kept and reported (see `futureBackups`). Then, unless this is a dry run, asks the
 * storage to sweep what uploads killed more than a day ago left behind.
 */
export async function prune(options: PruneOptions): Promise<PruneResult> {
  const { storage, logger, signal } = options;
  const prefix = validatePrefix(options.prefix ?? "backup");
  const now = options.now ?? new Date();
  const backups = await listBackups(storage, { prefix, signal });
  const plan = planRetention(backups, options.policy, now);
  for (const { backup, reasons } of plan.keep) {
    if (reasons.includes("future-dated")) {
      log(logger, "warn", `${backup.key}: ${describeRetentionRule("future-dated")}: its name says ${backup.time.toISOString()}, after now`);
    }
  }
  if (options.dryRun) return { ...plan, dryRun: true, swept: [] };
  for (const { backup } of plan.remove) {
    for (const key of [backup.key, ...(backup.companions ?? [])]) {
      try {
        await storage.delete(key, { signal });
      } catch (error) {
        throw toHoardError(error, "STORAGE_FAILED", `prune stopped while deleting ${key}`);
      }
      logger?.event({ type: "deleted", key });
    }
  }
  const swept = await sweep(storage, prefix, now, logger, signal);
  return { ...plan, dryRun: false, swept };
}

async function sweep(storage: Storage, prefix: string, now: Date, logger: Logger | undefined, signal?: AbortSignal): Promise<SweptItem[]> {
  if (!storage.sweep) return [];
  let swept: SweptItem[];
  try {
    swept = await storage.sweep({ prefix: `${prefix}-`, before: new Date(now.getTime() - sweepAfterMs), signal });
  } catch (error) {
    if (isHoardError(error, "ABORTED") || signal?.aborted) throw toHoardError(error, "ABORTED", "prune aborted while sweeping");
    // The backups are pruned; leftovers that could not be swept are reported, not fatal.
    log(logger, "warn", `could not remove what interrupted uploads left behind: ${(error as Error).message}`);
    return [];
  }
  for (const item of swept) {
    const started = item.startedAt ? `, started ${item.startedAt.toISOString()}` : "";
    log(logger, "info", `removed the ${item.kind} of an interrupted upload of ${item.key}${started}`);
  }
  return swept;
}
