import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { findExecutable } from "@hoard/test-harness";
import { assertSucceeded, type ChildExit, waitForExit } from "./child-process.ts";
import type { ProcessPeak } from "./process-memory.ts";
import { ProcessMemorySampler } from "./process-memory.ts";

/** One program of a pipeline. */
export interface PipelineStage {
  /** Name for messages and the report, e.g. `pg_dump`. */
  name: string;
  executable: string;
  arguments: string[];
}

/** What one measured pipeline took. */
export interface PipelineMeasurement {
  wallSeconds: number;
  /** Peak resident set and CPU time of each program, sampled from /proc. */
  processes: ProcessPeak[];
  outputBytes: number;
}

/** The plain tools the baselines run. */
export interface PlainTools {
  pgDump: string;
  gzip: string;
  /** The restore baselines' tools; undefined when not installed (a restore variant that needs one then fails). */
  pgRestore: string | undefined;
  psql: string | undefined;
  bzip2: string | undefined;
  lbzip2: string | undefined;
}

/** gzip's own default, pg_dump's for the custom format, and hoard's (`compressionLevel` in core's backup). */
export const defaultCompressionLevel = 6;

/** Finds pg_dump and gzip on PATH. */
export function findPlainTools(): PlainTools {
  const pgDump = findExecutable("pg_dump");
  const gzip = findExecutable("gzip");
  if (pgDump === undefined || gzip === undefined) throw new Error("pg_dump and gzip must be on PATH (postgresql-client, gzip)");
  return {
    pgDump,
    gzip,
    pgRestore: findExecutable("pg_restore"),
    psql: findExecutable("psql"),
    bzip2: findExecutable("bzip2"),
    lbzip2: findExecutable("lbzip2"),
  };
}

/** A tool the restore baselines need, or an error naming its package. */
export function requireTool(path: string | undefined, name: string, debianPackage: string): string {
  if (path === undefined) throw new Error(`${name} is not on PATH: install ${debianPackage}`);
  return path;
}

/** `pg_dump -Fc > file`: custom format compressed by pg_dump itself (zlib in the same process). */
export function customFormatDump(tools: PlainTools, level = defaultCompressionLevel): PipelineStage[] {
  return [{ name: "pg_dump", executable: tools.pgDump, arguments: ["--format=custom", `--compress=${level}`, "--no-password"] }];
}

/** `pg_dump | gzip > file`: plain SQL text compressed by gzip in a second process. */
export function plainSqlGzip(tools: PlainTools, level = defaultCompressionLevel): PipelineStage[] {
  return [
    { name: "pg_dump", executable: tools.pgDump, arguments: ["--no-password"] },
    { name: "gzip", executable: tools.gzip, arguments: [`-${level}`, "-c"] },
  ];
}

/** `pg_dump -Fc -Z0 | gzip > file`: exactly hoard's work (the driver's pg_dump arguments, then gzip) without Node in between. */
export function uncompressedCustomGzip(tools: PlainTools, level = defaultCompressionLevel): PipelineStage[] {
  return [
    { name: "pg_dump", executable: tools.pgDump, arguments: ["--format=custom", "--compress=0", "--no-password"] },
    { name: "gzip", executable: tools.gzip, arguments: [`-${level}`, "-c"] },
  ];
}

/** Where a pipeline reads from and writes to. */
export interface PipelineEnds {
  /** A file the first stage reads as its stdin; none: no stdin. */
  inputPath?: string;
  /** A file the last stage writes its stdout into (created, mode 0600); none: /dev/null. */
  outputPath?: string;
}

/**
 * Runs the stages as a pipeline, each stage's stdout going straight to the next one's stdin (no
 * shell, and no byte passes through this process: Node hands the pipe to the next child and stops
 * reading it), the first stage reading `inputPath` and the last writing into `outputPath`. The
 * connection comes from `environment` (PGHOST, PGDATABASE, ...).
 */
export async function runStages(
  stages: readonly PipelineStage[],
  environment: NodeJS.ProcessEnv,
  ends: PipelineEnds,
): Promise<Omit<PipelineMeasurement, "outputBytes">> {
  const output = ends.outputPath === undefined ? "ignore" : openSync(ends.outputPath, "w", 0o600);
  const input = ends.inputPath === undefined ? "ignore" : openSync(ends.inputPath, "r");
  const sampler = new ProcessMemorySampler();
  const started = performance.now();
  const exits: Promise<ChildExit>[] = [];
  try {
    let previous: ChildProcess | undefined;
    stages.forEach((stage, index) => {
      const last = index === stages.length - 1;
      const child = spawn(stage.executable, stage.arguments, {
        env: environment,
        stdio: [previous?.stdout ?? input, last ? output : "pipe", "pipe"],
      });
      // The next child has its own copy of the pipe now; closing ours keeps this process from reading it.
      previous?.stdout?.destroy();
      sampler.watch(child.pid);
      exits.push(waitForExit(stage.name, child));
      previous = child;
    });
  } catch (error) {
    sampler.stop();
    throw error;
  } finally {
    if (typeof output === "number") closeSync(output);
    if (typeof input === "number") closeSync(input);
  }
  const finished = await Promise.all(exits);
  const wallSeconds = (performance.now() - started) / 1000;
  const processes = sampler.stop();
  assertSucceeded(finished);
  return { wallSeconds, processes };
}

/** Runs the stages as a pipeline into `outputPath` (see runStages) and measures the output. */
export async function runPipeline(
  stages: readonly PipelineStage[],
  environment: NodeJS.ProcessEnv,
  outputPath: string,
): Promise<PipelineMeasurement> {
  const measured = await runStages(stages, environment, { outputPath });
  return { ...measured, outputBytes: (await stat(outputPath)).size };
}

/** Runs a pipeline and removes its output afterwards, whatever happens. */
export async function measurePipeline(
  stages: readonly PipelineStage[],
  environment: NodeJS.ProcessEnv,
  outputPath: string,
): Promise<PipelineMeasurement> {
  try {
    return await runPipeline(stages, environment, outputPath);
  } finally {
    await rm(outputPath, { force: true });
  }
}

/** Runs pg_dump once with its output counted and dropped: warms the page cache and gives the uncompressed dump size. */
export async function uncompressedDumpSize(tools: PlainTools, environment: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn(tools.pgDump, ["--format=custom", "--compress=0", "--no-password"], {
    env: environment,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let bytes = 0;
  child.stdout.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
  });
  assertSucceeded([await waitForExit("pg_dump", child)]);
  return bytes;
}
