/**
 * What the MariaDB and MongoDB benchmarks (bench/mariadb.ts, bench/mongodb.ts) share: running one
 * hoard command as a measured Node.js process, running a plain pipeline that reads a file, folding
 * samples into table rows, the PASS/FAIL checks, and the results file. The PostgreSQL benchmark's
 * own helpers (process-memory.ts, plain-pipelines.ts, machine-quiet.ts) do the measuring.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { assertSucceeded, collectStdout, waitForExit } from "./child-process.ts";
import { waitForQuietMachine } from "./machine-quiet.ts";
import { type PipelineStage, runPipeline } from "./plain-pipelines.ts";
import { ProcessMemorySampler, type ProcessPeak } from "./process-memory.ts";

const benchDirectory = dirname(fileURLToPath(import.meta.url));
export const repositoryRoot = join(benchDirectory, "..");
export const resultsDirectory = join(benchDirectory, ".data");
const rssReporter = join(benchDirectory, "rss-reporter.mjs");
/** The built CLI the benchmarks run (`pnpm build` makes it). */
export const cliScript = join(repositoryRoot, "apps", "cli", "dist", "cli.js");

/** One run of one variant. */
export interface RunSample {
  wallSeconds: number;
  /** ru_maxrss of hoard's Node.js process, KiB (hoard variants). */
  nodePeakKilobytes?: number;
  nodeCpuSeconds?: number;
  /** Every process seen (the tools hoard or the pipeline ran), with VmHWM and CPU seconds. */
  processes: ProcessPeak[];
  /** Bytes stored (backups). */
  outputBytes?: number;
  /** Busy share of all CPUs (0-1) in the second before the run. */
  busyBefore?: number;
  /** CPU seconds the database server's processes used during the run (other clients' work included). */
  serverCpuSeconds?: number;
  /** What the check after the run found (restores: the restored data compared with the source). */
  verified?: string;
  error?: string;
}

/** A variant's runs folded: median wall time, CPU and size, the highest peaks. */
export interface RowSummary {
  runs: number;
  failures: number;
  wallSeconds?: number;
  wallSecondsLowest?: number;
  wallSecondsHighest?: number;
  nodePeakKilobytes?: number;
  nodeCpuSeconds?: number;
  serverCpuSeconds?: number;
  /** Per process name (e.g. mariadb-dump, gzip): the highest peak in KiB and the median CPU seconds. */
  tools: Array<{ name: string; peakKilobytes: number; cpuSeconds: number }>;
  outputBytes?: number;
}

/** All runs of one variant. */
export interface VariantRow {
  id: string;
  label: string;
  kind: "hoard" | "plain";
  samples: RunSample[];
  summary: RowSummary;
}

/** One PASS/FAIL line. */
export interface TargetLine {
  status: "PASS" | "FAIL" | "SKIP";
  text: string;
}

/** What a benchmark function returns to its CLI or to a top-level `pnpm bench`. */
export interface BenchmarkReport {
  /** The markdown report: settings, machine, tables, PASS/FAIL lines. */
  markdown: string;
  targets: TargetLine[];
  /** True when a target failed or a run failed. */
  failed: boolean;
  /** The JSON results file. */
  resultsPath: string;
}

/** Names of processes that are hoard itself or plumbing, never a "tool" column. */
const notTools = new Set(["node", "MainThread"]);

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((left, right) => left - right);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function defined(values: (number | undefined)[]): number[] {
  return values.filter((value): value is number => value !== undefined);
}

/** Folds the runs of a variant. */
export function summarizeRuns(samples: readonly RunSample[]): RowSummary {
  const good = samples.filter((sample) => sample.error === undefined);
  const walls = good.map((sample) => sample.wallSeconds);
  const names = [...new Set(good.flatMap((sample) => sample.processes.map((process) => process.name)))].filter(
    (name) => !notTools.has(name),
  );
  const tools = names.map((name) => {
    const perRun = good.map((sample) => sample.processes.filter((process) => process.name === name && process.peakKilobytes > 0));
    return {
      name,
      peakKilobytes: Math.max(0, ...perRun.flat().map((process) => process.peakKilobytes)),
      cpuSeconds:
        median(perRun.filter((list) => list.length > 0).map((list) => list.reduce((sum, process) => sum + process.cpuSeconds, 0))) ?? 0,
    };
  });
  const peaks = defined(good.map((sample) => sample.nodePeakKilobytes));
  return {
    runs: samples.length,
    failures: samples.length - good.length,
    wallSeconds: median(walls),
    wallSecondsLowest: walls.length === 0 ? undefined : Math.min(...walls),
    wallSecondsHighest: walls.length === 0 ? undefined : Math.max(...walls),
    nodePeakKilobytes: peaks.length === 0 ? undefined : Math.max(...peaks),
    nodeCpuSeconds: median(defined(good.map((sample) => sample.nodeCpuSeconds))),
    serverCpuSeconds: median(defined(good.map((sample) => sample.serverCpuSeconds))),
    tools: tools.filter((tool) => tool.peakKilobytes > 0),
    outputBytes: median(defined(good.map((sample) => sample.outputBytes))),
  };
}

/** One hoard command, measured. */
export interface HoardCommandMeasurement {
  wallSeconds: number;
  nodePeakKilobytes: number;
  nodeCpuSeconds: number;
  processes: ProcessPeak[];
  stdout: string;
}

/**
 * Runs `node --import rss-reporter.mjs apps/cli/dist/cli.js ...arguments` and measures it: wall
 * time from spawn to exit, the Node.js process's own ru_maxrss and CPU (from the reporter), and
 * VmHWM and CPU of every process it starts (sampled from /proc). Throws when hoard fails.
 */
export async function runHoardCommand(
  argumentList: string[],
  options: { environment?: NodeJS.ProcessEnv; label: string },
): Promise<HoardCommandMeasurement> {
  if (!existsSync(cliScript)) throw new Error(`${cliScript} does not exist: run pnpm build`);
  await mkdir(resultsDirectory, { recursive: true });
  const reportFile = join(resultsDirectory, `resources-${process.pid}-${Date.now()}.json`);
  const sampler = new ProcessMemorySampler();
  const started = performance.now();
  const child = spawn(process.execPath, ["--import", pathToFileURL(rssReporter).href, cliScript, ...argumentList], {
    env: { ...(options.environment ?? process.env), HOARD_BENCH_RSS_FILE: reportFile },
    stdio: ["ignore", "pipe", "pipe"],
  });
  sampler.watch(child.pid, true);
  const stdout = collectStdout(child);
  const exit = await waitForExit(options.label, child);
  const wallSeconds = (performance.now() - started) / 1000;
  const processes = sampler.stop();
  assertSucceeded([exit]);
  const report = JSON.parse(await readFile(reportFile, "utf8")) as {
    maxRssKilobytes: number;
    userCpuMicroseconds: number;
    systemCpuMicroseconds: number;
  };
  await rm(reportFile, { force: true });
  return {
    wallSeconds,
    nodePeakKilobytes: report.maxRssKilobytes,
    nodeCpuSeconds: (report.userCpuMicroseconds + report.systemCpuMicroseconds) / 1e6,
    processes: processes.filter((process) => process.pid !== child.pid),
    stdout: stdout(),
  };
}

/**
 * Runs a plain pipeline whose output is not wanted (a restore: `gzip -dc file | mariadb db`): the
 * last stage's stdout goes to a scratch file in `directory`, removed afterwards.
 */
export async function runPlainRestore(
  stages: readonly PipelineStage[],
  environment: NodeJS.ProcessEnv,
  directory: string,
): Promise<{ wallSeconds: number; processes: ProcessPeak[] }> {
  const sink = join(directory, `restore-output-${process.pid}-${Date.now()}.txt`);
  try {
    const measured = await runPipeline(stages, environment, sink);
    return { wallSeconds: measured.wallSeconds, processes: measured.processes };
  } finally {
    await rm(sink, { force: true });
  }
}

/** The one backup a hoard run stored in a local storage directory: the file named `<prefix>-<time>.<ext>`, not its companions (`.sha256`, `.manifest.json`). */
export async function storedBackup(directory: string, prefix: string): Promise<{ path: string; bytes: number }> {
  const names = (await readdir(directory)).filter(
    (name) => name.startsWith(`${prefix}-`) && !name.endsWith(".manifest.json") && !name.endsWith(".sha256"),
  );
  if (names.length !== 1) throw new Error(`expected one backup named ${prefix}-* in ${directory}, found: ${names.join(", ") || "none"}`);
  const path = join(directory, names[0] as string);
  return { path, bytes: (await stat(path)).size };
}

/**
 * Runs one measurement after waiting (up to `quietWaitSeconds`) for the machine to be quiet; a
 * failure becomes a sample with the error, so one broken run does not lose the others.
 */
export async function measureOnce(quietWaitSeconds: number, run: () => Promise<RunSample>, serverPids: number[] = []): Promise<RunSample> {
  const quiet = await waitForQuietMachine({ timeoutSeconds: quietWaitSeconds });
  try {
    // A run that counts the server's CPU itself (a restore, around the restore but not its check) keeps its own count.
    const sample = await withServerCpu(serverPids, run);
    return { ...sample, busyBefore: quiet.busyFraction };
  } catch (error) {
    return { wallSeconds: 0, processes: [], busyBefore: quiet.busyFraction, error: error instanceof Error ? error.message : String(error) };
  }
}

/** Runs `run` and adds the CPU seconds the `serverPids` used meanwhile, unless the sample has its own count. */
export async function withServerCpu<Sample extends { serverCpuSeconds?: number }>(
  serverPids: readonly number[],
  run: () => Promise<Sample>,
): Promise<Sample> {
  const before = serverCpu(serverPids);
  const sample = await run();
  const after = serverCpu(serverPids);
  if (sample.serverCpuSeconds !== undefined || before === undefined || after === undefined) return sample;
  return { ...sample, serverCpuSeconds: after - before };
}

/** utime + stime of the processes, seconds; undefined when there are none or one cannot be read. */
function serverCpu(pids: readonly number[]): number | undefined {
  if (pids.length === 0) return undefined;
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return undefined;
    }
  }
  return total;
}

/** The pids of the running processes with this exact name (e.g. `mariadbd`), from /proc. */
export function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === name) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/** Rotates the order each round, so no variant always runs first or right after the heaviest one. */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const shift = round % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** A one-line account of a sample for the progress log. */
export function describeRun(sample: RunSample): string {
  if (sample.error !== undefined) return `FAILED: ${sample.error}`;
  const memory = sample.nodePeakKilobytes === undefined ? "" : `, Node peak ${(sample.nodePeakKilobytes / 1024).toFixed(1)} MiB`;
  const output = sample.outputBytes === undefined ? "" : `, ${(sample.outputBytes / 1024 / 1024).toFixed(1)} MiB out`;
  const verified = sample.verified === undefined ? "" : `, ${sample.verified}`;
  const busy = sample.busyBefore === undefined ? "" : ` (machine ${(sample.busyBefore * 100).toFixed(0)}% busy before)`;
  return `${sample.wallSeconds.toFixed(2)} s${memory}${output}${verified}${busy}`;
}

const mebibytes = (kilobytes: number | undefined) => (kilobytes === undefined ? "-" : (kilobytes / 1024).toFixed(1));

/** Markdown rows for a group of variants; `reference` is the plain row the ratio column divides by. */
export function markdownRows(rows: readonly VariantRow[], reference: VariantRow | undefined, uncompressedBytes?: number): string {
  const header =
    "| Variant | Wall s, median (range) | vs plain | hoard Node peak RSS MiB | tools' peak RSS MiB | CPU s hoard / tools | server CPU s | Output MiB | Ratio | Runs (busy before) |";
  const rule = "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";
  const referenceWall = reference?.summary.wallSeconds;
  const lines = rows.map((row) => {
    const summary = row.summary;
    const wall =
      summary.wallSeconds === undefined
        ? "failed"
        : `${summary.wallSeconds.toFixed(2)} (${summary.wallSecondsLowest?.toFixed(2)}-${summary.wallSecondsHighest?.toFixed(2)})`;
    const ratio =
      summary.wallSeconds !== undefined && referenceWall !== undefined && referenceWall > 0
        ? `${(summary.wallSeconds / referenceWall).toFixed(2)}x`
        : "-";
    const tools =
      summary.tools.length === 0 ? "-" : summary.tools.map((tool) => `${tool.name} ${mebibytes(tool.peakKilobytes)}`).join(", ");
    const cpu = `${summary.nodeCpuSeconds === undefined ? "-" : summary.nodeCpuSeconds.toFixed(1)} / ${
      summary.tools.length === 0 ? "-" : summary.tools.map((tool) => `${tool.name} ${tool.cpuSeconds.toFixed(1)}`).join(", ")
    }`;
    const output = summary.outputBytes === undefined ? "-" : (summary.outputBytes / 1024 / 1024).toFixed(1);
    const compression =
      summary.outputBytes === undefined || uncompressedBytes === undefined ? "-" : (uncompressedBytes / summary.outputBytes).toFixed(2);
    const busy = row.samples.map((sample) => (sample.busyBefore === undefined ? "?" : `${(sample.busyBefore * 100).toFixed(0)}%`));
    const failures = summary.failures > 0 ? `, ${summary.failures} failed` : "";
    const server = summary.serverCpuSeconds === undefined ? "-" : summary.serverCpuSeconds.toFixed(1);
    return `| ${row.label.replaceAll("|", "\\|")} | ${wall} | ${ratio} | ${mebibytes(summary.nodePeakKilobytes)} | ${tools} | ${cpu} | ${server} | ${output} | ${compression} | ${summary.runs} (${busy.join(" ")})${failures} |`;
  });
  return [header, rule, ...lines].join("\n");
}

/** The check "hoard's median wall time at most `factor` times the plain tool's". */
export function wallTarget(what: string, hoard: VariantRow | undefined, plain: VariantRow | undefined, factor: number): TargetLine {
  const hoardWall = hoard?.summary.wallSeconds;
  const plainWall = plain?.summary.wallSeconds;
  if (hoard === undefined || plain === undefined || hoardWall === undefined || plainWall === undefined) {
    return { status: "SKIP", text: `${what}: not measured (a variant was not run or every run failed)` };
  }
  const limit = plainWall * factor;
  const passed = hoardWall <= limit && hoard.summary.failures === 0;
  const failures = hoard.summary.failures > 0 ? `; ${hoard.summary.failures} hoard run(s) failed` : "";
  return {
    status: passed ? "PASS" : "FAIL",
    text: `${what}: ${hoard.label} ${hoardWall.toFixed(2)} s ${hoardWall <= limit ? "<=" : ">"} ${factor} x ${plainWall.toFixed(2)} s (${plain.label}) = ${limit.toFixed(2)} s (ratio ${(hoardWall / plainWall).toFixed(2)})${failures}`,
  };
}

/** The lines of a target list, e.g. `PASS 300 MiB backup: ...`. */
export function targetText(targets: readonly TargetLine[]): string {
  return targets.map((target) => `${target.status} ${target.text}`).join("\n");
}

/** The machine, for the report. */
export function machineDescription(): string[] {
  const busy = loadavg();
  return [
    `- CPU: ${cpus()[0]?.model ?? "unknown"}, ${availableParallelism()} processors; memory ${(totalmem() / 1024 ** 3).toFixed(1)} GiB; Linux ${release()}`,
    `- Node.js ${process.version}; load average before: ${busy.map((value) => value.toFixed(2)).join(" ")}`,
  ];
}

/** Writes the full results, every sample included, to bench/.data/<name>-<timestamp>.json. */
export async function writeResultsFile(name: string, started: Date, document: unknown): Promise<string> {
  await mkdir(resultsDirectory, { recursive: true });
  const stamp = started
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const path = join(resultsDirectory, `${name}-${stamp}.json`);
  await writeFile(path, `${JSON.stringify(document, null, 2)}\n`);
  return path;
}

/** Output of a short program run (a version line), or a note when it fails. */
export async function programOutput(executable: string, argumentList: string[], environment?: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(executable, argumentList, { stdio: ["ignore", "pipe", "pipe"], env: environment ?? process.env });
  const stdout = collectStdout(child);
  const exit = await waitForExit(executable, child);
  return exit.code === 0 ? stdout().trim() : `unknown (${executable} exited ${exit.code})`;
}
