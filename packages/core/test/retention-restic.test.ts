/**
 * `planRetention` against the real restic 0.18.1 (built into .cache/bin by
 * scripts/install-tools.sh): the same snapshot times go into a throwaway restic repository (one
 * host per history, `forget --group-by host`) and into hoard backup entries, and for each policy
 * `restic forget --dry-run --json` must keep exactly the times, with the same reasons, that
 * hoard's plan keeps.
 */
import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { parseDuration } from "../src/duration.ts";
import { type BackupEntry, formatTimestamp } from "../src/naming.ts";
import { runTool } from "../src/process.ts";
import { type PrunePlan, planRetention, type RetentionPolicy, type RetentionRule } from "../src/retention.ts";
import { freshDirectories, prng } from "./helpers.ts";

const freshDirectory = freshDirectories("retention-restic");
const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;

const resticPath = fileURLToPath(new URL("../../../.cache/bin/restic", import.meta.url));

/** restic's time flag takes local time: every restic call runs in UTC, as hoard's buckets do. */
function restic(args: string[], repository: string, password: string): Promise<string> {
  return runTool(resticPath, {
    label: "restic",
    args: ["--no-cache", "--repo", repository, ...args],
    env: { RESTIC_PASSWORD: password, TZ: "UTC" },
  });
}

/** `yyyy-MM-dd HH:mm:ss` for `restic backup --time`. */
const resticTime = (time: number) => new Date(time).toISOString().slice(0, 19).replace("T", " ");

// ---------------------------------------------------------------------------------------------
// The histories: one restic host each. Times are whole seconds (hoard's names have seconds).

const histories: Record<string, number[]> = {
  /**
   * The issue's case: 160 backups within one year but over more than six months (at irregular
   * gaps from 20 minutes to 4 days), so with --keep-monthly 6 --keep-yearly 2 only the yearly rule
   * still has a count left at the oldest backup.
   */
  issue: (() => {
    const random = prng(160);
    const gaps = [20 * minute, hour, 5 * hour, day, 2 * day, 3 * day, 4 * day];
    const times = [Date.parse("2024-11-30T21:17:05Z")];
    while (times.length < 160) times.push((times.at(-1) as number) - (gaps[Math.floor(random() * gaps.length)] as number));
    return times;
  })(),
  /** Daily backups that stopped years ago: a window measured from now would remove them all. */
  stopped: Array.from({ length: 20 }, (_, index) => Date.parse("2023-02-14T03:00:00Z") - index * day),
  /** ISO weeks across a year end, the leap day, the same second twice, and exact window edges. */
  edges: [
    "2021-01-05T10:00:00Z",
    "2021-01-04T00:00:00Z", // Monday: 2021-W01
    "2021-01-03T23:59:59Z", // Sunday: 2020-W53
    "2021-01-03T22:00:00Z", // exactly 1d12h before the newest
    "2021-01-01T00:00:00Z", // 2020-W53, calendar 2021
    "2021-01-01T00:00:00Z", // the same second again
    "2020-12-31T23:59:59Z",
    "2020-12-28T00:00:00Z",
    "2020-12-27T23:00:00Z",
    "2020-12-26T10:00:00Z", // exactly 10 days before the newest
    "2020-12-26T09:59:59Z",
    "2020-12-04T10:00:00Z",
    "2020-03-01T00:00:00Z",
    "2020-02-29T23:00:00Z",
    "2020-02-29T01:00:00Z",
    "2020-02-28T12:00:00Z",
    "2019-12-30T00:00:00Z", // 2020-W01 in calendar 2019
    "2019-12-29T12:00:00Z",
    "2019-12-29T12:00:00Z",
  ].map((iso) => Date.parse(iso)),
  /** Fewer backups than any count: every rule has counts left. */
  few: ["2022-08-01T08:00:00Z", "2021-03-15T08:00:00Z", "2019-11-30T08:00:00Z"].map((iso) => Date.parse(iso)),
  /** Random times over three years, some of them the same second as another. */
  random: (() => {
    const random = prng(20_260_101);
    const times: number[] = [];
    for (let index = 0; index < 30; index += 1) {
      times.push(
        times.length > 0 && random() < 0.15
          ? (times[Math.floor(random() * times.length)] as number)
          : Math.floor((Date.parse("2025-09-01T00:00:00Z") - random() * 3 * 365 * day) / 1000) * 1000,
      );
    }
    return times;
  })(),
};

/** Hoard entries for a history; backups of the same second differ by extension, as they must. */
function entriesOf(times: readonly number[]): BackupEntry[] {
  const extensions = ["dump.gz", "sql.gz", "archive.gz", "dump"];
  const seen = new Map<number, number>();
  return times.map((time) => {
    const copy = seen.get(time) ?? 0;
    seen.set(time, copy + 1);
    const extension = extensions[copy] as string;
    return { key: `backup-${formatTimestamp(new Date(time))}.${extension}`, prefix: "backup", time: new Date(time), extension, size: 1 };
  });
}

// ---------------------------------------------------------------------------------------------
// The policies: restic's flags and hoard's policy for the same thing.

interface Policy {
  name: string;
  restic: string[];
  hoard: RetentionPolicy;
}

const within = (duration: string): Policy => ({
  name: `--keep-within ${duration} / --older-than ${duration}`,
  restic: ["--keep-within", duration],
  hoard: { olderThanMs: parseDuration(duration) },
});

const policies: Policy[] = [
  {
    name: "the issue's policy (yearly has counts left)",
    restic: [
      "--keep-last",
      "3",
      "--keep-hourly",
      "5",
      "--keep-daily",
      "7",
      "--keep-weekly",
      "4",
      "--keep-monthly",
      "6",
      "--keep-yearly",
      "2",
    ],
    hoard: { keepLast: 3, keepHourly: 5, keepDaily: 7, keepWeekly: 4, keepMonthly: 6, keepYearly: 2 },
  },
  within("10d"),
  within("1d12h"),
  {
    name: "--keep-within 240h with --keep-monthly 2",
    restic: ["--keep-within", "240h", "--keep-monthly", "2"],
    hoard: { olderThanMs: 240 * hour, keepMonthly: 2 },
  },
  {
    name: "--keep-daily 4 --keep-weekly 3",
    restic: ["--keep-daily", "4", "--keep-weekly", "3"],
    hoard: { keepDaily: 4, keepWeekly: 3 },
  },
  { name: "--keep-yearly 10", restic: ["--keep-yearly", "10"], hoard: { keepYearly: 10 } },
  {
    name: "--keep-last 5 --keep-hourly 30 --keep-weekly 8",
    restic: ["--keep-last", "5", "--keep-hourly", "30", "--keep-weekly", "8"],
    hoard: { keepLast: 5, keepHourly: 30, keepWeekly: 8 },
  },
];

// ---------------------------------------------------------------------------------------------

interface ResticSnapshot {
  time: string;
}
interface ResticGroup {
  host: string;
  keep: ResticSnapshot[] | null;
  remove: ResticSnapshot[] | null;
  reasons: Array<{ snapshot: ResticSnapshot; matches: string[] }> | null;
}

/** restic's reason text as hoard's rule: "oldest yearly snapshot" is `oldest-yearly`, "within 10d" is `newer-than`. */
function hoardRule(match: string): RetentionRule {
  if (match.startsWith("within ")) return "newer-than";
  const rule = /^(oldest )?(last|hourly|daily|weekly|monthly|yearly) snapshot$/.exec(match);
  if (!rule) throw new Error(`unexpected restic reason ${JSON.stringify(match)}`);
  return (rule[1] ? `oldest-${rule[2]}` : rule[2]) as RetentionRule;
}

/** Kept backups as "time rule,rule", sorted: equal times are told apart by neither tool the same way. */
function describeKept(items: Array<{ time: string; rules: RetentionRule[] }>): string[] {
  return items.map(({ time, rules }) => `${new Date(time).toISOString()} ${[...rules].sort().join(",")}`).sort();
}

const describeRemoved = (times: string[]) => times.map((time) => new Date(time).toISOString()).sort();

function hoardView(plan: PrunePlan) {
  return {
    kept: describeKept(plan.keep.map(({ backup, reasons }) => ({ time: backup.time.toISOString(), rules: reasons }))),
    removed: describeRemoved(plan.remove.map(({ backup }) => backup.time.toISOString())),
  };
}

function resticView(group: ResticGroup) {
  return {
    kept: describeKept((group.reasons ?? []).map(({ snapshot, matches }) => ({ time: snapshot.time, rules: matches.map(hoardRule) }))),
    removed: describeRemoved((group.remove ?? []).map((snapshot) => snapshot.time)),
  };
}

const resticPlans = new Map<string, Map<string, ResticGroup>>();

beforeAll(async () => {
  try {
    accessSync(resticPath, constants.X_OK);
  } catch {
    throw new Error(`restic is not built: expected ${resticPath}. Run scripts/install-tools.sh (it builds restic 0.18.1 with Go).`);
  }
  const directory = await freshDirectory("repository");
  const repository = join(directory, "repository");
  const source = join(directory, "source");
  await mkdir(source);
  await writeFile(join(source, "dump"), "a tiny dump");
  const password = randomBytes(12).toString("hex");
  await restic(["init", "--quiet"], repository, password);
  // Backups take a shared lock, so a few run at once; each is mostly waiting.
  const work = Object.entries(histories).flatMap(([host, times]) => times.map((time) => ({ host, time })));
  const worker = async () => {
    for (let item = work.shift(); item; item = work.shift()) {
      await restic(["backup", "--quiet", "--no-scan", "--host", item.host, "--time", resticTime(item.time), source], repository, password);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  for (const policy of policies) {
    const output = await restic(["forget", "--dry-run", "--json", "--group-by", "host", ...policy.restic], repository, password);
    const groups = JSON.parse(output) as ResticGroup[];
    resticPlans.set(policy.name, new Map(groups.map((group) => [group.host, group])));
  }
}, 600_000);

describe("planRetention matches restic 0.18.1's forget", () => {
  const now = new Date();

  for (const policy of policies) {
    for (const [history, times] of Object.entries(histories)) {
      it(`${policy.name}: ${history} (${times.length} backups)`, () => {
        const group = resticPlans.get(policy.name)?.get(history);
        expect(group, "restic planned this history").toBeDefined();
        const expected = resticView(group as ResticGroup);
        const actual = hoardView(planRetention(entriesOf(times), policy.hoard, now));
        expect(actual.kept.length + actual.removed.length).toBe(times.length);
        expect(expected.kept.length + expected.removed.length).toBe(times.length);
        expect(actual).toEqual(expected);
      });
    }
  }

  it("the issue's case is what it says: restic keeps the oldest of the 160 because the yearly rule has a count left", () => {
    const group = resticPlans.get(policies[0]?.name as string)?.get("issue") as ResticGroup;
    const oldest = new Date(Math.min(...(histories.issue as number[]))).toISOString();
    expect(oldest.slice(0, 4)).toBe("2024");
    expect(oldest < "2024-05-31").toBe(true);
    const reasons = new Map(group.reasons?.map(({ snapshot, matches }) => [new Date(snapshot.time).toISOString(), matches]));
    expect(reasons.get(oldest)).toEqual(["oldest yearly snapshot"]);
    const plan = planRetention(entriesOf(histories.issue as number[]), policies[0]?.hoard as RetentionPolicy, now);
    expect(plan.keep.find(({ backup }) => backup.time.toISOString() === oldest)?.reasons).toEqual(["oldest-yearly"]);
  });

  it("the stopped history keeps its last window, as restic does, though it ended years before now", () => {
    const group = resticPlans.get(within("10d").name)?.get("stopped") as ResticGroup;
    expect(group.keep).toHaveLength(10);
    const plan = planRetention(entriesOf(histories.stopped as number[]), within("10d").hoard, now);
    expect(plan.keep).toHaveLength(10);
    expect(plan.keep[0]?.backup.time.toISOString()).toBe("2023-02-14T03:00:00.000Z");
  });
});
