import { toHoardError } from "../errors.js";
import type { Logger } from "../logger.js";
import { validatePrefix } from "../naming.js";
import { type PrunePlan, planRetention, type RetentionPolicy } from "../retention.js";
import type { Storage } from "../storage.js";
import { listBackups } from "./list.js";

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
}

/** Lists the backups of one prefix, plans with the retention policy, and deletes the rest. */
export async function prune(options: PruneOptions): Promise<PruneResult> {
  const prefix = validatePrefix(options.prefix ?? "backup");
  const backups = await listBackups(options.storage, { prefix, signal: options.signal });
  const plan = planRetention(backups, options.policy, options.now ?? new Date());
  if (!options.dryRun) {
    for (const { backup } of plan.remove) {
      try {
        await options.storage.delete(backup.key, { signal: options.signal });
      } catch (error) {
        throw toHoardError(error, "STORAGE_FAILED", `prune stopped while deleting ${backup.key}`);
      }
      options.logger?.event({ type: "deleted", key: backup.key });
    }
  }
  return { ...plan, dryRun: options.dryRun ?? false };
}
