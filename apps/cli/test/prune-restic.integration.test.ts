/**
 * `hoard prune` end to end against the real restic 0.18.1 (built into .cache/bin by
 * scripts/install-tools.sh): the same backup times as snapshots in a throwaway restic repository
 * (one host per history) and as hoard backups (`<prefix>-<yyyyMMddHHmmss>.dump.gz`, one prefix per
 * history) in a local directory and in S3 (versitygw), among objects prune does not own. For each
 * policy, `restic forget --dry-run --json` and `hoard prune --dry-run --json` (TZ=UTC) must keep the
 * same times for the same reasons; then a real prune must leave exactly what restic keeps.
 */
import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { createLocalStorage, formatTimestamp, type Storage } from "@hoard/core";
import { runTool } from "@hoard/core/plugin";
import { createS3Storage } from "@hoard/storage-s3";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runCli } from "./run-cli.ts";

const s3 = inject("s3");
const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;

const resticPath = fileURLToPath(new URL("../../../.cache/bin/restic", import.meta.url));

/** One history per restic host and hoard prefix. */
const histories: Record<string, number[]> = {
  /** 45 backups over more than six months of one year: with the issue's policy only the yearly rule has a count left at the end. */
  counts: (() => {
    const gaps = [20 * minute, 5 * hour, 3 * day, 6 * day, 8 * day, 11 * day, 2 * hour, 7 * day];
    const times = [Date.parse("2024-10-20T18:45:10Z")];
    for (let index = 1; times.length < 45; index += 1) times.push((times.at(-1) as number) - (gaps[index % gaps.length] as number));
    return times;
  })(),
  /** Daily backups that stopped years before now. */
  stopped: Array.from({ length: 16 }, (_, index) => Date.parse("2023-02-14T03:00:00Z") - index * day),
  /** The same second twice, an exact window edge, ISO week 53. */
  edges: [
    "2021-01-05T10:00:00Z",
    "2021-01-03T23:59:59Z",
    "2021-01-01T00:00:00Z",
    "2021-01-01T00:00:00Z",
    "2020-12-26T10:00:00Z",
    "2020-12-26T09:00:00Z",
  ].map((iso) => Date.parse(iso)),
};

const issuePolicy = [
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
];

/** restic's flags and hoard's flags for the same policy. */
const policies: Array<{ name: string; restic: string[]; hoard: string[] }> = [
  { name: "the issue's policy", restic: issuePolicy, hoard: issuePolicy },
  { name: "--keep-within 10d / --older-than 10d", restic: ["--keep-within", "10d"], hoard: ["--older-than", "10d"] },
  { name: "--keep-within 10d / --keep-within 10d", restic: ["--keep-within", "10d"], hoard: ["--keep-within", "10d"] },
  {
    name: "--keep-within 36h --keep-monthly 2",
    restic: ["--keep-within", "1d12h", "--keep-monthly", "2"],
    hoard: ["--older-than", "36h", "--keep-monthly", "2"],
  },
  {
    name: "--keep-daily 4 --keep-weekly 3",
    restic: ["--keep-daily", "4", "--keep-weekly", "3"],
    hoard: ["--keep-daily", "4", "--keep-weekly", "3"],
  },
];

/** The backups of a history as object keys; a second backup of the same second has another extension. */
function backupKeys(prefix: string, times: readonly number[]): string[] {
  const seen = new Map<number, number>();
  return times.map((time) => {
    const copy = seen.get(time) ?? 0;
    seen.set(time, copy + 1);
    return `${prefix}-${formatTimestamp(new Date(time))}.${["dump.gz", "sql.gz"][copy]}`;
  });
}

/** Every backup gets a checksum, every third a manifest: companions that go with it. */
const companionsOf = (key: string, index: number) => [...(index % 3 === 0 ? [`${key}.manifest.json`] : []), `${key}.sha256`];

/** Objects that are not backups of any history's prefix, or not backups at all: prune must leave them alone. */
const strangers = [
  "notes.txt",
  "counts-old-20240301000000.dump.gz", // the prefix counts-old, older than every counts backup
  "counts-20240302000000.dump.gz.sha256", // a checksum whose backup is gone
  "counts-20240303000000.txt", // not a backup extension
  "counts/20240304000000.dump.gz", // a folder named like the prefix
  "stopped-20200101000000", // no extension
  "edges-2020010100000.dump.gz", // 13 digits
];

function allObjects(): string[] {
  const objects = [...strangers];
  for (const [prefix, times] of Object.entries(histories)) {
    backupKeys(prefix, times).forEach((key, index) => {
      objects.push(key, ...companionsOf(key, index));
    });
  }
  return objects.sort();
}

// ---------------------------------------------------------------------------------------------

interface ResticGroup {
  host: string;
  remove: Array<{ time: string }> | null;
  reasons: Array<{ snapshot: { time: string }; matches: string[] }> | null;
}

interface HoardPlan {
  dryRun: boolean;
  backups: Array<{ action: "keep" | "delete"; key: string; time: string; reasons: string[]; companions: string[] }>;
}

function hoardRule(match: string): string {
  if (match.startsWith("within ")) return "newer-than";
  const rule = /^(oldest )?(last|hourly|daily|weekly|monthly|yearly) snapshot$/.exec(match);
  if (!rule) throw new Error(`unexpected restic reason ${JSON.stringify(match)}`);
  return rule[1] ? `oldest-${rule[2]}` : (rule[2] as string);
}

/** "time reason,reason" of each kept backup and the times of the removed ones, sorted (equal times make order meaningless). */
function view(kept: Array<{ time: string; reasons: string[] }>, removed: string[]) {
  return {
    kept: kept.map(({ time, reasons }) => `${new Date(time).toISOString()} ${[...reasons].sort().join(",")}`).sort(),
    removed: removed.map((time) => new Date(time).toISOString()).sort(),
  };
}

const resticView = (group: ResticGroup) =>
  view(
    (group.reasons ?? []).map(({ snapshot, matches }) => ({ time: snapshot.time, reasons: matches.map(hoardRule) })),
    (group.remove ?? []).map((snapshot) => snapshot.time),
  );

const hoardView = (plan: HoardPlan) =>
  view(
    plan.backups.filter((backup) => backup.action === "keep"),
    plan.backups.filter((backup) => backup.action === "delete").map((backup) => backup.time),
  );

let workDirectory: string;
const resticPlans = new Map<string, Map<string, ResticGroup>>();

function restic(args: string[], repository: string, password: string): Promise<string> {
  return runTool(resticPath, {
    label: "restic",
    args: ["--no-cache", "--repo", repository, ...args],
    env: { RESTIC_PASSWORD: password, TZ: "UTC" },
  });
}

beforeAll(async () => {
  try {
    accessSync(resticPath, constants.X_OK);
  } catch {
    throw new Error(`restic is not built: expected ${resticPath}. Run scripts/install-tools.sh (it builds restic 0.18.1 with Go).`);
  }
  workDirectory = await mkdtemp(join(tmpdir(), "hoard-prune-restic-"));
  const repository = join(workDirectory, "restic");
  const source = join(workDirectory, "source");
  await mkdir(source);
  await writeFile(join(source, "dump"), "a tiny dump");
  const password = randomBytes(12).toString("hex");
  await restic(["init", "--quiet"], repository, password);
  const work = Object.entries(histories).flatMap(([host, times]) => times.map((time) => ({ host, time })));
  const worker = async () => {
    for (let item = work.shift(); item; item = work.shift()) {
      const time = new Date(item.time).toISOString().slice(0, 19).replace("T", " ");
      await restic(["backup", "--quiet", "--no-scan", "--host", item.host, "--time", time, source], repository, password);
    }
  };
  // Backups take a shared lock; a few at once, as each mostly waits.
  await Promise.all(Array.from({ length: 6 }, worker));
  for (const policy of policies) {
    const output = await restic(["forget", "--dry-run", "--json", "--group-by", "host", ...policy.restic], repository, password);
    resticPlans.set(policy.name, new Map((JSON.parse(output) as ResticGroup[]).map((group) => [group.host, group])));
  }
}, 300_000);

afterAll(async () => {
  if (workDirectory) await rm(workDirectory, { recursive: true, force: true });
});

async function fill(storage: Storage): Promise<void> {
  for (const key of allObjects()) await storage.upload(key, Readable.from([Buffer.from(`content of ${key}`)]));
}

async function keysOf(storage: Storage): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storage.list("")) keys.push(object.key);
  return keys.sort();
}

interface Store {
  name: string;
  open: () => Promise<{ url: string; storage: Storage; args: string[]; env: NodeJS.ProcessEnv }>;
}

const stores: Store[] = [
  {
    name: "a local directory",
    async open() {
      const directory = await mkdtemp(join(workDirectory, "local-"));
      return { url: directory, storage: createLocalStorage({ directory }), args: [], env: {} };
    },
  },
  {
    name: "S3 (versitygw)",
    async open() {
      const prefix = `hoard-prune-restic/${randomBytes(4).toString("hex")}`;
      const storage = createS3Storage({
        bucket: s3.bucket,
        prefix,
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
      return {
        url: `s3://${s3.bucket}/${prefix}`,
        storage,
        args: ["--s3-endpoint", s3.endpoint, "--s3-force-path-style", "--s3-region", s3.region],
        env: { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey },
      };
    },
  },
];

for (const store of stores) {
  describe(`hoard prune in ${store.name} matches restic 0.18.1's forget`, () => {
    let opened: Awaited<ReturnType<Store["open"]>>;

    beforeAll(async () => {
      opened = await store.open();
      await fill(opened.storage);
    }, 120_000);

    const prune = (prefix: string, flags: string[]) =>
      runCli(["prune", opened.url, "--prefix", prefix, "--json", ...flags, ...opened.args], { ...opened.env, TZ: "UTC" });

    it("plans (--dry-run --json) what restic plans, for every history and policy, and touches nothing", async () => {
      for (const policy of policies) {
        for (const prefix of Object.keys(histories)) {
          const result = await prune(prefix, [...policy.hoard, "--dry-run"]);
          expect(result.code, `${policy.name}, ${prefix}: ${result.stderr}`).toBe(0);
          const plan = JSON.parse(result.stdout) as HoardPlan;
          expect(plan.dryRun).toBe(true);
          expect(plan.backups).toHaveLength((histories[prefix] as number[]).length);
          const group = resticPlans.get(policy.name)?.get(prefix);
          expect(group, `restic planned ${prefix}`).toBeDefined();
          expect(hoardView(plan), `${policy.name}, ${prefix}`).toEqual(resticView(group as ResticGroup));
        }
      }
      expect(await keysOf(opened.storage)).toEqual(allObjects());
    });

    it("keeps the oldest backup where restic does (a rule with counts left) and the last window of backups that stopped long ago", async () => {
      const counts = JSON.parse((await prune("counts", [...issuePolicy, "--dry-run"])).stdout) as HoardPlan;
      const oldest = counts.backups.at(-1);
      expect(oldest).toMatchObject({
        action: "keep",
        reasons: ["oldest-yearly"],
        time: new Date(Math.min(...(histories.counts as number[]))).toISOString(),
      });
      const stopped = JSON.parse((await prune("stopped", ["--older-than", "10d", "--dry-run"])).stdout) as HoardPlan;
      expect(stopped.backups.filter((backup) => backup.action === "keep")).toHaveLength(10);
    });

    it("prunes for real: exactly restic's plan is left, with the kept backups' companions, and nothing it does not own is touched", async () => {
      const companions = new Map(
        Object.entries(histories).flatMap(([prefix, times]) =>
          backupKeys(prefix, times).map((key, index) => [key, companionsOf(key, index)] as const),
        ),
      );
      const gone = new Set<string>();
      for (const [prefix, policyIndex] of [
        ["counts", 0],
        ["stopped", 1],
        ["edges", 4],
      ] as const) {
        const policy = policies[policyIndex] as (typeof policies)[number];
        const result = await prune(prefix, policy.hoard);
        expect(result.code, result.stderr).toBe(0);
        const plan = JSON.parse(result.stdout) as HoardPlan;
        expect(plan.dryRun).toBe(false);
        expect(plan.backups.some((backup) => backup.action === "delete")).toBe(true);
        expect(hoardView(plan), `${policy.name}, ${prefix}`).toEqual(resticView(resticPlans.get(policy.name)?.get(prefix) as ResticGroup));
        for (const backup of plan.backups) {
          expect(backup.companions, backup.key).toEqual(companions.get(backup.key));
          if (backup.action === "delete") for (const key of [backup.key, ...backup.companions]) gone.add(key);
        }
      }
      const left = await keysOf(opened.storage);
      expect(left).toEqual(allObjects().filter((key) => !gone.has(key)));
      for (const stranger of strangers) expect(left).toContain(stranger);
    });
  });
}
