import { isHoardError, toHoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";
import { isKeyOfPrefix, validatePrefix } from "../naming.js";
import { describeRetentionRule, type PrunePlan, planRetention, type RetentionPolicy } from "../retention.js";
import type { Storage, SweptItem } from "../storage.js";
import { listBackups } from "./list.js";

/** Leftovers of uploads started longer ago than this are swept: no upload of a backup runs a day. */
const sweepAfterMs = 24 * 3_600_000;

/**
 * What `prune` works on. The policy and the floor are described with `RetentionPolicy`; this is
 * the API the CLI's `hoard prune` and scheduled runs (after each successful backup) call.
 */
export interface PruneOptions {
  storage: Storage;
  /** Which backups to keep: restic's `forget` rules, `olderThanMs`, and the `keepMin` floor. */
  policy: RetentionPolicy;
  /**
   * Only backups of exactly this prefix (`<prefix>-<yyyyMMddHHmmss>.<ext>`) and their companions
   * are considered, deleted or swept; every other object is left alone.
   * @default "backup"
   */
  prefix?: string;
  /** Plan only; delete and sweep nothing. @default false */
  dryRun?: boolean;
  /** Receives a `deleted` event per deleted object, and warnings (future-dated backups). */
  logger?: Logger;
  /** The present: tells future-dated backups and which leftovers are stale. @default new Date() */
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
 * Lists the backups of one prefix, plans with the retention policy (`planRetention`), and deletes
 * the rest: each backup first, then its companions (`<backup key>.<anything>`, e.g. a `.sha256`
 * or a `.manifest.json`). Objects that are not backups of this prefix or their companions are
 * never touched. The newest backup (the newest `policy.keepMin`) is never deleted unless
 * `policy.allowDeleteAll` is set; future-dated backups are kept and reported (see
 * `futureBackups`). Then, unless this is a dry run, asks the storage to sweep what uploads killed
 * more than a day ago left behind of this prefix's backups (`<prefix>-<time>.…`, never another
 * prefix's such as `<prefix>-old-<time>.…`). Throws INVALID_ARGUMENT for a bad policy or prefix
 * before anything is listed or deleted.
 */
export async function prune(options: PruneOptions): Promise<PruneResult> {
  const { storage, logger, signal } = options;
  const prefix = validatePrefix(options.prefix ?? "backup");
  const now = options.now ?? new Date();
  // Checks the policy before the storage is asked anything.
  planRetention([], options.policy, now);
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
    swept = await storage.sweep({
      prefix: `${prefix}-`,
      before: new Date(now.getTime() - sweepAfterMs),
      keyMatches: (key) => isKeyOfPrefix(key, prefix),
      signal,
    });
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
