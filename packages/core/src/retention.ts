import { HoardError } from "./errors.js";
import type { BackupEntry } from "./naming.js";

/**
 * Which backups of one prefix to keep. The `keep*` counts and `olderThanMs` follow restic's
 * `forget` (0.18.1) exactly, in UTC: the backups are taken newest first; each `keep*` rule keeps
 * the newest backup of each of its N most recent calendar buckets (hours, days, ISO weeks, months,
 * years) that hold a backup, and also the oldest backup when the rule still has counts left at the
 * end (restic's "oldest" rule: the longest history the counts allow); `olderThanMs` is restic's
 * `--keep-within`, measured from the newest backup. A backup kept by any rule is kept.
 *
 * On top of that, a floor that restic does not have: the newest `keepMin` backups are never
 * deleted, unless `allowDeleteAll` lifts it.
 */
export interface RetentionPolicy {
  /** Keep the N newest backups. */
  keepLast?: number;
  /** Keep the newest backup of each of the N most recent hours that hold one. */
  keepHourly?: number;
  /** ... of each of the N most recent days. */
  keepDaily?: number;
  /** ... of each of the N most recent ISO weeks (Monday to Sunday). */
  keepWeekly?: number;
  /** ... of each of the N most recent months. */
  keepMonthly?: number;
  /** ... of each of the N most recent years. */
  keepYearly?: number;
  /**
   * Keep every backup taken less than this many milliseconds before the newest backup of the
   * prefix (restic's `--keep-within`): only backups at least this much older than the newest may
   * be removed. Measured from the newest backup, not from now, so a prefix whose backups stopped
   * long ago keeps its last window of backups instead of losing them all. A backup exactly this
   * much older than the newest is not kept by this rule (as in restic). 0 is no rule.
   */
  olderThanMs?: number;
  /**
   * The floor: the newest N backups (future-dated ones aside, which are always kept) are never
   * deleted, whatever the rules above say; those the rules would delete are kept with the reason
   * `minimum`. A whole number of at least 1; it cannot be 0 (see `allowDeleteAll`).
   * @default 1
   */
  keepMin?: number;
  /**
   * Lifts the floor, the one way to let a prune delete every backup of a prefix: the rules then
   * apply exactly as in restic, and a policy without any rule deletes every backup (as restic's
   * `forget --unsafe-allow-remove-all`). For retiring a prefix by hand, not for scheduled runs.
   * Cannot be combined with `keepMin`. Future-dated backups are kept even then.
   * @default false
   */
  allowDeleteAll?: boolean;
}

/** The calendar rules, whose bucket can repeat (`last` gives every backup its own). */
export type CalendarRule = "hourly" | "daily" | "weekly" | "monthly" | "yearly";

/**
 * Why a backup is kept: one of the `keep*` rules; `oldest-<rule>` when a calendar rule keeps the
 * oldest backup because it still has counts left although that backup's bucket already has a
 * newer one (restic's "oldest yearly snapshot"); `newer-than` (inside `olderThanMs` of the
 * newest); `minimum` (the rules would delete it, the `keepMin` floor keeps it); or `future-dated`:
 * its name says it was taken more than `futureToleranceMs` after `now`.
 */
export type RetentionRule = "last" | CalendarRule | `oldest-${CalendarRule}` | "newer-than" | "minimum" | "future-dated";

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
  if (rule === "future-dated") return "future-dated (kept, check the clock)";
  if (rule === "minimum") return "minimum (--keep-min)";
  if (rule.startsWith("oldest-")) return `${rule.slice("oldest-".length)} (the oldest, counts left)`;
  return rule;
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

const bucketRules: Array<[RetentionRule & ("last" | CalendarRule), KeepOption, (time: Date, index: number) => string]> = [
  ["last", "keepLast", (_time, index) => String(index)],
  ["hourly", "keepHourly", (time) => time.toISOString().slice(0, 13)],
  ["daily", "keepDaily", (time) => time.toISOString().slice(0, 10)],
  ["weekly", "keepWeekly", (time) => isoWeek(time)],
  ["monthly", "keepMonthly", (time) => time.toISOString().slice(0, 7)],
  ["yearly", "keepYearly", (time) => time.toISOString().slice(0, 4)],
];

type KeepOption = "keepLast" | "keepHourly" | "keepDaily" | "keepWeekly" | "keepMonthly" | "keepYearly";

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

/** Whether the policy has a rule that keeps something: a `keep*` count or an `olderThanMs` above 0. */
export function hasRetentionRule(policy: RetentionPolicy): boolean {
  return bucketRules.some(([, option]) => (policy[option] ?? 0) > 0) || (policy.olderThanMs ?? 0) > 0;
}

/**
 * Decides what to keep and what to remove. Pure: the same input always gives the same plan.
 * Future-dated backups (see `futureBackups`) are always kept, with the reason `future-dated`, and
 * take no part in the rest: the rules apply to the others as if the future-dated ones were not
 * there (so "the newest backup" is the newest that is not future-dated). Backups of the same
 * second are ordered by key (the greater key counts as newer); restic orders them by snapshot ID.
 * Throws INVALID_ARGUMENT for a policy without a rule (unless `allowDeleteAll`), a count that is
 * not a whole number of at least 0, a negative or non-finite `olderThanMs`, a `keepMin` that is
 * not a whole number of at least 1, or `keepMin` together with `allowDeleteAll`.
 */
export function planRetention(backups: readonly BackupEntry[], policy: RetentionPolicy, now: Date): PrunePlan {
  const keepMin = checkPolicy(policy);
  const sorted = [...backups].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.key < b.key ? 1 : -1));
  const plan: PrunePlan = { keep: [], remove: [] };
  for (const backup of sorted) {
    if (isFutureDated(backup, now)) plan.keep.push({ backup, reasons: ["future-dated"] });
  }
  const judged = sorted.filter((backup) => !isFutureDated(backup, now));
  const state = bucketRules.map(([rule, option, bucketOf]) => ({
    rule,
    bucketOf,
    remaining: policy[option] ?? 0,
    last: undefined as string | undefined,
  }));
  const newest = judged[0]?.time.getTime();
  const cutoff = newest === undefined || !policy.olderThanMs ? undefined : newest - policy.olderThanMs;
  judged.forEach((backup, index) => {
    const oldest = index === judged.length - 1;
    const reasons: RetentionRule[] = [];
    for (const entry of state) {
      if (entry.remaining <= 0) continue;
      const bucket = entry.bucketOf(backup.time, index);
      if (bucket !== entry.last || oldest) {
        // restic keeps the oldest backup for every rule that still has counts left.
        reasons.push(bucket === entry.last && entry.rule !== "last" ? `oldest-${entry.rule}` : entry.rule);
        entry.last = bucket;
        entry.remaining -= 1;
      }
    }
    if (cutoff !== undefined && backup.time.getTime() > cutoff) reasons.push("newer-than");
    if (reasons.length === 0 && index < keepMin) reasons.push("minimum");
    (reasons.length > 0 ? plan.keep : plan.remove).push({ backup, reasons });
  });
  return plan;
}

/** Checks the policy; returns the floor (0 when `allowDeleteAll` lifts it). */
function checkPolicy(policy: RetentionPolicy): number {
  for (const [, option] of bucketRules) {
    const count = policy[option];
    if (count !== undefined && (!Number.isInteger(count) || count < 0)) {
      throw new HoardError("INVALID_ARGUMENT", `${option} must be a whole number of at least 0, not ${count}`);
    }
  }
  const { olderThanMs, keepMin, allowDeleteAll } = policy;
  if (olderThanMs !== undefined && !(Number.isFinite(olderThanMs) && olderThanMs >= 0)) {
    // NaN or a negative duration would put the cutoff after the newest backup (or nowhere).
    throw new HoardError("INVALID_ARGUMENT", `olderThanMs must be a duration of at least 0 ms, not ${olderThanMs}`);
  }
  if (allowDeleteAll) {
    if (keepMin !== undefined) {
      throw new HoardError("INVALID_ARGUMENT", "--keep-min and --allow-delete-all contradict each other: give one of them");
    }
    return 0;
  }
  if (keepMin !== undefined && !(Number.isInteger(keepMin) && keepMin >= 1)) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `keepMin must be a whole number of at least 1, not ${keepMin}: the newest backup is always kept unless --allow-delete-all is given`,
    );
  }
  if (!hasRetentionRule(policy)) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      "prune needs a policy: give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --older-than (or --allow-delete-all to delete every backup of the prefix)",
    );
  }
  return keepMin ?? 1;
}
