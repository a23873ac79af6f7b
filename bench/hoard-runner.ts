import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { assertSucceeded, collectStdout, waitForExit } from "./child-process.ts";
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
  /** TMPDIR for hoard, where file mode writes its temporary file. @default this process's */
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
  await mkdir(dataDirectory, { recursive: true });
  const reportFile = join(dataDirectory, `resources-${process.pid}-${run.prefix}.json`);
  await rm(reportFile, { force: true });
  const sampler = new ProcessMemorySampler();
  const started = performance.now();
  const child = spawn(process.execPath, ["--import", pathToFileURL(rssReporter).href, runner.script, ...runner.arguments(run)], {
    env: { ...process.env, HOARD_BENCH_RSS_FILE: reportFile, ...(run.temporaryDirectory ? { TMPDIR: run.temporaryDirectory } : {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  sampler.watch(child.pid, true);
  const stdout = collectStdout(child);
  const exit = await waitForExit(`hoard (${runner.kind}, ${run.mode})`, child);
  const wallSeconds = (performance.now() - started) / 1000;
  const processes = sampler.stop();
  assertSucceeded([exit]);
  const report = JSON.parse(await readFile(reportFile, "utf8")) as ResourceReport;
  await rm(reportFile, { force: true });
  return {
    wallSeconds,
    nodePeakKilobytes: report.maxRssKilobytes,
    nodeCpuSeconds: (report.userCpuMicroseconds + report.systemCpuMicroseconds) / 1e6,
    processes,
    outputBytes: await run.target.storedSize(run.prefix, async () => reportedSize(stdout()) ?? (await listedSize(runner, run))),
  };
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
