/**
 * hoard's PostgreSQL benchmark: for each database size, hoard's backups (stream and file mode,
 * encrypted, zstd) against the plain tools, and hoard's restores against pg_restore and psql (see
 * bench/restore.ts), with wall time, peak memory, CPU time, output size and temporary disk, and
 * the issues' targets as PASS/FAIL lines.
 *
 *   pnpm bench                                   (builds, then runs with the defaults: 300 MiB,
 *                                                 every variant, backup and restore, 3 runs each)
 *   pnpm exec tsx bench/run.ts --sizes 300,1024 --repeat 3
 *   pnpm exec tsx bench/run.ts --sizes 300,1024,5120 --variants hoard-stream,pg-dump-custom --repeat 1
 *
 * Options:
 *   --sizes 300,1024          database sizes on disk, MiB (default 300); each database is made once
 *                             by bench/generate-postgres.ts and reused by later runs
 *   --repeat N                runs of each variant per size, interleaved (default 3); the table
 *                             shows the median wall time and the highest peak memory
 *   --fresh                   rebuild the databases
 *   --runner auto|cli|library hoard's CLI (apps/cli/dist/cli.js) or bench/library-backup.ts; auto
 *                             (default) takes the CLI when it is built
 *   --variants a,b            only these variant ids, or the groups `backup` and `restore` (default
 *                             all). Backups: hoard-stream, hoard-stream-age, hoard-stream-gzip,
 *                             hoard-file, pg-dump-custom, pg-dump-gzip, pg-dump-raw-gzip;
 *                             hoard-stream-age encrypts to a key made by age-keygen for the run;
 *                             hoard-stream-gzip is --compression gzip (the others: hoard's
 *                             default, zstd 3 with min match 6). Restores (each into a fresh
 *                             empty database; the CLI runs them, so they need pnpm build):
 *                             restore-hoard, restore-pg-restore, restore-hoard-jobs,
 *                             restore-pg-restore-jobs, restore-hoard-bz2, restore-bzip2-psql,
 *                             restore-lbzip2-psql (reference)
 *   --restore-jobs N          N of the --jobs restores and their inputs (default 2)
 *   --databases a,b           postgresql (default), mariadb, mongodb, or all: after PostgreSQL, run
 *                             bench/mariadb.ts and bench/mongodb.ts (their own sizes and variants;
 *                             --repeat, --quiet-wait and --work-directory are passed on)
 *   --compression-level N     the gzip level of hoard-stream-gzip (default: hoard's, 6)
 *   --plain-compression-level N  the plain pipelines' level, pg_dump -Z N and gzip -N (default 6,
 *                             both tools' own default, which is what the wall-time target compares with)
 *   --hoard-arg=ARG           one more argument for `hoard backup` (repeatable, CLI runner only), e.g.
 *                             --hoard-arg=--dump-option=--compress=6 --compression-level 0 to let
 *                             pg_dump compress and hoard only store
 *   --storage local           where hoard stores backups (default local: a temporary directory)
 *   --storage-url URL         store to an existing storage instead, e.g. s3://bench/runs ...
 *   --storage-arg=ARG         ... with the options hoard needs for it (repeatable), e.g.
 *                             --storage-arg=--s3-endpoint=http://127.0.0.1:7070
 *   --work-directory DIR      where outputs, restore inputs and temporary files go (default the
 *                             system's); each hoard run gets a new empty TMPDIR under it, watched for
 *                             the temporary disk it uses
 *   --quiet-wait SECONDS      before each run, wait up to this long for the machine's CPUs to be
 *                             under 20% busy (others' builds skew wall times; default 60, 0: no wait);
 *                             the busy share seen is kept with each run
 *
 * Memory: hoard's Node.js process reports its own ru_maxrss when it exits (bench/rss-reporter.mjs,
 * loaded with `node --import`); pg_dump and gzip have no such hook, so their VmHWM is read from
 * /proc/<pid>/status every 20 ms (see bench/process-memory.ts). Temporary disk: the files in
 * hoard's TMPDIR, walked every 50 ms and watched with inotify (bench/disk-usage.ts). Results:
 * markdown tables on stdout (backups, seconds per MiB and throughput, restores), the targets as
 * PASS/FAIL/SKIP lines, everything in bench/.data/results-<timestamp>.json.
 *
 * Targets: stream mode's peak RSS under 150 MiB (local storage; 200 MiB to S3/GCS) and at or
 * under 120 MiB, and flat (largest size within 10 MiB of the smallest); its wall time within 1.2x
 * the faster plain pipeline and within 0.6x of pg_dump -Fc, its output no larger than
 * pg_dump -Fc's, no temporary disk; linear time (seconds per MiB at the largest size within
 * 1.25x of the smallest size's); the encrypted stream backup within 1.15x and 10 MiB of the plain
 * one; each hoard restore within 1.1x of its plain tool. The figures and why: bench/report.ts.
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type PostgresServer, startPostgres } from "@hoard/test-harness";
import { waitForExit } from "./child-process.ts";
import { prepareBenchmarkDatabase } from "./generate-postgres.ts";
import type { HoardRunner, HoardRunnerPreference } from "./hoard-runner.ts";
import { chooseHoardRunner, runHoardBackup } from "./hoard-runner.ts";
import type { MachineInfo } from "./machine-info.ts";
import { machineInfo } from "./machine-info.ts";
import { waitForQuietMachine } from "./machine-quiet.ts";
import type { PipelineStage, PlainTools } from "./plain-pipelines.ts";
import {
  customFormatDump,
  findPlainTools,
  measurePipeline,
  plainSqlGzip,
  uncompressedCustomGzip,
  uncompressedDumpSize,
} from "./plain-pipelines.ts";
import type { ProcessPeak } from "./process-memory.ts";
import { canSampleProcessMemory, cpuOf, peakOf } from "./process-memory.ts";
import type { Sample, SizeResult, ToolUse, VariantResult } from "./report.ts";
import {
  checkScaleTargets,
  checkTargets,
  databaseLines,
  markdownTable,
  restoreTable,
  scaleLines,
  summarize,
  targetLines,
} from "./report.ts";
import { RestoreInputs, type RestoreVariant, restoreVariants } from "./restore.ts";
import type { StorageTarget } from "./storage-targets.ts";
import { openStorageTarget } from "./storage-targets.ts";

/** The command line, parsed. */
interface BenchmarkOptions {
  sizes: number[];
  repeat: number;
  fresh: boolean;
  runner: HoardRunnerPreference;
  variants: string[] | undefined;
  compressionLevel: number | undefined;
  plainCompressionLevel: number | undefined;
  hoardArguments: string[];
  storage: string;
  storageUrl: string | undefined;
  storageArguments: string[];
  workDirectory: string;
  quietWaitSeconds: number;
  restoreJobs: number;
  /** postgresql (this file), mariadb, mongodb (their own scripts). */
  databases: string[];
}

/** What every variant's run needs. */
interface RunContext {
  runner: HoardRunner;
  target: StorageTarget;
  tools: PlainTools;
  databaseUrl: string;
  environment: NodeJS.ProcessEnv;
  outputDirectory: string;
  compressionLevel: number | undefined;
  plainCompressionLevel: number | undefined;
  hoardArguments: string[];
  /** Unique among all runs, e.g. `bench-300mb-r2`. */
  runName: string;
  /** The age recipient the encrypted variant encrypts to (age-keygen's, made once per benchmark). */
  recipient: () => Promise<string>;
  server: PostgresServer;
  /** The restore variants' inputs for this size. */
  restoreInputs: RestoreInputs;
  restoreJobs: number;
}

/** One thing to measure. */
interface Variant {
  id: string;
  label: string;
  kind: "hoard" | "plain";
  phase: "backup" | "restore";
  /** Counts as a plain pipeline for the backup wall-time target. */
  baseline: boolean;
  /** Restores: the plain restore a hoard restore is held against. */
  comparedWith?: string;
  run(context: RunContext): Promise<Sample>;
}

const benchDirectory = dirname(fileURLToPath(import.meta.url));
const resultsDirectory = join(benchDirectory, ".data");

function parseOptions(argv: string[]): BenchmarkOptions {
  const { values } = parseArgs({
    // `pnpm bench -- --sizes 300` may hand the separator through.
    args: argv[0] === "--" ? argv.slice(1) : argv,
    options: {
      sizes: { type: "string", default: "300" },
      repeat: { type: "string", default: "3" },
      fresh: { type: "boolean", default: false },
      runner: { type: "string", default: "auto" },
      variants: { type: "string" },
      "compression-level": { type: "string" },
      "plain-compression-level": { type: "string" },
      "hoard-arg": { type: "string", multiple: true, default: [] },
      storage: { type: "string", default: "local" },
      "storage-url": { type: "string" },
      "storage-arg": { type: "string", multiple: true, default: [] },
      "work-directory": { type: "string", default: tmpdir() },
      "quiet-wait": { type: "string", default: "60" },
      "restore-jobs": { type: "string", default: "2" },
      databases: { type: "string", default: "postgresql" },
    },
    strict: true,
  });
  const sizes = values.sizes.split(",").map((size) => Number(size.trim()));
  if (sizes.some((size) => !Number.isInteger(size) || size < 10)) throw new Error(`--sizes takes whole MiB of at least 10, e.g. 300,1024`);
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error("--repeat takes a whole number of at least 1");
  if (!["auto", "cli", "library"].includes(values.runner)) throw new Error("--runner takes auto, cli or library");
  const restoreJobs = Number(values["restore-jobs"]);
  if (!Number.isInteger(restoreJobs) || restoreJobs < 2 || restoreJobs > 64) throw new Error("--restore-jobs takes 2 to 64");
  const known = ["postgresql", ...Object.keys(otherDatabases)];
  const databases = values.databases === "all" ? known : values.databases.split(",").map((name) => name.trim());
  const unknownDatabases = databases.filter((name) => !known.includes(name));
  if (unknownDatabases.length > 0) throw new Error(`--databases takes all or ${known.join(", ")}, not ${unknownDatabases.join(", ")}`);
  return {
    sizes,
    repeat,
    fresh: values.fresh,
    runner: values.runner as HoardRunnerPreference,
    variants: values.variants?.split(",").map((id) => id.trim()),
    compressionLevel: parseLevel(values["compression-level"], "--compression-level", 0),
    plainCompressionLevel: parseLevel(values["plain-compression-level"], "--plain-compression-level", 1),
    hoardArguments: values["hoard-arg"],
    storage: values.storage,
    storageUrl: values["storage-url"],
    storageArguments: values["storage-arg"],
    workDirectory: resolve(values["work-directory"]),
    quietWaitSeconds: Math.max(0, Number(values["quiet-wait"]) || 0),
    restoreJobs,
    databases,
  };
}

/** A gzip level from the command line: 0 (store only, hoard) or `lowest` (1 for the gzip program) to 9. */
function parseLevel(text: string | undefined, name: string, lowest: number): number | undefined {
  if (text === undefined) return undefined;
  const level = Number(text);
  if (!Number.isInteger(level) || level < lowest || level > 9) throw new Error(`${name} takes ${lowest} to 9`);
  return level;
}

function hoardVariant(mode: "stream" | "file", encrypted = false, compression?: "gzip"): Variant {
  const suffix = encrypted ? "-age" : compression ? `-${compression}` : "";
  return {
    id: `hoard-${mode}${suffix}`,
    label: `hoard ${mode}${encrypted ? ", age-encrypted" : ""}${compression ? `, ${compression}` : ""}`,
    kind: "hoard",
    phase: "backup",
    baseline: false,
    async run(context) {
      // Not `<run>-stream-age`: the unencrypted run's `<run>-stream-*` would match it.
      const prefix = `${context.runName}${suffix}-${mode}`;
      const measured = await runHoardBackup(context.runner, {
        encryptTo: encrypted ? [await context.recipient()] : undefined,
        databaseUrl: context.databaseUrl,
        target: context.target,
        mode,
        prefix,
        // --compression-level is a gzip level (0-9): only the gzip variant takes it; the others
        // run with hoard's default compression (zstd 3 with a minimum match of 6), as a user who names none gets.
        ...(compression ? { compression, compressionLevel: context.compressionLevel } : {}),
        extraArguments: context.hoardArguments,
        temporaryDirectory: context.outputDirectory,
      });
      return {
        wallSeconds: measured.wallSeconds,
        nodePeakKilobytes: measured.nodePeakKilobytes,
        nodeCpuSeconds: measured.nodeCpuSeconds,
        pgDumpPeakKilobytes: peakOf(measured.processes, "pg_dump"),
        pgDumpCpuSeconds: cpuOf(measured.processes, "pg_dump"),
        outputBytes: measured.outputBytes,
        temporaryDiskBytes: measured.temporaryDisk.peakBytes,
        temporaryFiles: measured.temporaryDisk.fileCount,
        tools: toolUses(measured.processes),
        processes: measured.processes,
      };
    },
  };
}

/** Peak RSS and CPU seconds of each tool by process name; hoard's own Node.js process is left out (it reports itself). */
function toolUses(processes: readonly ProcessPeak[]): Record<string, ToolUse> {
  const uses: Record<string, ToolUse> = {};
  for (const peak of processes) {
    if (peak.executable === process.execPath || peak.peakKilobytes === 0) continue;
    const use = uses[peak.name] ?? { peakKilobytes: 0, cpuSeconds: 0 };
    uses[peak.name] = { peakKilobytes: Math.max(use.peakKilobytes, peak.peakKilobytes), cpuSeconds: use.cpuSeconds + peak.cpuSeconds };
  }
  return uses;
}

function plainVariant(
  id: string,
  label: string,
  baseline: boolean,
  stages: (tools: PlainTools, level: number | undefined) => PipelineStage[],
): Variant {
  return {
    id,
    label,
    kind: "plain",
    phase: "backup",
    baseline,
    async run(context) {
      const output = join(context.outputDirectory, `${context.runName}-${id}.out`);
      const measured = await measurePipeline(stages(context.tools, context.plainCompressionLevel), context.environment, output);
      return {
        wallSeconds: measured.wallSeconds,
        pgDumpPeakKilobytes: peakOf(measured.processes, "pg_dump"),
        pgDumpCpuSeconds: cpuOf(measured.processes, "pg_dump"),
        gzipPeakKilobytes: peakOf(measured.processes, "gzip"),
        gzipCpuSeconds: cpuOf(measured.processes, "gzip"),
        outputBytes: measured.outputBytes,
        tools: toolUses(measured.processes),
        processes: measured.processes,
      };
    },
  };
}

/** A restore of bench/restore.ts as a variant of the table. */
function restoreVariant(restore: RestoreVariant): Variant {
  return {
    id: restore.id,
    label: restore.label,
    kind: restore.kind,
    phase: "restore",
    baseline: false,
    comparedWith: restore.comparedWith,
    async run(context) {
      const measured = await restore.run({
        server: context.server,
        tools: context.tools,
        inputs: context.restoreInputs,
        jobs: context.restoreJobs,
        temporaryDirectory: context.outputDirectory,
        runName: context.runName,
      });
      return {
        wallSeconds: measured.wallSeconds,
        nodePeakKilobytes: measured.nodePeakKilobytes,
        nodeCpuSeconds: measured.nodeCpuSeconds,
        toolStartSeconds: measured.toolStartSeconds,
        afterToolSeconds: measured.afterToolSeconds,
        temporaryDiskBytes: measured.temporaryDisk?.peakBytes,
        temporaryFiles: measured.temporaryDisk?.fileCount,
        inputBytes: measured.inputBytes,
        tools: toolUses(measured.processes),
        processes: measured.processes,
      };
    },
  };
}

/** Every variant, in the order of the tables; `restoreJobs` names the --jobs restores. */
function allVariants(restoreJobs: number): Variant[] {
  return [
    hoardVariant("stream"),
    hoardVariant("stream", true),
    hoardVariant("stream", false, "gzip"),
    hoardVariant("file"),
    plainVariant("pg-dump-custom", "pg_dump -Fc > file", true, customFormatDump),
    plainVariant("pg-dump-gzip", "pg_dump | gzip > file", true, plainSqlGzip),
    plainVariant("pg-dump-raw-gzip", "pg_dump -Fc -Z0 | gzip > file (reference)", false, uncompressedCustomGzip),
    ...restoreVariants(restoreJobs).map(restoreVariant),
  ];
}

/** The variants named by id, or by group (`backup`, `restore`). */
function selectVariants(ids: string[] | undefined, restoreJobs: number): Variant[] {
  const every = allVariants(restoreJobs);
  if (ids === undefined) return every;
  const groups = new Set<string>(["backup", "restore"]);
  const unknown = ids.filter((id) => !groups.has(id) && !every.some((variant) => variant.id === id));
  if (unknown.length > 0)
    throw new Error(`unknown variants ${unknown.join(", ")}: use backup, restore, ${every.map((variant) => variant.id).join(", ")}`);
  return every.filter((variant) => ids.includes(variant.id) || ids.includes(variant.phase));
}

/**
 * Runs a variant once, after waiting for the machine to be quiet; a failure becomes a sample with
 * the error, so one broken run does not lose the others.
 */
async function runOnce(variant: Variant, context: RunContext, quietWaitSeconds: number): Promise<Sample> {
  const quiet = await waitForQuietMachine({ timeoutSeconds: quietWaitSeconds });
  try {
    return { ...(await variant.run(context)), busyBefore: quiet.busyFraction };
  } catch (error) {
    return { wallSeconds: 0, processes: [], busyBefore: quiet.busyFraction, error: error instanceof Error ? error.message : String(error) };
  }
}

function describeSample(sample: Sample): string {
  if (sample.error !== undefined) return `FAILED: ${sample.error}`;
  const memory = sample.nodePeakKilobytes === undefined ? "" : `, Node peak ${(sample.nodePeakKilobytes / 1024).toFixed(1)} MiB`;
  const output = sample.outputBytes === undefined ? "" : `, ${(sample.outputBytes / 1024 / 1024).toFixed(1)} MiB out`;
  const busy = sample.busyBefore === undefined ? "" : ` (machine ${(sample.busyBefore * 100).toFixed(0)}% busy before)`;
  return `${sample.wallSeconds.toFixed(2)} s${memory}${output}${busy}`;
}

/** Rotates the order each round, so no variant always runs first (cold) or right after the heaviest one. */
function roundOrder<T>(items: readonly T[], round: number): T[] {
  const shift = round % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** Prepares the database of one size and runs every variant `repeat` times. */
async function measureSize(
  sizeMegabytes: number,
  server: PostgresServer,
  options: BenchmarkOptions,
  shared: Omit<RunContext, "databaseUrl" | "environment" | "runName" | "restoreInputs">,
  variants: Variant[],
): Promise<SizeResult & { restoreInputs: unknown }> {
  const log = (line: string) => process.stderr.write(`[${sizeMegabytes} MiB] ${line}\n`);
  const database = await prepareBenchmarkDatabase({ server, sizeMegabytes, fresh: options.fresh, log });
  const environment = server.clientEnvironment(database.name);
  log("warming up: one pg_dump -Fc -Z0 to count the uncompressed dump and fill the page cache");
  const uncompressedDumpBytes = await uncompressedDumpSize(shared.tools, environment);
  const restoreInputs = new RestoreInputs({
    directory: join(shared.outputDirectory, `restore-inputs-${sizeMegabytes}mb`),
    server,
    sourceDatabase: database.name,
    tools: shared.tools,
    jobs: shared.restoreJobs,
    log,
  });
  const loadAverageBefore = loadavg();
  const samples = new Map<string, Sample[]>(variants.map((variant) => [variant.id, []]));
  try {
    for (let round = 0; round < options.repeat; round++) {
      for (const variant of roundOrder(variants, round)) {
        const context: RunContext = {
          ...shared,
          databaseUrl: database.url,
          environment,
          restoreInputs,
          runName: `bench-${sizeMegabytes}mb-r${round + 1}`,
        };
        const sample = await runOnce(variant, context, options.quietWaitSeconds);
        samples.get(variant.id)?.push(sample);
        log(`round ${round + 1}/${options.repeat} ${variant.label}: ${describeSample(sample)}`);
        await shared.target.clear();
      }
    }
  } finally {
    await restoreInputs.remove();
  }
  const results: VariantResult[] = variants.map((variant) => {
    const variantSamples = samples.get(variant.id) ?? [];
    return {
      id: variant.id,
      label: variant.label,
      kind: variant.kind,
      phase: variant.phase,
      comparedWith: variant.comparedWith,
      baseline: variant.baseline,
      samples: variantSamples,
      summary: summarize(variantSamples),
    };
  });
  return {
    sizeMegabytes,
    database: {
      name: database.name,
      sizeBytes: database.sizeBytes,
      reused: database.reused,
      generationSeconds: database.generationSeconds,
    },
    uncompressedDumpBytes,
    loadAverageBefore,
    variants: results,
    targets: checkTargets(sizeMegabytes, results, shared.target.name.split(" ")[0]),
    restoreInputs: await restoreInputs.describe(),
  };
}

/**
 * A recipient for the encrypted variant, from `age-keygen` (the identity is thrown away: the
 * benchmark never decrypts). Made on first use, so a run without that variant needs no age.
 */
function benchmarkRecipient(): () => Promise<string> {
  let made: Promise<string> | undefined;
  return () => {
    made ??= new Promise<string>((resolvePromise, reject) => {
      execFile("age-keygen", (error, stdout) => {
        const recipient = /^# public key: (age1\S+)$/m.exec(stdout)?.[1];
        if (error || recipient === undefined)
          reject(
            new Error(`age-keygen (Debian package age) is needed for hoard-stream-age: ${error?.message ?? "no public key in its output"}`),
          );
        else resolvePromise(recipient);
      });
    });
    return made;
  };
}

function describeRunner(runner: HoardRunner): string {
  return runner.kind === "cli"
    ? `hoard runner: CLI (${runner.script})`
    : `hoard runner: library (bench/library-backup.ts calling @hoard/core backup(); apps/cli/dist/cli.js not used)`;
}

function machineLines(machine: MachineInfo): string[] {
  return [
    `- CPU: ${machine.cpuModel}, ${machine.processors} processors (nproc); memory ${machine.memoryGibibytes} GiB; Linux ${machine.kernel}`,
    `- Node.js ${machine.node}; ${machine.pgDump}; ${machine.gzip}`,
    `- server: ${machine.postgresServer}`,
    `- disk: ${machine.disk.split("\n").at(-1) ?? machine.disk}`,
  ];
}

/** Writes the full results, every sample included, to bench/.data/results-<timestamp>.json. */
async function writeResults(started: Date, document: unknown): Promise<string> {
  await mkdir(resultsDirectory, { recursive: true });
  const stamp = started
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const path = join(resultsDirectory, `results-${stamp}.json`);
  await writeFile(path, `${JSON.stringify(document, null, 2)}\n`);
  return path;
}

/** The other databases' benchmarks, each a script of its own (bench/mariadb.ts, bench/mongodb.ts). */
const otherDatabases: Record<string, string> = { mariadb: "mariadb.ts", mongodb: "mongodb.ts" };

/**
 * Runs another database's benchmark after PostgreSQL's, with the options they share (runs,
 * quiet wait, work directory); its own output goes straight to ours. Resolves to its exit code.
 */
async function runOtherDatabase(name: string, options: BenchmarkOptions): Promise<number> {
  const script = join(benchDirectory, otherDatabases[name] as string);
  const args = [
    "--repeat",
    String(options.repeat),
    "--quiet-wait",
    String(options.quietWaitSeconds),
    "--work-directory",
    options.workDirectory,
  ];
  process.stderr.write(`\n${name}: tsx ${script} ${args.join(" ")}\n`);
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { stdio: "inherit", cwd: resolve(benchDirectory, "..") });
  const exit = await waitForExit(name, child);
  return exit.code ?? 1;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options.databases.includes("postgresql")) await benchmarkPostgres(options);
  for (const name of options.databases.filter((database) => database !== "postgresql")) {
    if ((await runOtherDatabase(name, options)) !== 0) {
      process.stderr.write(`bench: the ${name} benchmark failed\n`);
      process.exitCode = 1;
    }
  }
}

/** PostgreSQL's backups and restores at every size. */
async function benchmarkPostgres(options: BenchmarkOptions): Promise<void> {
  const variants = selectVariants(options.variants, options.restoreJobs);
  if (!canSampleProcessMemory()) throw new Error("this benchmark reads /proc/<pid>/status for peak memory: it needs Linux");
  const started = new Date();
  const tools = findPlainTools();
  const runner = await chooseHoardRunner(options.runner);
  process.stderr.write(`${describeRunner(runner)}\n`);
  const outputDirectory = await mkdtemp(join(options.workDirectory, "hoard-bench-"));
  const target = await openStorageTarget({
    storage: options.storage,
    storageUrl: options.storageUrl,
    storageArguments: options.storageArguments,
    temporaryParent: outputDirectory,
  });
  const server = await startPostgres();
  try {
    const machine = await machineInfo(outputDirectory, server.clientEnvironment());
    const shared = {
      recipient: benchmarkRecipient(),
      runner,
      target,
      tools,
      outputDirectory,
      compressionLevel: options.compressionLevel,
      plainCompressionLevel: options.plainCompressionLevel,
      hoardArguments: options.hoardArguments,
      server,
      restoreJobs: options.restoreJobs,
    };
    const sizes: SizeResult[] = [];
    for (const size of options.sizes) sizes.push(await measureSize(size, server, options, shared, variants));
    const scaleTargets = checkScaleTargets(sizes);
    const path = await writeResults(started, {
      started: started.toISOString(),
      options,
      runner: runner.kind,
      storage: target.name,
      machine,
      sizes,
      scaleTargets,
    });
    const lines = [
      describeRunner(runner),
      `storage: ${target.name}; runs per variant: ${options.repeat}; gzip level: hoard ${options.compressionLevel ?? 6}, plain ${options.plainCompressionLevel ?? 6}${options.hoardArguments.length > 0 ? `; hoard arguments: ${options.hoardArguments.join(" ")}` : ""}; restore jobs: ${options.restoreJobs}; PostgreSQL server: ${server.origin}`,
      "",
      ...machineLines(machine),
      ...databaseLines(sizes),
      "",
      markdownTable(sizes),
      "",
      ...scaleLines(sizes),
      "",
      restoreTable(sizes),
      "",
      ...targetLines(sizes, scaleTargets),
      "",
      `results: ${path}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    if (sizes.some((size) => size.variants.some((variant) => variant.summary.failures > 0))) {
      process.stderr.write("bench: some runs failed (see FAILED above and the results file)\n");
      process.exitCode = 1;
    }
  } finally {
    await server.stop();
    await target.close();
    await rm(outputDirectory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
