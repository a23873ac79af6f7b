import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { assertSucceeded, collectStdout, waitForExit } from "./child-process.ts";
import { type DirectoryUsage, DirectoryUsageSampler } from "./disk-usage.ts";
import type { ProcessPeak } from "./process-memory.ts";
import { ProcessMemorySampler } from "./process-memory.ts";
import type { StorageTarget } from "./storage-targets.ts";

/** How hoard is started: the built CLI, or bench/library-backup.ts calling the library. */
export type HoardRunnerKind = "cli" | "library";

/** Which runner to use; `auto` prefers the CLI when apps/cli/dist/cli.js exists. */
export type HoardRunnerPreference = HoardRunnerKind | "auto";

/** A way to start one hoard backup as a Node.js process of its own. */
export interface HoardRunner {
  kind: HoardRunnerKind;
  /** The script node runs. */
  script: string;
  /** Arguments for one backup. */
  arguments(run: HoardRunOptions): string[];
}

/** One backup to run. */
export interface HoardRunOptions {
  databaseUrl: string;
  target: StorageTarget;
  mode: "stream" | "file";
  /** Unique per run, so names never collide and the stored file can be found. */
  prefix: string;
  /** gzip level; hoard's default (6) when undefined. */
  compressionLevel?: number;
  /** `--compression`; hoard's default (gzip) when undefined. */
  compression?: "gzip" | "zstd" | "none";
  /** More `hoard backup` arguments, e.g. `--dump-option=--compress=6`; the CLI runner only. */
  extraArguments?: string[];
  /**
   * Where hoard's TMPDIR is made: a new empty directory under this one for each run, watched for
   * what hoard writes there (file mode's temporary file, a directory dump). @default this process's TMPDIR
   */
  temporaryDirectory?: string;
  /** age recipients (`age1...`) to encrypt the backup to; none: not encrypted. */
  encryptTo?: string[];
}

/** What one measured hoard backup took. */
export interface HoardMeasurement {
  wallSeconds: number;
  /** ru_maxrss of the hoard Node.js process (KiB), reported by bench/rss-reporter.mjs on exit. */
  nodePeakKilobytes: number;
  nodeCpuSeconds: number;
  /** Every process seen in hoard's process tree (Node itself, pg_dump), sampled from /proc. */
  processes: ProcessPeak[];
  /** Size of the stored backup in bytes, when known. */
  outputBytes: number | undefined;
  /** What hoard wrote into its TMPDIR (a new empty directory for each run). */
  temporaryDisk: DirectoryUsage;
}

interface ResourceReport {
  maxRssKilobytes: number;
  userCpuMicroseconds: number;
  systemCpuMicroseconds: number;
}

const benchDirectory = dirname(fileURLToPath(import.meta.url));
const repositoryRoot = resolve(benchDirectory, "..");
const dataDirectory = join(benchDirectory, ".data");
const rssReporter = join(benchDirectory, "rss-reporter.mjs");

/** The path of the built CLI. */
export const cliScript = join(repositoryRoot, "apps", "cli", "dist", "cli.js");

/** Picks the runner: the CLI when asked for or, with `auto`, when it is built; otherwise the library runner. */
export async function chooseHoardRunner(preference: HoardRunnerPreference): Promise<HoardRunner> {
  const cliBuilt = existsSync(cliScript);
  if (preference === "cli" && !cliBuilt) throw new Error(`--runner cli: ${cliScript} does not exist; run pnpm build`);
  if (preference === "cli" || (preference === "auto" && cliBuilt)) return cliRunner();
  return libraryRunner(await compileLibraryRunner());
}

function cliRunner(): HoardRunner {
  return {
    kind: "cli",
    script: cliScript,
    arguments: (run) => [
      "backup",
      run.databaseUrl,
      run.target.url,
      ...modeArguments(run),
      ...(run.extraArguments ?? []),
      ...run.target.extraArguments,
    ],
  };
}

function libraryRunner(script: string): HoardRunner {
  return {
    kind: "library",
    script,
    arguments: (run) => [
      ...refuseExtraArguments(run),
      "--repository-root",
      repositoryRoot,
      "--database-url",
      run.databaseUrl,
      "--storage-url",
      run.target.url,
      ...modeArguments(run),
      ...run.target.extraArguments.map((argument) => `--storage-arg=${argument}`),
    ],
  };
}

/** The library runner takes no CLI options beyond the storage's: a run that needs them must use the CLI. */
function refuseExtraArguments(run: HoardRunOptions): string[] {
  if ((run.extraArguments ?? []).length > 0) throw new Error("--hoard-arg needs the CLI runner (apps/cli/dist/cli.js)");
  return [];
}

/** The mode, prefix, compression level and recipients, as both runners take them. */
function modeArguments(run: HoardRunOptions): string[] {
  return [
    "--mode",
    run.mode,
    "--prefix",
    run.prefix,
    ...compressionArguments(run),
    ...(run.encryptTo ?? []).flatMap((recipient) => ["--encrypt-to", recipient]),
  ];
}

function compressionArguments(run: HoardRunOptions): string[] {
  return [
    ...(run.compression === undefined ? [] : ["--compression", run.compression]),
    ...(run.compressionLevel === undefined ? [] : ["--compression-level", String(run.compressionLevel)]),
  ];
}

/**
 * Transpiles bench/library-backup.ts to bench/.data/library-backup.mjs so that plain `node` runs
 * it: a TypeScript loader in the measured process would add its own memory to hoard's. TypeScript 7
 * has no JavaScript API (`transpileModule`), so its `tsc` emits the file, unchecked, into a scratch
 * directory. Relative imports are rewritten to absolute file URLs because the output lives in
 * another directory.
 */
export async function compileLibraryRunner(): Promise<string> {
  const source = join(benchDirectory, "library-backup.ts");
  const output = join(dataDirectory, "library-backup.mjs");
  await mkdir(dataDirectory, { recursive: true });
  const scratch = await mkdtemp(join(dataDirectory, "tsc-"));
  try {
    const tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");
    const options = ["--module", "nodenext", "--target", "es2022", "--verbatimModuleSyntax", "--types", "node", "--noCheck"];
    await promisify(execFile)(process.execPath, [tsc, "--ignoreConfig", ...options, "--outDir", scratch, source]);
    const transpiled = await readFile(join(scratch, "library-backup.js"), "utf8");
    const rewritten = transpiled.replace(
      /(from\s+["'])(\.{1,2}\/[^"']+)(["'])/g,
      (_, before: string, specifier: string, after: string) => `${before}${pathToFileURL(resolve(benchDirectory, specifier)).href}${after}`,
    );
    await writeFile(output, rewritten);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return output;
}

/** Runs one backup in its own Node.js process and measures it; throws when hoard fails. */
export async function runHoardBackup(runner: HoardRunner, run: HoardRunOptions): Promise<HoardMeasurement> {
  const measured = await runMeasuredHoard({
    label: `hoard (${runner.kind}, ${run.mode})`,
    script: runner.script,
    arguments: runner.arguments(run),
    name: run.prefix,
    temporaryParent: run.temporaryDirectory,
  });
  return {
    ...measured,
    outputBytes: await run.target.storedSize(run.prefix, async () => reportedSize(measured.stdout) ?? (await listedSize(runner, run))),
  };
}

/** One restore to run with the CLI. */
export interface HoardRestoreOptions {
  /** The backup: a path, a file:// URL or a storage URL of one object. */
  backupUrl: string;
  databaseUrl: string;
  /** More `hoard restore` arguments, e.g. `--pg-jobs 2`. */
  extraArguments?: string[];
  /** Unique per run: names the resource report. */
  name: string;
  /** Where the run's own TMPDIR is made (and watched). @default this process's TMPDIR */
  temporaryDirectory?: string;
}

/** What one measured hoard restore took. */
export type HoardRestoreMeasurement = Omit<HoardMeasurement, "outputBytes">;

/**
 * Runs `hoard restore` of the built CLI in its own Node.js process and measures it like a backup;
 * throws when hoard fails. The library runner has no restore: restores need `pnpm build`.
 */
export async function runHoardRestore(restore: HoardRestoreOptions): Promise<HoardRestoreMeasurement> {
  if (!existsSync(cliScript)) throw new Error(`the restore benchmark runs the CLI: ${cliScript} does not exist; run pnpm build`);
  const { stdout: _, ...measured } = await runMeasuredHoard({
    label: "hoard restore",
    script: cliScript,
    arguments: ["restore", restore.backupUrl, restore.databaseUrl, ...(restore.extraArguments ?? [])],
    name: restore.name,
    temporaryParent: restore.temporaryDirectory,
    // Finds pg_restore and psql within 0.1 s of their start, for the time hoard takes before the tool runs.
    discoveryIntervalMs: 100,
  });
  return measured;
}

/** One hoard process to measure. */
interface MeasuredHoardRun {
  label: string;
  script: string;
  arguments: string[];
  name: string;
  temporaryParent: string | undefined;
  discoveryIntervalMs?: number;
}

/**
 * Starts `node --import rss-reporter.mjs <script> <arguments>` with a TMPDIR of its own (a new
 * empty directory, watched for what hoard writes there, removed afterwards) and measures it.
 */
async function runMeasuredHoard(run: MeasuredHoardRun): Promise<Omit<HoardMeasurement, "outputBytes"> & { stdout: string }> {
  await mkdir(dataDirectory, { recursive: true });
  const reportFile = join(dataDirectory, `resources-${process.pid}-${run.name}.json`);
  await rm(reportFile, { force: true });
  const temporaryDirectory = await mkdtemp(join(run.temporaryParent ?? tmpdir(), "hoard-tmpdir-"));
  try {
    const disk = new DirectoryUsageSampler(temporaryDirectory);
    const sampler = new ProcessMemorySampler({ discoveryIntervalMs: run.discoveryIntervalMs });
    const started = performance.now();
    const child = spawn(process.execPath, ["--import", pathToFileURL(rssReporter).href, run.script, ...run.arguments], {
      env: { ...process.env, HOARD_BENCH_RSS_FILE: reportFile, TMPDIR: temporaryDirectory },
      stdio: ["ignore", "pipe", "pipe"],
    });
    sampler.watch(child.pid, true);
    const stdout = collectStdout(child);
    const exit = await waitForExit(run.label, child);
    const wallSeconds = (performance.now() - started) / 1000;
    const processes = sampler.stop();
    const temporaryDisk = disk.stop();
    assertSucceeded([exit]);
    const report = JSON.parse(await readFile(reportFile, "utf8")) as ResourceReport;
    return {
      wallSeconds,
      nodePeakKilobytes: report.maxRssKilobytes,
      nodeCpuSeconds: (report.userCpuMicroseconds + report.systemCpuMicroseconds) / 1e6,
      processes,
      temporaryDisk,
      stdout: stdout(),
    };
  } finally {
    await rm(reportFile, { force: true });
    await rm(temporaryDirectory, { recursive: true, force: true });
  }
}

/**
 * The stored size hoard printed, if it printed one: the library runner prints its result as JSON;
 * for the CLI, a JSON line with a numeric `size` is taken when there is one.
 */
function reportedSize(stdout: string): number | undefined {
  for (const line of stdout.split("\n").reverse()) {
    try {
      const parsed = JSON.parse(line) as { size?: unknown };
      if (typeof parsed.size === "number") return parsed.size;
    } catch {}
  }
  return undefined;
}

/** The size `hoard list --json` gives for the run's backup (CLI only: the library runner prints its result). */
async function listedSize(runner: HoardRunner, run: HoardRunOptions): Promise<number | undefined> {
  if (runner.kind !== "cli") return undefined;
  const child = spawn(
    process.execPath,
    [runner.script, "list", run.target.url, "--prefix", run.prefix, "--json", ...run.target.extraArguments],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const stdout = collectStdout(child);
  if ((await waitForExit("hoard list", child)).code !== 0) return undefined;
  try {
    const rows = JSON.parse(stdout()) as { size?: unknown }[];
    const size = rows[0]?.size;
    return typeof size === "number" ? size : undefined;
  } catch {
    return undefined;
  }
}
