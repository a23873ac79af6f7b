/**
 * Where hoard's stream mode spends its time besides pg_dump: compresses one uncompressed dump,
 * read from a pipe as hoard reads pg_dump, with the gzip program and with Node.js zlib in several
 * shapes (hoard's chain of streams, a bare gzip stream, other chunk sizes and levels), and prints
 * wall and CPU seconds of each. The input is `pg_dump -Fc -Z0` of a benchmark database, written to
 * a temporary file once, so the database's own cost is left out.
 *
 *   pnpm exec tsx bench/compression-throughput.ts [--size-mb 300] [--repeat 3]
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { PassThrough, type Readable, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { createGzip } from "node:zlib";
import { startPostgres } from "@hoard/test-harness";
import { assertSucceeded, waitForExit } from "./child-process.ts";
import { prepareBenchmarkDatabase } from "./generate-postgres.ts";
import { findPlainTools, runPipeline } from "./plain-pipelines.ts";

/** What one contender produced; `programCpuSeconds` for work done in another process, which process.cpuUsage() cannot see. */
interface Compressed {
  outputBytes: number;
  programCpuSeconds?: number;
}

/** One way to compress the input. */
interface Contender {
  name: string;
  /** Compresses what `cat input` writes to a pipe. */
  run(input: string): Promise<Compressed>;
}

/** What one contender took. */
interface Timing {
  name: string;
  wallSeconds: number;
  cpuSeconds: number;
  outputBytes: number;
}

const mebibyte = 1024 * 1024;

/** The input as a pipe, the way hoard gets pg_dump's stdout (64 KiB reads). */
function pipedInput(input: string): { stream: Readable; done: Promise<void> } {
  const child = spawn("cat", [input], { stdio: ["ignore", "pipe", "pipe"] });
  const done = waitForExit("cat", child).then((exit) => assertSucceeded([exit]));
  return { stream: child.stdout, done };
}

/** Counts the compressed bytes and drops them, as fast as a sink can. */
function countingSink(): { sink: Writable; bytes: () => number } {
  let bytes = 0;
  const sink = new PassThrough();
  sink.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
  });
  return { sink, bytes: () => bytes };
}

/** A Transform that only counts, like core's progress meter. */
function meter(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
  });
}

/** hoard's stream mode minus pg_dump and storage: stdout -> PassThrough (toolOutput) -> meter -> gzip -> PassThrough(1 MiB) -> file. */
function hoardShaped(name: string, options: { level: number; chunkSize?: number }): Contender {
  return {
    name,
    async run(input) {
      const { stream, done } = pipedInput(input);
      const toolOutput = new PassThrough();
      stream.pipe(toolOutput);
      const body = new PassThrough({ highWaterMark: mebibyte });
      const { sink, bytes } = countingSink();
      await Promise.all([pipeline(toolOutput, meter(), createGzip(options), body, sink), done]);
      return { outputBytes: bytes() };
    },
  };
}

/** A bare pipe -> gzip -> sink chain, to see what the extra streams cost. */
function bareNode(name: string, options: { level: number; chunkSize?: number }): Contender {
  return {
    name,
    async run(input) {
      const { stream, done } = pipedInput(input);
      const { sink, bytes } = countingSink();
      await Promise.all([pipeline(stream, createGzip(options), sink), done]);
      return { outputBytes: bytes() };
    },
  };
}

/** The gzip program reading the same pipe (its CPU is its own, not this process's). */
function gzipProgram(level: number): Contender {
  return {
    name: `gzip -${level} program`,
    async run(input) {
      const output = join(tmpdir(), `hoard-compression-${process.pid}.gz`);
      try {
        const measured = await runPipeline(
          [
            { name: "cat", executable: "cat", arguments: [input] },
            { name: "gzip", executable: findPlainTools().gzip, arguments: [`-${level}`, "-c"] },
          ],
          process.env,
          output,
        );
        const programCpuSeconds = measured.processes.find((measuredProcess) => measuredProcess.name === "gzip")?.cpuSeconds;
        return { outputBytes: measured.outputBytes, programCpuSeconds };
      } finally {
        await rm(output, { force: true });
      }
    },
  };
}

async function time(contender: Contender, input: string): Promise<Timing> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const compressed = await contender.run(input);
  const wallSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuSeconds = compressed.programCpuSeconds ?? (cpu.user + cpu.system) / 1e6;
  return { name: contender.name, wallSeconds, cpuSeconds, outputBytes: compressed.outputBytes };
}

/** Writes `pg_dump -Fc -Z0` of the benchmark database to a file and returns its path. */
async function dumpInput(sizeMegabytes: number, directory: string): Promise<string> {
  const server = await startPostgres();
  try {
    const database = await prepareBenchmarkDatabase({ server, sizeMegabytes });
    const path = join(directory, "input.dump");
    const output = openSync(path, "w", 0o600);
    const child = spawn(findPlainTools().pgDump, ["--format=custom", "--compress=0", "--no-password"], {
      env: server.clientEnvironment(database.name),
      stdio: ["ignore", output, "pipe"],
    });
    closeSync(output);
    assertSucceeded([await waitForExit("pg_dump", child)]);
    return path;
  } finally {
    await server.stop();
  }
}

const contenders: Contender[] = [
  gzipProgram(6),
  hoardShaped("node: hoard's chain, level 6, chunkSize 16 KiB (today)", { level: 6 }),
  bareNode("node: pipe -> gzip only, level 6, chunkSize 16 KiB", { level: 6 }),
  hoardShaped("node: hoard's chain, level 6, chunkSize 64 KiB", { level: 6, chunkSize: 64 * 1024 }),
  gzipProgram(1),
  hoardShaped("node: hoard's chain, level 1, chunkSize 16 KiB", { level: 1 }),
  hoardShaped("node: hoard's chain, level 1, chunkSize 64 KiB", { level: 1, chunkSize: 64 * 1024 }),
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { "size-mb": { type: "string", default: "300" }, repeat: { type: "string", default: "3" } },
    strict: true,
  });
  const directory = await mkdtemp(join(tmpdir(), "hoard-compression-"));
  try {
    const input = await dumpInput(Number(values["size-mb"]), directory);
    const inputBytes = (await stat(input)).size;
    process.stderr.write(`input: ${(inputBytes / mebibyte).toFixed(1)} MiB of pg_dump -Fc -Z0\n`);
    const timings = new Map<string, Timing[]>();
    for (let round = 0; round < Number(values.repeat); round++) {
      for (const contender of contenders) {
        const timing = await time(contender, input);
        timings.set(contender.name, [...(timings.get(contender.name) ?? []), timing]);
        process.stderr.write(`  ${timing.name}: ${timing.wallSeconds.toFixed(2)} s wall, ${timing.cpuSeconds.toFixed(2)} s CPU\n`);
      }
    }
    process.stdout.write(`${formatTable(inputBytes, timings)}\n`);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Median wall and CPU per contender, with throughput over the uncompressed input. */
function formatTable(inputBytes: number, timings: Map<string, Timing[]>): string {
  const median = (values: number[]) => [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
  const lines = ["| Compressor | Wall s | CPU s | MiB/s in | Output MiB |", "| --- | --- | --- | --- | --- |"];
  for (const [name, runs] of timings) {
    const wall = median(runs.map((run) => run.wallSeconds));
    const cpu = median(runs.map((run) => run.cpuSeconds));
    const output = median(runs.map((run) => run.outputBytes));
    lines.push(
      `| ${name} | ${wall.toFixed(2)} | ${cpu.toFixed(2)} | ${(inputBytes / mebibyte / wall).toFixed(1)} | ${(output / mebibyte).toFixed(1)} |`,
    );
  }
  return lines.join("\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`compression-throughput: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
