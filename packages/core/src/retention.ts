import { HoardError } from "./errors.js";
import type { BackupEntry } from "./naming.js";

/**
 * Which backups to keep, with restic's `forget` semantics: backups are taken newest first; each
 * `keep*` rule keeps the newest backup of each of its N most recent calendar buckets (UTC, ISO
 * weeks) that hold a backup; a backup kept by any rule is kept.
 */
export interface RetentionPolicy {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** Only backups older than this many milliseconds may be removed. */
  olderThanMs?: number;
}

export type RetentionRule = "last" | "hourly" | "daily" | "weekly" | "monthly" | "yearly" | "newer-than";

export interface PlannedBackup {
  backup: BackupEntry;
  /** Why it is kept; empty for backups to remove. */
  reasons: RetentionRule[];
}

export interface PrunePlan {
  keep: PlannedBackup[];
  remove: PlannedBackup[];
}

const bucketRules: Array<[RetentionRule, keyof RetentionPolicy, (time: Date, index: number) => string]> = [
  ["last", "keepLast", (_time, index) => String(index)],
  ["hourly", "keepHourly", (time) => time.toISOString().slice(0, 13)],
  ["daily", "keepDaily", (time) => time.toISOString().slice(0, 10)],
  ["weekly", "keepWeekly", (time) => isoWeek(time)],
  ["monthly", "keepMonthly", (time) => time.toISOString().slice(0, 7)],
  ["yearly", "keepYearly", (time) => time.toISOString().slice(0, 4)],
];

/** ISO 8601 week of a UTC time as `YYYY-Www`. */
export function isoWeek(time: Date): string {
  const date = new Date(Date.UTC(time.getUTCFullYear(), time.getUTCMonth(), time.getUTCDate()));
  const weekday = date.getUTCDay() || 7;
  // The Thursday of this week decides the ISO year.
  date.setUTCDate(date.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((date.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${date.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

export function hasRetentionRule(policy: RetentionPolicy): boolean {
  return bucketRules.some(([, option]) => (policy[option] ?? 0) > 0) || policy.olderThanMs !== undefined;
}

/** Decides what to keep and what to remove. Pure: the same input always gives the same plan. */
export function planRetention(backups: readonly BackupEntry[], policy: RetentionPolicy, now: Date): PrunePlan {
  for (const [, option] of bucketRules) {
    const count = policy[option];
    if (count !== undefined && (!Number.isInteger(count) || count < 0)) {
      throw new HoardError("INVALID_ARGUMENT", `${option} must be a whole number of at least 0, not ${count}`);
    }
  }
  const { olderThanMs } = policy;
  if (olderThanMs !== undefined && !(Number.isFinite(olderThanMs) && olderThanMs >= 0)) {
    // NaN or a negative duration would put the cutoff in the future (or nowhere) and remove every backup.
    throw new HoardError("INVALID_ARGUMENT", `olderThanMs must be a duration of at least 0 ms, not ${olderThanMs}`);
  }
  if (!hasRetentionRule(policy)) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      "prune needs a policy: give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --older-than",
    );
  }
  const sorted = [...backups].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.key < b.key ? 1 : -1));
  const state = bucketRules.map(([rule, option, bucketOf]) => ({
    rule,
    bucketOf,
    remaining: policy[option] ?? 0,
    last: undefined as string | undefined,
  }));
  const hasKeepRule = state.some((entry) => entry.remaining > 0);
  const cutoff = policy.olderThanMs === undefined ? undefined : now.getTime() - policy.olderThanMs;
  const plan: PrunePlan = { keep: [], remove: [] };
  sorted.forEach((backup, index) => {
    const reasons: RetentionRule[] = [];
    for (const entry of state) {
      if (entry.remaining <= 0) continue;
      const bucket = entry.bucketOf(backup.time, index);
      if (bucket !== entry.last) {
        entry.last = bucket;
        entry.remaining -= 1;
        reasons.push(entry.rule);
      }
    }
    if (cutoff !== undefined && backup.time.getTime() >= cutoff) reasons.push("newer-than");
    // With only --older-than, everything newer than the cutoff stays and everything older goes.
    const keep = reasons.length > 0 || (!hasKeepRule && cutoff === undefined);
    (keep ? plan.keep : plan.remove).push({ backup, reasons });
  });
  return plan;
}
