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

/**
 * Why a backup is kept: one of the `keep*` rules, `newer-than` (inside `olderThanMs`), or
 * `future-dated`: its name says it was taken more than `futureToleranceMs` after `now`.
 */
export type RetentionRule = "last" | "hourly" | "daily" | "weekly" | "monthly" | "yearly" | "newer-than" | "future-dated";

/**
 * How far ahead of the clock a backup's name may be before it is called future-dated: one hour,
 * more than any honest clock difference between the machine that took a backup and the one that
 * reads it.
 */
export const futureToleranceMs = 3_600_000;

/**
 * The backups whose names are dated more than `futureToleranceMs` (one hour) after `now`: a
 * machine with a wrong clock took them, or someone named them by hand. Policy: such a backup
 * cannot be trusted as the newest, or it would stay "newest" for as long as the skew lasts, so
 * `latestBackup` (and `restore --latest`) skips it; and it cannot be judged by age, so `prune`
 * never deletes it, does not let it take a `keep*` slot, and keeps it with the reason
 * `future-dated` (reported as "future-dated (kept, check the clock)"). Deleting one is left to a
 * person.
 */
export function futureBackups<T extends BackupEntry>(entries: readonly T[], now: Date = new Date()): T[] {
  return entries.filter((entry) => isFutureDated(entry, now));
}

/** Whether one backup is future-dated (see `futureBackups`). */
export function isFutureDated(entry: BackupEntry, now: Date = new Date()): boolean {
  return entry.time.getTime() > now.getTime() + futureToleranceMs;
}

/** A line for people about why a backup is kept. */
export function describeRetentionRule(rule: RetentionRule): string {
  return rule === "future-dated" ? "future-dated (kept, check the clock)" : rule;
}

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

/**
 * Decides what to keep and what to remove. Pure: the same input always gives the same plan.
 * Future-dated backups (see `futureBackups`) are always kept, with the reason `future-dated`, and
 * take no `keep*` slot: the rules apply to the others as if the future-dated ones were not there.
 */
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
  for (const backup of sorted) {
    if (isFutureDated(backup, now)) plan.keep.push({ backup, reasons: ["future-dated"] });
  }
  sorted
    .filter((backup) => !isFutureDated(backup, now))
    .forEach((backup, index) => {
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
