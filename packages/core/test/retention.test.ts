import { format, getISOWeek, getISOWeekYear } from "date-fns";
import { describe, expect, it } from "vitest";
import { isHoardError } from "../src/errors.ts";
import { type BackupEntry, formatTimestamp } from "../src/naming.ts";
import {
  type CalendarRule,
  describeRetentionRule,
  futureBackups,
  isoWeek,
  type PrunePlan,
  planRetention,
  type RetentionPolicy,
  type RetentionRule,
} from "../src/retention.ts";
import { prng, thrown } from "./helpers.ts";

const day = 86_400_000;
const hour = 3_600_000;

function entry(iso: string, extension = "sql.gz", prefix = "backup"): BackupEntry {
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) throw new Error(`bad test date ${iso}`);
  return { key: `${prefix}-${formatTimestamp(time)}.${extension}`, prefix, time, extension, size: 1 };
}

function keptKeys(plan: PrunePlan): string[] {
  return plan.keep.map((planned) => planned.backup.key);
}

function keptTimes(plan: PrunePlan): string[] {
  return plan.keep.map((planned) => planned.backup.time.toISOString());
}

/** Every day from `first` to `last` (inclusive) at the given UTC time of day. */
function everyDay(first: string, last: string, timeOfDay = "12:00:00"): BackupEntry[] {
  const backups: BackupEntry[] = [];
  for (let time = Date.parse(`${first}T${timeOfDay}Z`); time <= Date.parse(`${last}T${timeOfDay}Z`); time += day) {
    backups.push(entry(new Date(time).toISOString()));
  }
  return backups;
}

const now = new Date("2030-01-01T00:00:00Z");

describe("isoWeek", () => {
  it.each([
    ["2020-12-31T12:00:00Z", "2020-W53"], // Thursday: the week of 2020's last Thursday
    ["2021-01-01T00:00:00Z", "2020-W53"], // Friday, calendar year 2021, ISO year 2020
    ["2021-01-03T23:59:59Z", "2020-W53"], // Sunday ends ISO week 53 of 2020
    ["2021-01-04T00:00:00Z", "2021-W01"], // Monday starts week 1
    ["2027-01-01T08:00:00Z", "2026-W53"],
    ["2026-12-31T23:59:59Z", "2026-W53"],
    ["2024-12-30T00:00:00Z", "2025-W01"], // Monday in calendar 2024 that belongs to ISO 2025
    ["2019-12-30T10:00:00Z", "2020-W01"],
    ["2026-01-01T00:00:00Z", "2026-W01"], // Thursday: week 1 of its own year
    ["2015-12-31T00:00:00Z", "2015-W53"],
    ["2016-01-03T00:00:00Z", "2015-W53"],
    ["2024-02-29T12:00:00Z", "2024-W09"],
    ["2026-06-15T00:00:00Z", "2026-W25"],
  ])("%s is in %s", (iso, week) => {
    expect(isoWeek(new Date(iso))).toBe(week);
  });

  it("agrees with date-fns for every day from 1990 to 2040, at both ends of the day", () => {
    const mismatches: string[] = [];
    for (let time = Date.UTC(1990, 0, 1); time < Date.UTC(2041, 0, 1); time += day) {
      for (const offset of [0, day - 1000]) {
        const date = new Date(time + offset);
        const expected = `${getISOWeekYear(date)}-W${String(getISOWeek(date)).padStart(2, "0")}`;
        if (isoWeek(date) !== expected) mismatches.push(`${date.toISOString()}: ${isoWeek(date)} != ${expected}`);
      }
    }
    expect(mismatches).toEqual([]);
  });
});

describe("planRetention: policy validation", () => {
  const backups = [entry("2026-01-01T00:00:00Z")];

  it.each<[string, RetentionPolicy]>([
    ["an empty policy", {}],
    ["only zero counts", { keepLast: 0, keepDaily: 0, keepYearly: 0 }],
  ])("refuses %s with INVALID_ARGUMENT", (_name, policy) => {
    const error = thrown(() => planRetention(backups, policy, now));
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
    expect((error as Error).message).toMatch(/--keep-last/);
  });

  it.each<[string, RetentionPolicy]>([
    ["a negative count", { keepLast: -1 }],
    ["a fractional count", { keepDaily: 1.5 }],
    ["NaN", { keepWeekly: Number.NaN }],
    ["Infinity", { keepMonthly: Number.POSITIVE_INFINITY }],
    ["a negative count next to a valid rule", { keepLast: 3, keepYearly: -2 }],
  ])("refuses %s with INVALID_ARGUMENT", (_name, policy) => {
    expect(
      isHoardError(
        thrown(() => planRetention(backups, policy, now)),
        "INVALID_ARGUMENT",
      ),
    ).toBe(true);
  });

  it.each<[string, number]>([
    ["NaN", Number.NaN],
    ["a negative duration", -86_400_000],
  ])("refuses older-than of %s with INVALID_ARGUMENT instead of removing every backup", (_name, olderThanMs) => {
    const history = [entry("2026-01-01T00:00:00Z"), entry("2025-01-01T00:00:00Z")];
    const error = thrown(() => planRetention(history, { olderThanMs }, new Date("2026-01-02T00:00:00Z")));
    expect(isHoardError(error, "INVALID_ARGUMENT"), `got ${error === undefined ? "a plan" : String(error)}`).toBe(true);
  });

  it("accepts an empty list of backups", () => {
    expect(planRetention([], { keepLast: 3 }, now)).toEqual({ keep: [], remove: [] });
    expect(planRetention([], { olderThanMs: day }, now)).toEqual({ keep: [], remove: [] });
  });
});

describe("planRetention: keep rules", () => {
  it("keep-last keeps the N newest backups whatever order they come in", () => {
    const backups = [
      entry("2026-01-03T00:00:00Z"),
      entry("2026-01-05T00:00:00Z"),
      entry("2026-01-01T00:00:00Z"),
      entry("2026-01-04T00:00:00Z"),
      entry("2026-01-02T00:00:00Z"),
    ];
    const plan = planRetention(backups, { keepLast: 3 }, now);
    expect(keptTimes(plan)).toEqual(["2026-01-05T00:00:00.000Z", "2026-01-04T00:00:00.000Z", "2026-01-03T00:00:00.000Z"]);
    expect(plan.keep.every((planned) => planned.reasons.join() === "last")).toBe(true);
    expect(plan.remove.map((planned) => planned.backup.time.toISOString())).toEqual([
      "2026-01-02T00:00:00.000Z",
      "2026-01-01T00:00:00.000Z",
    ]);
    expect(plan.remove.every((planned) => planned.reasons.length === 0)).toBe(true);
  });

  it("keep-last larger than the number of backups keeps them all", () => {
    const backups = everyDay("2026-01-01", "2026-01-04");
    const plan = planRetention(backups, { keepLast: 100 }, now);
    expect(plan.keep).toHaveLength(4);
    expect(plan.remove).toEqual([]);
  });

  it("restic docs: one backup every Sunday for 12 weeks, --keep-daily 4 keeps the last four Sundays", () => {
    const sundays = [
      "2019-09-01",
      "2019-09-08",
      "2019-09-15",
      "2019-09-22",
      "2019-09-29",
      "2019-10-06",
      "2019-10-13",
      "2019-10-20",
      "2019-10-27",
      "2019-11-03",
      "2019-11-10",
      "2019-11-17",
    ].map((date) => entry(`${date}T11:00:00Z`));
    const plan = planRetention(sundays, { keepDaily: 4 }, now);
    expect(keptTimes(plan)).toEqual([
      "2019-11-17T11:00:00.000Z",
      "2019-11-10T11:00:00.000Z",
      "2019-11-03T11:00:00.000Z",
      "2019-10-27T11:00:00.000Z",
    ]);
    expect(plan.remove).toHaveLength(8);
    expect(plan.keep.every((planned) => planned.reasons.join() === "daily")).toBe(true);
  });

  it("restic docs: daily backups for 100 years with --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 75", () => {
    // Ends on Sunday 2023-12-31, so the 7 dailies are exactly ISO week 2023-W52 and hold one weekly.
    const backups = everyDay("1924-01-01", "2023-12-31", "03:00:00");
    expect(backups).toHaveLength(36_525);
    const plan = planRetention(backups, { keepDaily: 7, keepWeekly: 5, keepMonthly: 12, keepYearly: 75 }, now);
    const kept = new Map(plan.keep.map((planned) => [planned.backup.time.toISOString().slice(0, 10), planned.reasons]));

    const dailies = ["2023-12-31", "2023-12-30", "2023-12-29", "2023-12-28", "2023-12-27", "2023-12-26", "2023-12-25"];
    const extraWeeklies = ["2023-12-24", "2023-12-17", "2023-12-10", "2023-12-03"];
    const extraMonthlies = ["11-30", "10-31", "09-30", "08-31", "07-31", "06-30", "05-31", "04-30", "03-31", "02-28", "01-31"].map(
      (monthDay) => `2023-${monthDay}`,
    );
    const extraYearlies = Array.from({ length: 74 }, (_, index) => `${2022 - index}-12-31`);
    // 7 dailies, 4 more last-days-of-the-week, 11 more last-days-of-the-month, 74 more last-days-of-the-year.
    expect(plan.keep).toHaveLength(7 + 4 + 11 + 74);
    expect([...kept.keys()].sort()).toEqual([...dailies, ...extraWeeklies, ...extraMonthlies, ...extraYearlies].sort());
    expect(kept.get("2023-12-31")).toEqual(["daily", "weekly", "monthly", "yearly"]);
    expect(kept.get("2023-12-30")).toEqual(["daily"]);
    expect(kept.get("2023-12-24")).toEqual(["weekly"]);
    expect(kept.get("2023-11-30")).toEqual(["monthly"]);
    expect(kept.get("1949-12-31")).toEqual(["yearly"]);
    expect(kept.has("1948-12-31")).toBe(false);
    expect(plan.keep.length + plan.remove.length).toBe(backups.length);
  });

  it("keeps only the newest backup of each bucket", () => {
    const backups = [
      entry("2026-03-10T01:00:00Z"),
      entry("2026-03-10T13:00:00Z"),
      entry("2026-03-10T23:59:59Z"),
      entry("2026-03-09T00:00:00Z"),
      entry("2026-03-09T18:30:00Z"),
      entry("2026-03-08T12:00:00Z"),
    ];
    const plan = planRetention(backups, { keepDaily: 2 }, now);
    expect(keptTimes(plan)).toEqual(["2026-03-10T23:59:59.000Z", "2026-03-09T18:30:00.000Z"]);
  });

  it("counts only buckets that hold a backup, not calendar units", () => {
    const backups = [entry("2026-01-01T10:00:00Z"), entry("2026-01-05T10:00:00Z"), entry("2026-01-20T10:00:00Z")];
    expect(keptTimes(planRetention(backups, { keepDaily: 2 }, now))).toEqual(["2026-01-20T10:00:00.000Z", "2026-01-05T10:00:00.000Z"]);
    expect(keptTimes(planRetention(backups, { keepHourly: 3 }, now))).toHaveLength(3);
  });

  it("puts hours and days on UTC boundaries", () => {
    const backups = [
      entry("2026-05-01T10:59:59Z"),
      entry("2026-05-01T11:00:00Z"),
      entry("2026-05-01T11:59:59Z"),
      entry("2026-04-30T23:59:59Z"),
    ];
    expect(keptTimes(planRetention(backups, { keepHourly: 2 }, now))).toEqual(["2026-05-01T11:59:59.000Z", "2026-05-01T10:59:59.000Z"]);
    expect(keptTimes(planRetention(backups, { keepDaily: 2 }, now))).toEqual(["2026-05-01T11:59:59.000Z", "2026-04-30T23:59:59.000Z"]);
  });

  it("uses ISO weeks (Monday to Sunday) whose year can differ from the calendar year", () => {
    const backups = [
      entry("2020-12-28T12:00:00Z"), // Monday of 2020-W53
      entry("2020-12-31T12:00:00Z"), // 2020-W53, calendar 2020
      entry("2021-01-01T12:00:00Z"), // 2020-W53, calendar 2021
      entry("2021-01-03T23:00:00Z"), // Sunday, last day of 2020-W53
      entry("2021-01-04T01:00:00Z"), // Monday, 2021-W01
    ];
    expect(keptTimes(planRetention(backups, { keepWeekly: 2 }, now))).toEqual(["2021-01-04T01:00:00.000Z", "2021-01-03T23:00:00.000Z"]);
    // Three weekly counts for two weeks: the count left keeps the oldest backup too (restic's rule).
    const weekly = planRetention(backups, { keepWeekly: 3 }, now);
    expect(weekly.keep.map((planned) => [planned.backup.time.toISOString(), planned.reasons])).toEqual([
      ["2021-01-04T01:00:00.000Z", ["weekly"]],
      ["2021-01-03T23:00:00.000Z", ["weekly"]],
      ["2020-12-28T12:00:00.000Z", ["oldest-weekly"]],
    ]);
    // Years are calendar years: 2021-01-01 and 2020-12-31 fall in different years though in the same ISO week.
    expect(keptTimes(planRetention(backups, { keepYearly: 2 }, now))).toEqual(["2021-01-04T01:00:00.000Z", "2020-12-31T12:00:00.000Z"]);
  });

  it("treats 2027-01-01 as ISO week 53 of 2026", () => {
    const backups = [
      entry("2026-12-28T00:00:00Z"),
      entry("2027-01-01T00:00:00Z"),
      entry("2027-01-04T00:00:00Z"),
      entry("2026-12-27T00:00:00Z"),
    ];
    const plan = planRetention(backups, { keepWeekly: 3 }, now);
    expect(keptTimes(plan)).toEqual(["2027-01-04T00:00:00.000Z", "2027-01-01T00:00:00.000Z", "2026-12-27T00:00:00.000Z"]);
    expect(plan.remove.map((planned) => planned.backup.time.toISOString())).toEqual(["2026-12-28T00:00:00.000Z"]);
  });

  it("handles the leap day as a day and February as one month", () => {
    const backups = [
      entry("2024-02-28T12:00:00Z"),
      entry("2024-02-29T06:00:00Z"),
      entry("2024-02-29T18:00:00Z"),
      entry("2024-03-01T00:00:00Z"),
      entry("2023-02-28T12:00:00Z"),
      entry("2023-03-01T12:00:00Z"),
    ];
    expect(keptTimes(planRetention(backups, { keepDaily: 3 }, now))).toEqual([
      "2024-03-01T00:00:00.000Z",
      "2024-02-29T18:00:00.000Z",
      "2024-02-28T12:00:00.000Z",
    ]);
    expect(keptTimes(planRetention(backups, { keepMonthly: 4 }, now))).toEqual([
      "2024-03-01T00:00:00.000Z",
      "2024-02-29T18:00:00.000Z",
      "2023-03-01T12:00:00.000Z",
      "2023-02-28T12:00:00.000Z",
    ]);
  });

  it("breaks ties at the same second deterministically, whatever the input order", () => {
    const a = entry("2026-02-02T02:02:02Z", "dump.gz");
    const b = entry("2026-02-02T02:02:02Z", "sql.gz");
    const c = entry("2026-02-02T02:02:02Z", "tar.gz");
    const older = entry("2026-02-01T00:00:00Z");
    const orders = [
      [a, b, c, older],
      [c, b, a, older],
      [older, b, c, a],
      [b, older, a, c],
    ];
    for (const policy of [
      { keepLast: 1 },
      { keepLast: 2 },
      { keepDaily: 1 },
      { keepDaily: 2 },
      { keepHourly: 5 },
    ] satisfies RetentionPolicy[]) {
      const plans = orders.map((order) => planRetention(order, policy, now));
      for (const plan of plans) expect(plan).toEqual(plans[0]);
    }
    // Exactly one of the three tied backups is the newest of its day.
    const daily = planRetention([a, b, c, older], { keepDaily: 2 }, now);
    expect(daily.keep).toHaveLength(2);
    expect(keptKeys(daily)).toContain(older.key);
    expect(keptKeys(planRetention([a, b, c, older], { keepLast: 3 }, now))).not.toContain(older.key);
  });

  it("keeps a backup once, listing every rule that keeps it", () => {
    const backups = [entry("2026-01-31T23:00:00Z"), entry("2026-01-31T22:00:00Z"), entry("2025-12-31T12:00:00Z")];
    const plan = planRetention(backups, { keepLast: 1, keepHourly: 2, keepDaily: 1, keepWeekly: 1, keepMonthly: 2, keepYearly: 2 }, now);
    expect(plan.keep.map((planned) => [planned.backup.time.toISOString(), planned.reasons])).toEqual([
      ["2026-01-31T23:00:00.000Z", ["last", "hourly", "daily", "weekly", "monthly", "yearly"]],
      ["2026-01-31T22:00:00.000Z", ["hourly"]],
      ["2025-12-31T12:00:00.000Z", ["monthly", "yearly"]],
    ]);
    expect(plan.remove).toEqual([]);
  });

  it("does not change its input and gives the same plan twice", () => {
    const backups = [entry("2026-01-02T00:00:00Z"), entry("2026-01-03T00:00:00Z"), entry("2026-01-01T00:00:00Z")];
    const copy = backups.map((backup) => ({ ...backup }));
    const first = planRetention(backups, { keepDaily: 2 }, now);
    expect(planRetention(backups, { keepDaily: 2 }, now)).toEqual(first);
    expect(backups).toEqual(copy);
  });
});

describe("planRetention: older-than", () => {
  const at = new Date("2026-01-10T00:00:00Z");

  it("with only older-than, keeps what is less than the window older than the newest backup", () => {
    const backups = [
      entry("2026-01-09T00:00:00Z"),
      entry("2026-01-02T00:00:01Z"),
      entry("2026-01-02T00:00:00Z"), // exactly 7 days before the newest: not within (restic's strict After)
      entry("2026-01-01T23:59:59Z"),
      entry("2025-06-01T00:00:00Z"),
    ];
    const plan = planRetention(backups, { olderThanMs: 7 * day }, at);
    expect(keptTimes(plan)).toEqual(["2026-01-09T00:00:00.000Z", "2026-01-02T00:00:01.000Z"]);
    expect(plan.keep.every((planned) => planned.reasons.join() === "newer-than")).toBe(true);
    expect(plan.remove.map((planned) => planned.backup.time.toISOString())).toEqual([
      "2026-01-02T00:00:00.000Z",
      "2026-01-01T23:59:59.000Z",
      "2025-06-01T00:00:00.000Z",
    ]);
  });

  it("keeps the last window of backups when backups stopped long before now (it used to remove them all)", () => {
    const stopped = everyDay("2025-01-01", "2025-01-05");
    const plan = planRetention(stopped, { olderThanMs: 2 * day }, at);
    expect(keptTimes(plan)).toEqual(["2025-01-05T12:00:00.000Z", "2025-01-04T12:00:00.000Z"]);
    expect(plan.remove.map((planned) => planned.backup.time.toISOString())).toEqual([
      "2025-01-03T12:00:00.000Z",
      "2025-01-02T12:00:00.000Z",
      "2025-01-01T12:00:00.000Z",
    ]);
    // The plan does not depend on how long ago the backups stopped.
    expect(planRetention(stopped, { olderThanMs: 2 * day }, new Date("2040-01-01T00:00:00Z"))).toEqual(plan);
  });

  it("keeps a backup dated more than an hour ahead as future-dated, and lets it take no keep slot", () => {
    const backups = [
      entry("2026-02-01T00:00:00Z"),
      entry("2026-01-09T00:00:00Z"),
      entry("2026-01-08T00:00:00Z"),
      entry("2026-01-07T00:00:00Z"),
    ];
    const plan = planRetention(backups, { keepLast: 1, keepDaily: 1 }, at);
    expect(plan.keep.map((planned) => [planned.backup.time.toISOString(), planned.reasons])).toEqual([
      ["2026-02-01T00:00:00.000Z", ["future-dated"]],
      ["2026-01-09T00:00:00.000Z", ["last", "daily"]],
    ]);
    expect(plan.remove.map((planned) => planned.backup.time.toISOString())).toEqual([
      "2026-01-08T00:00:00.000Z",
      "2026-01-07T00:00:00.000Z",
    ]);
  });

  it("treats a backup less than an hour ahead as an ordinary one", () => {
    const backups = [entry("2026-01-10T00:59:00Z"), entry("2026-01-09T00:00:00Z")];
    const plan = planRetention(backups, { keepLast: 1 }, at);
    expect(plan.keep.map((planned) => [planned.backup.time.toISOString(), planned.reasons])).toEqual([
      ["2026-01-10T00:59:00.000Z", ["last"]],
    ]);
    expect(futureBackups(backups, at)).toEqual([]);
    expect(futureBackups([...backups, entry("2026-01-10T01:00:01Z")], at).map((planned) => planned.time.toISOString())).toEqual([
      "2026-01-10T01:00:01.000Z",
    ]);
    expect(describeRetentionRule("future-dated")).toBe("future-dated (kept, check the clock)");
    expect(describeRetentionRule("daily")).toBe("daily");
  });

  it("always keeps backups from the future, and measures the window from the newest backup that is not", () => {
    const backups = [entry("2026-02-01T00:00:00Z"), entry("2025-01-01T00:00:00Z"), entry("2024-12-31T00:00:00Z")];
    const plan = planRetention(backups, { olderThanMs: hour }, at);
    expect(plan.keep.map((planned) => [planned.backup.time.toISOString(), planned.reasons])).toEqual([
      ["2026-02-01T00:00:00.000Z", ["future-dated"]],
      ["2025-01-01T00:00:00.000Z", ["newer-than"]],
    ]);
    expect(plan.remove.map((planned) => planned.backup.time.toISOString())).toEqual(["2024-12-31T00:00:00.000Z"]);
  });

  it("combines with keep rules: a backup is kept when it is recent or any rule keeps it", () => {
    const backups = [
      entry("2026-01-09T12:00:00Z"),
      entry("2026-01-09T06:00:00Z"),
      entry("2026-01-08T00:00:00Z"),
      entry("2025-12-01T00:00:00Z"),
      entry("2025-11-01T00:00:00Z"),
      entry("2025-10-01T00:00:00Z"),
    ];
    const plan = planRetention(backups, { keepLast: 2, keepMonthly: 3, olderThanMs: 3 * day }, at);
    expect(plan.keep.map((planned) => [planned.backup.time.toISOString(), planned.reasons])).toEqual([
      ["2026-01-09T12:00:00.000Z", ["last", "monthly", "newer-than"]],
      ["2026-01-09T06:00:00.000Z", ["last", "newer-than"]],
      ["2026-01-08T00:00:00.000Z", ["newer-than"]],
      ["2025-12-01T00:00:00.000Z", ["monthly"]],
      ["2025-11-01T00:00:00.000Z", ["monthly"]],
    ]);
    expect(plan.remove.map((planned) => planned.backup.time.toISOString())).toEqual(["2025-10-01T00:00:00.000Z"]);
  });

  it("does not keep old backups beyond what the keep rules say", () => {
    const plan = planRetention(everyDay("2025-12-01", "2025-12-10"), { keepLast: 1, olderThanMs: day }, at);
    expect(keptTimes(plan)).toEqual(["2025-12-10T12:00:00.000Z"]);
    expect(plan.remove).toHaveLength(9);
  });
});

describe("planRetention: the oldest backup when a rule has counts left (restic)", () => {
  it("keeps the oldest backup for each rule with counts left, and says so", () => {
    // Two years of backups, but --keep-yearly 5: three counts are left at the end.
    const backups = [...everyDay("2025-12-25", "2025-12-31"), ...everyDay("2026-01-01", "2026-01-03")];
    const plan = planRetention(backups, { keepDaily: 2, keepYearly: 5 }, now);
    expect(plan.keep.map((planned) => [planned.backup.time.toISOString().slice(0, 10), planned.reasons])).toEqual([
      ["2026-01-03", ["daily", "yearly"]],
      ["2026-01-02", ["daily"]],
      ["2025-12-31", ["yearly"]],
      ["2025-12-25", ["oldest-yearly"]],
    ]);
    expect(describeRetentionRule("oldest-yearly")).toBe("yearly (the oldest, counts left)");
  });

  it("does not keep the oldest once every count is used, nor for keep-last", () => {
    const backups = everyDay("2026-01-01", "2026-01-10");
    expect(keptTimes(planRetention(backups, { keepDaily: 10 }, now))).toHaveLength(10);
    expect(keptTimes(planRetention(backups, { keepMonthly: 1 }, now))).toEqual(["2026-01-10T12:00:00.000Z"]);
    expect(keptTimes(planRetention(backups, { keepMonthly: 2 }, now))).toEqual(["2026-01-10T12:00:00.000Z", "2026-01-01T12:00:00.000Z"]);
    expect(keptTimes(planRetention(backups, { keepLast: 3 }, now))).toHaveLength(3);
  });
});

describe("planRetention: the floor", () => {
  const at = new Date("2026-01-10T00:00:00Z");

  it("keeps the newest backup whatever the policy, with the reason minimum only where the rules would not", () => {
    const backups = everyDay("2026-01-01", "2026-01-05");
    // A window of one second keeps only the newest anyway; the floor adds nothing.
    const plan = planRetention(backups, { olderThanMs: 1000 }, at);
    expect(plan.keep.map((planned) => [planned.backup.time.toISOString(), planned.reasons])).toEqual([
      ["2026-01-05T12:00:00.000Z", ["newer-than"]],
    ]);
    expect(describeRetentionRule("minimum")).toBe("minimum (--keep-min)");
  });

  it("keeps the newest N with keepMin, in addition to the rules", () => {
    const backups = everyDay("2026-01-01", "2026-01-09");
    const plan = planRetention(backups, { keepWeekly: 2, keepMin: 3 }, at);
    expect(plan.keep.map((planned) => [planned.backup.time.toISOString().slice(0, 10), planned.reasons])).toEqual([
      ["2026-01-09", ["weekly"]],
      ["2026-01-08", ["minimum"]],
      ["2026-01-07", ["minimum"]],
      ["2026-01-04", ["weekly"]],
    ]);
    // Future-dated backups are not among the newest N: they are kept anyway.
    const withFuture = planRetention([...backups, entry("2026-03-01T00:00:00Z")], { keepLast: 1, keepMin: 2 }, at);
    expect(keptTimes(withFuture)).toEqual(["2026-03-01T00:00:00.000Z", "2026-01-09T12:00:00.000Z", "2026-01-08T12:00:00.000Z"]);
  });

  it("with allowDeleteAll and no rule, removes every backup except future-dated ones", () => {
    const backups = [...everyDay("2026-01-01", "2026-01-03"), entry("2026-03-01T00:00:00Z")];
    const plan = planRetention(backups, { allowDeleteAll: true }, at);
    expect(keptTimes(plan)).toEqual(["2026-03-01T00:00:00.000Z"]);
    expect(plan.remove).toHaveLength(3);
    // With rules, allowDeleteAll changes nothing that restic's rules keep.
    expect(planRetention(backups, { keepDaily: 2, allowDeleteAll: true }, at)).toEqual(planRetention(backups, { keepDaily: 2 }, at));
  });

  it.each<[string, RetentionPolicy, RegExp]>([
    ["keepMin 0", { keepLast: 1, keepMin: 0 }, /keepMin must be a whole number of at least 1/],
    ["a fractional keepMin", { keepLast: 1, keepMin: 1.5 }, /keepMin must be a whole number of at least 1/],
    ["keepMin with allowDeleteAll", { keepLast: 1, keepMin: 2, allowDeleteAll: true }, /--keep-min and --allow-delete-all/],
    ["older-than 0 as the only rule", { olderThanMs: 0 }, /--allow-delete-all to delete every backup/],
    ["keepMin as the only rule", { keepMin: 3 }, /prune needs a policy/],
  ])("refuses %s with INVALID_ARGUMENT", (_name, policy, message) => {
    const error = thrown(() => planRetention(everyDay("2026-01-01", "2026-01-03"), policy, at));
    expect(isHoardError(error, "INVALID_ARGUMENT"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(message);
  });
});

// ---------------------------------------------------------------------------------------------
// Property test against an independent oracle built on date-fns.

/** Bucket names computed with date-fns (TZ is UTC in these tests). */
const oracleBucket: Record<CalendarRule, (time: Date) => string> = {
  hourly: (time) => format(time, "yyyy-MM-dd HH"),
  daily: (time) => format(time, "yyyy-MM-dd"),
  weekly: (time) => `${getISOWeekYear(time)}/${String(getISOWeek(time)).padStart(2, "0")}`,
  monthly: (time) => format(time, "yyyy-MM"),
  yearly: (time) => format(time, "yyyy"),
};

const policyOption: Record<"last" | CalendarRule, "keepLast" | "keepHourly" | "keepDaily" | "keepWeekly" | "keepMonthly" | "keepYearly"> = {
  last: "keepLast",
  hourly: "keepHourly",
  daily: "keepDaily",
  weekly: "keepWeekly",
  monthly: "keepMonthly",
  yearly: "keepYearly",
};

/** True when `a` counts as newer than `b`: a later time, or the same second and a greater key. */
function isNewer(a: BackupEntry, b: BackupEntry): boolean {
  return a.time.getTime() > b.time.getTime() || (a.time.getTime() === b.time.getTime() && a.key > b.key);
}

/**
 * A deliberately different algorithm: group every backup by its bucket name, pick each bucket's
 * newest member, order the bucket names (they sort chronologically as strings) and take the first N.
 */
function oracle(backups: readonly BackupEntry[], policy: RetentionPolicy): Map<string, Set<RetentionRule>> {
  const reasons = new Map<string, Set<RetentionRule>>();
  const add = (backup: BackupEntry, rule: RetentionRule) => {
    const set = reasons.get(backup.key) ?? new Set<RetentionRule>();
    set.add(rule);
    reasons.set(backup.key, set);
  };
  const lastCount = policy.keepLast ?? 0;
  const remaining = [...backups];
  for (let taken = 0; taken < lastCount && remaining.length > 0; taken += 1) {
    let newestIndex = 0;
    remaining.forEach((backup, index) => {
      if (isNewer(backup, remaining[newestIndex] as BackupEntry)) newestIndex = index;
    });
    add(remaining.splice(newestIndex, 1)[0] as BackupEntry, "last");
  }
  for (const rule of ["hourly", "daily", "weekly", "monthly", "yearly"] as const) {
    const count = policy[policyOption[rule]] ?? 0;
    if (count <= 0) continue;
    const newestOfBucket = new Map<string, BackupEntry>();
    for (const backup of backups) {
      const bucket = oracleBucket[rule](backup.time);
      const current = newestOfBucket.get(bucket);
      if (!current || isNewer(backup, current)) newestOfBucket.set(bucket, backup);
    }
    const allBuckets = [...newestOfBucket.keys()].sort().reverse();
    for (const bucket of allBuckets.slice(0, count)) add(newestOfBucket.get(bucket) as BackupEntry, rule);
    // Counts left after every bucket: the oldest backup is kept too (restic's "oldest" rule).
    if (allBuckets.length < count && backups.length > 0) {
      const oldest = backups.reduce((found, backup) => (isNewer(found, backup) ? backup : found));
      if (newestOfBucket.get(oracleBucket[rule](oldest.time)) !== oldest) add(oldest, `oldest-${rule}`);
    }
  }
  const byAge = [...backups].sort((a, b) => (isNewer(a, b) ? -1 : 1));
  if ((policy.olderThanMs ?? 0) > 0 && byAge.length > 0) {
    const newest = (byAge[0] as BackupEntry).time.getTime();
    for (const backup of backups) if (newest - backup.time.getTime() < (policy.olderThanMs as number)) add(backup, "newer-than");
  }
  // The floor: the newest keepMin (1 by default) are kept, unless allowDeleteAll.
  const floor = policy.allowDeleteAll ? 0 : (policy.keepMin ?? 1);
  for (const backup of byAge.slice(0, floor)) if (!reasons.has(backup.key)) add(backup, "minimum");
  return reasons;
}

const extensions = ["sql.gz", "dump.gz", "tar.gz", "sql", "archive.gz"];
// Anchors near the awkward places: ISO week-years that differ from calendar years, a leap day.
const anchors = [
  "2020-12-31T20:00:00Z",
  "2021-01-04T02:00:00Z",
  "2027-01-01T00:30:00Z",
  "2024-02-29T23:00:00Z",
  "2025-12-29T00:00:00Z",
].map((iso) => Date.parse(iso));

function randomCase(seed: number): { backups: BackupEntry[]; policy: RetentionPolicy; at: Date } {
  const random = prng(seed);
  const integer = (limit: number) => Math.floor(random() * limit);
  const anchor =
    random() < 0.5 ? (anchors[integer(anchors.length)] as number) : Date.UTC(2016, 0, 1) + integer(14 * 365) * day + integer(day);
  // How spread out the history is: hours, days, weeks or years.
  const spread = [6 * hour, 4 * day, 60 * day, 3 * 365 * day][integer(4)] as number;
  const count = integer(70);
  const byKey = new Map<string, BackupEntry>();
  const times: number[] = [];
  for (let index = 0; index < count; index += 1) {
    const time =
      times.length > 0 && random() < 0.2
        ? (times[integer(times.length)] as number) // the same second as another backup
        : Math.floor((anchor - integer(spread)) / 1000) * 1000;
    times.push(time);
    const extension = extensions[integer(extensions.length)] as string;
    const backup = entry(new Date(time).toISOString(), extension);
    byKey.set(backup.key, backup);
  }
  const policy: RetentionPolicy = {};
  for (const option of Object.values(policyOption)) if (random() < 0.4) policy[option] = integer(6);
  if (random() < 0.3) policy.olderThanMs = integer(Math.max(1, spread / 1000)) * 1000;
  const floor = random();
  if (floor < 0.2) policy.keepMin = 1 + integer(5);
  else if (floor < 0.3) policy.allowDeleteAll = true;
  const at = new Date(anchor + integer(3 * day));
  return { backups: [...byKey.values()], policy, at };
}

function hasRule(policy: RetentionPolicy): boolean {
  return (
    Object.values(policyOption).some((option) => (policy[option] ?? 0) > 0) ||
    (policy.olderThanMs ?? 0) > 0 ||
    policy.allowDeleteAll === true
  );
}

describe("planRetention: property test against a date-fns oracle", () => {
  const baseSeed = Number(process.env.RETENTION_SEED ?? 20_260_101);
  const cases = Number(process.env.RETENTION_CASES ?? 800);

  it(`matches the oracle on ${cases} random histories and policies (base seed ${baseSeed})`, () => {
    let planned = 0;
    let refused = 0;
    for (let offset = 0; offset < cases; offset += 1) {
      const seed = baseSeed + offset;
      const { backups, policy, at } = randomCase(seed);
      const context = `seed ${seed} (RETENTION_SEED=${seed} RETENTION_CASES=1), policy ${JSON.stringify(policy)}, now ${at.toISOString()}`;
      if (!hasRule(policy)) {
        expect(
          isHoardError(
            thrown(() => planRetention(backups, policy, at)),
            "INVALID_ARGUMENT",
          ),
          context,
        ).toBe(true);
        refused += 1;
        continue;
      }
      const shuffled = [...backups].reverse();
      const plan = planRetention(shuffled, policy, at);
      planned += 1;

      // keep and remove partition the input.
      const seen = [...plan.keep, ...plan.remove].map((item) => item.backup.key);
      expect(new Set(seen).size, context).toBe(seen.length);
      expect([...seen].sort(), context).toEqual(backups.map((backup) => backup.key).sort());

      // Both lists come newest first, and removed backups have no reason.
      for (const list of [plan.keep, plan.remove]) {
        for (let index = 1; index < list.length; index += 1) {
          expect(isNewer(list[index - 1]?.backup as BackupEntry, list[index]?.backup as BackupEntry), context).toBe(true);
        }
      }
      expect(
        plan.remove.every((item) => item.reasons.length === 0),
        context,
      ).toBe(true);

      // The kept set and every reason equal the oracle's.
      const expected = oracle(backups, policy);
      const actual = new Map(plan.keep.map((item) => [item.backup.key, [...item.reasons].sort()]));
      const wanted = new Map([...expected].map(([key, rules]) => [key, [...rules].sort()]));
      expect(actual, context).toEqual(wanted);

      // The input order does not matter.
      expect(planRetention(backups, policy, at), context).toEqual(plan);
    }
    expect(planned + refused).toBe(cases);
    // With the default run, the generator exercises both branches and at least 500 real plans.
    if (cases >= 500) {
      expect(planned).toBeGreaterThanOrEqual(500);
      expect(refused).toBeGreaterThan(0);
    }
  });
});
