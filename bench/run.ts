/**
 * hoard's backup benchmark: for each database size, hoard in stream and file mode against the
 * plain tools, with wall time, peak memory, CPU time and output size, and the issue's targets.
 *
 *   pnpm bench                                   (builds, then runs with the defaults)
 *   pnpm exec tsx bench/run.ts --sizes 300,1024 --repeat 3
 *
 * Options:
 *   --sizes 300,1024          database sizes on disk, MiB (default 300); each database is made once
 *                             by bench/generate-postgres.ts and reused by later runs
 *   --repeat N                runs of each variant per size, interleaved (default 3); the table
 *                             shows the median wall time and the highest peak memory
 *   --fresh                   rebuild the databases
 *   --runner auto|cli|library hoard's CLI (apps/cli/dist/cli.js) or bench/library-backup.ts; auto
 *                             (default) takes the CLI when it is built
 *   --variants a,b            only these variant ids (default all: hoard-stream, hoard-stream-age,
 *                             hoard-stream-zstd, hoard-file, pg-dump-custom, pg-dump-gzip,
 *                             pg-dump-raw-gzip); hoard-stream-age encrypts to a key made by
 *                             age-keygen for the run; hoard-stream-zstd is --compression zstd
 *   --compression-level N     hoard's gzip level (default: hoard's, 6)
 *   --plain-compression-level N  the plain pipelines' level, pg_dump -Z N and gzip -N (default 6,
 *                             both tools' own default, which is what the wall-time target compares with)
 *   --hoard-arg=ARG           one more argument for `hoard backup` (repeatable, CLI runner only), e.g.
 *                             --hoard-arg=--dump-option=--compress=6 --compression-level 0 to let
 *                             pg_dump compress and hoard only store
 *   --storage local           where hoard stores backups (default local: a temporary directory)
 *   --storage-url URL         store to an existing storage instead, e.g. s3://bench/runs ...
 *   --storage-arg=ARG         ... with the options hoard needs for it (repeatable), e.g.
 *                             --storage-arg=--s3-endpoint=http://127.0.0.1:7070
 *   --work-directory DIR      where outputs and temporary files go (default the system's)
 *   --quiet-wait SECONDS      before each run, wait up to this long for the machine's CPUs to be
 *                             under 20% busy (others' builds skew wall times; default 60, 0: no wait);
 *                             the busy share seen is kept with each run
 *
 * Memory: hoard's Node.js process reports its own ru_maxrss when it exits (bench/rss-reporter.mjs,
 * loaded with `node --import`); pg_dump and gzip have no such hook, so their VmHWM is read from
 * /proc/<pid>/status every 20 ms (see bench/process-memory.ts). Results: a markdown table on
 * stdout, everything in bench/.data/results-<timestamp>.json.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type PostgresServer, startPostgres } from "@hoard/test-harness";
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
import { canSampleProcessMemory, cpuOf, peakOf } from "./process-memory.ts";
import type { Sample, SizeResult, VariantResult } from "./report.ts";
import { checkTargets, databaseLines, markdownTable, summarize, targetLines } from "./report.ts";
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
}

/** One thing to measure. */
interface Variant {
  id: string;
  label: string;
  kind: "hoard" | "plain";
  /** Counts as a plain pipeline for the wall-time target. */
  baseline: boolean;
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
    },
    strict: true,
  });
  const sizes = values.sizes.split(",").map((size) => Number(size.trim()));
  if (sizes.some((size) => !Number.isInteger(size) || size < 10)) throw new Error(`--sizes takes whole MiB of at least 10, e.g. 300,1024`);
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error("--repeat takes a whole number of at least 1");
  if (!["auto", "cli", "library"].includes(values.runner)) throw new Error("--runner takes auto, cli or library");
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
  };
}

/** A gzip level from the command line: 0 (store only, hoard) or `lowest` (1 for the gzip program) to 9. */
function parseLevel(text: string | undefined, name: string, lowest: number): number | undefined {
  if (text === undefined) return undefined;
  const level = Number(text);
  if (!Number.isInteger(level) || level < lowest || level > 9) throw new Error(`${name} takes ${lowest} to 9`);
  return level;
}

function hoardVariant(mode: "stream" | "file", encrypted = false, compression?: "zstd"): Variant {
  const suffix = encrypted ? "-age" : compression ? `-${compression}` : "";
  return {
    id: `hoard-${mode}${suffix}`,
    label: `hoard ${mode}${encrypted ? ", age-encrypted" : ""}${compression ? `, ${compression} (its default level)` : ""}`,
    kind: "hoard",
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
        // --compression-level is a gzip level: the zstd variant keeps zstd's default.
        ...(compression ? { compression } : { compressionLevel: context.compressionLevel }),
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
        processes: measured.processes,
      };
    },
  };
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
        processes: measured.processes,
      };
    },
  };
}

/** Every variant, in the order of the table. */
const allVariants: Variant[] = [
  hoardVariant("stream"),
  hoardVariant("stream", true),
  hoardVariant("stream", false, "zstd"),
  hoardVariant("file"),
  plainVariant("pg-dump-custom", "pg_dump -Fc > file", true, customFormatDump),
  plainVariant("pg-dump-gzip", "pg_dump | gzip > file", true, plainSqlGzip),
  plainVariant("pg-dump-raw-gzip", "pg_dump -Fc -Z0 | gzip > file (reference)", false, uncompressedCustomGzip),
];

function selectVariants(ids: string[] | undefined): Variant[] {
  if (ids === undefined) return allVariants;
  const unknown = ids.filter((id) => !allVariants.some((variant) => variant.id === id));
  if (unknown.length > 0)
    throw new Error(`unknown variants ${unknown.join(", ")}: use ${allVariants.map((variant) => variant.id).join(", ")}`);
  return allVariants.filter((variant) => ids.includes(variant.id));
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
  shared: Omit<RunContext, "databaseUrl" | "environment" | "runName">,
  variants: Variant[],
): Promise<SizeResult> {
  const log = (line: string) => process.stderr.write(`[${sizeMegabytes} MiB] ${line}\n`);
  const database = await prepareBenchmarkDatabase({ server, sizeMegabytes, fresh: options.fresh, log });
  const environment = server.clientEnvironment(database.name);
  log("warming up: one pg_dump -Fc -Z0 to count the uncompressed dump and fill the page cache");
  const uncompressedDumpBytes = await uncompressedDumpSize(shared.tools, environment);
  const loadAverageBefore = loadavg();
  const samples = new Map<string, Sample[]>(variants.map((variant) => [variant.id, []]));
  for (let round = 0; round < options.repeat; round++) {
    for (const variant of roundOrder(variants, round)) {
      const context: RunContext = { ...shared, databaseUrl: database.url, environment, runName: `bench-${sizeMegabytes}mb-r${round + 1}` };
      const sample = await runOnce(variant, context, options.quietWaitSeconds);
      samples.get(variant.id)?.push(sample);
      log(`round ${round + 1}/${options.repeat} ${variant.label}: ${describeSample(sample)}`);
      await shared.target.clear();
    }
  }
  const results: VariantResult[] = variants.map((variant) => {
    const variantSamples = samples.get(variant.id) ?? [];
    return {
      id: variant.id,
      label: variant.label,
      kind: variant.kind,
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

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const variants = selectVariants(options.variants);
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
    };
    const sizes: SizeResult[] = [];
    for (const size of options.sizes) sizes.push(await measureSize(size, server, options, shared, variants));
    const path = await writeResults(started, {
      started: started.toISOString(),
      options,
      runner: runner.kind,
      storage: target.name,
      machine,
      sizes,
    });
    const lines = [
      describeRunner(runner),
      `storage: ${target.name}; runs per variant: ${options.repeat}; gzip level: hoard ${options.compressionLevel ?? 6}, plain ${options.plainCompressionLevel ?? 6}${options.hoardArguments.length > 0 ? `; hoard arguments: ${options.hoardArguments.join(" ")}` : ""}; PostgreSQL server: ${server.origin}`,
      "",
      ...machineLines(machine),
      ...databaseLines(sizes),
      "",
      markdownTable(sizes),
      "",
      ...targetLines(sizes),
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
