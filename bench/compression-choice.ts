/**
 * gzip against zstd for hoard's default compression: compresses one uncompressed PostgreSQL dump
 * (`pg_dump -Fc -Z0` of a benchmark database, read from a pipe as hoard reads pg_dump) with the
 * compressor hoard's backup uses (core's `compressor`: zlib's gzip; zlib's zstd where this Node.js
 * has it, else the zstd program) at several levels, then decompresses each result with hoard's
 * decompressor, and prints wall and CPU seconds and sizes. The plain gzip and zstd programs run
 * beside them for reference.
 *
 *   pnpm exec tsx bench/compression-choice.ts [--size-mb 300] [--repeat 3]
 *   PATH=.cache/node/24/bin:$PATH pnpm exec tsx bench/compression-choice.ts   (Node.js's own zstd)
 *   PATH=.cache/node/24/bin:$PATH pnpm exec tsx bench/compression-choice.ts --grid
 *
 * `--grid` (Node.js 22.15+): zstd parameter sets on one thread instead, each block of 1 MiB
 * compressed as one frame by zlib's one-shot zstdCompressSync, as hoard's compressor cuts the
 * stream: CPU seconds of this process and the output's size, the numbers behind hoard's default
 * (level 3 with a minimum match of 6) in docs/benchmarks.md.
 */
import { spawn } from "node:child_process";
import { closeSync, createReadStream, createWriteStream, openSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import * as zlib from "node:zlib";
import { startPostgres } from "@hoard/test-harness";
import { compressor, decompressor, zstdCompressorKind } from "../packages/core/src/codecs.ts";
import { assertSucceeded, waitForExit } from "./child-process.ts";
import { prepareBenchmarkDatabase } from "./generate-postgres.ts";
import { findPlainTools } from "./plain-pipelines.ts";

const mebibyte = 1024 * 1024;

/** One way to compress, and the matching way back. */
interface Contender {
  name: string;
  format: "gzip" | "zstd";
  level: number;
  /** zstd's minimum match, when not the level's own. */
  minMatch?: number;
  /** hoard's own streams, or the program (for reference). */
  kind: "hoard" | "program";
}

interface Timing {
  compressSeconds: number;
  compressCpuSeconds: number;
  outputBytes: number;
  decompressSeconds: number;
  decompressCpuSeconds: number;
}

/** Runs a program from `input` to `output` and returns its wall seconds (its CPU is not this process's: left out). */
async function runProgram(program: string, args: string[], input: string, output: string): Promise<{ wall: number; cpu: number }> {
  const started = performance.now();
  const inputFile = openSync(input, "r");
  const outputFile = openSync(output, "w", 0o600);
  const child = spawn(program, args, { stdio: [inputFile, outputFile, "pipe"] });
  closeSync(inputFile);
  closeSync(outputFile);
  assertSucceeded([await waitForExit(program, child)]);
  return { wall: (performance.now() - started) / 1000, cpu: Number.NaN };
}

/** The input through a `cat` pipe, the way hoard gets pg_dump's stdout. */
async function runHoard(stream: () => NodeJS.ReadWriteStream, input: string, output: string): Promise<{ wall: number; cpu: number }> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const cat = spawn("cat", [input], { stdio: ["ignore", "pipe", "pipe"] });
  const done = waitForExit("cat", cat).then((exit) => assertSucceeded([exit]));
  await Promise.all([pipeline(cat.stdout, stream(), createWriteStream(output, { mode: 0o600 })), done]);
  const wall = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { wall, cpu: (cpu.user + cpu.system) / 1e6 };
}

async function measure(contender: Contender, input: string, directory: string): Promise<Timing> {
  const compressed = join(directory, `out.${contender.format}`);
  const restored = join(directory, "restored");
  const program = contender.format === "gzip" ? findPlainTools().gzip : "zstd";
  const compress =
    contender.kind === "hoard"
      ? await runHoard(
          () =>
            compressor(
              contender.format,
              contender.level,
              undefined,
              contender.minMatch === undefined ? {} : { minMatch: contender.minMatch },
            ),
          input,
          compressed,
        )
      : await runProgram(
          program,
          [
            `-${contender.level}`,
            ...(contender.minMatch === undefined ? [] : [`--zstd=minMatch=${contender.minMatch}`]),
            "-c",
            ...(contender.format === "zstd" ? ["-q"] : []),
          ],
          input,
          compressed,
        );
  const outputBytes = (await stat(compressed)).size;
  let decompress: { wall: number; cpu: number };
  if (contender.kind === "hoard") {
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await pipeline(
      createReadStream(compressed),
      decompressor(contender.format === "gzip" ? "gz" : "zst"),
      new Writable({ write: (_chunk, _encoding, callback) => callback() }),
    );
    const cpu = process.cpuUsage(cpuBefore);
    decompress = { wall: (performance.now() - started) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
  } else {
    decompress = await runProgram(program, ["-d", "-c", ...(contender.format === "zstd" ? ["-q"] : [])], compressed, restored);
  }
  await rm(compressed, { force: true });
  await rm(restored, { force: true });
  return {
    compressSeconds: compress.wall,
    compressCpuSeconds: compress.cpu,
    outputBytes,
    decompressSeconds: decompress.wall,
    decompressCpuSeconds: decompress.cpu,
  };
}

/** Writes `pg_dump -Fc -Z0` of the benchmark database to a file and returns its path. */
async function dumpInput(sizeMegabytes: number, directory: string): Promise<string> {
  const server = await startPostgres();
  try {
    const database = await prepareBenchmarkDatabase({ server, sizeMegabytes, log: (line) => process.stderr.write(`${line}\n`) });
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
  { name: "hoard gzip 1", format: "gzip", level: 1, kind: "hoard" },
  { name: "hoard gzip 6", format: "gzip", level: 6, kind: "hoard" },
  { name: "hoard zstd 1", format: "zstd", level: 1, kind: "hoard" },
  { name: "hoard zstd 3", format: "zstd", level: 3, kind: "hoard" },
  { name: "hoard zstd 6", format: "zstd", level: 6, kind: "hoard" },
  { name: "hoard zstd 3, min match 6 (default)", format: "zstd", level: 3, minMatch: 6, kind: "hoard" },
  { name: "gzip -6 program", format: "gzip", level: 6, kind: "program" },
  { name: "zstd -3 program", format: "zstd", level: 3, kind: "program" },
  { name: "zstd -3 --zstd=minMatch=6 program", format: "zstd", level: 3, minMatch: 6, kind: "program" },
];

function median(values: number[]): number {
  return [...values].sort((left, right) => left - right)[Math.floor(values.length / 2)] as number;
}

/** zstd parameter sets for `--grid`: the levels around the default, and the minimum match on either side of theirs. */
const gridSets: Array<{ name: string; level: number; minMatch?: number }> = [
  { name: "zstd 3", level: 3 },
  { name: "zstd 3, min match 4", level: 3, minMatch: 4 },
  { name: "zstd 3, min match 6 (hoard's default)", level: 3, minMatch: 6 },
  { name: "zstd 3, min match 7", level: 3, minMatch: 7 },
  { name: "zstd 4", level: 4 },
  { name: "zstd 4, min match 6", level: 4, minMatch: 6 },
  { name: "zstd 5", level: 5 },
  { name: "zstd 6", level: 6 },
  { name: "zstd 6, min match 6", level: 6, minMatch: 6 },
];

/** `--grid`: each parameter set over the whole input in 1 MiB frames, on this thread. */
async function grid(input: string, repeat: number): Promise<string[]> {
  const native = zlib as unknown as {
    zstdCompressSync?(input: Buffer, options: { params: Record<number, number> }): Buffer;
    constants: Record<string, number>;
  };
  const compress = native.zstdCompressSync;
  if (!compress) throw new Error("--grid needs Node.js 22.15 or later (zlib's zstd)");
  const data = await readFile(input);
  const constant = (name: string) => native.constants[name] as number;
  const lines = [
    `Node.js ${process.version}, zlib's zstd on one thread, 1 MiB frames; input ${(data.length / mebibyte).toFixed(1)} MiB; median of ${repeat}`,
    "",
    "| Parameters | CPU s | Output bytes |",
    "| --- | --- | --- |",
  ];
  for (const set of gridSets) {
    const params = {
      [constant("ZSTD_c_compressionLevel")]: set.level,
      [constant("ZSTD_c_checksumFlag")]: 1,
      ...(set.minMatch !== undefined && { [constant("ZSTD_c_minMatch")]: set.minMatch }),
    };
    const seconds: number[] = [];
    let bytes = 0;
    for (let round = 0; round < repeat; round++) {
      bytes = 0;
      const before = process.cpuUsage();
      for (let offset = 0; offset < data.length; offset += mebibyte)
        bytes += compress(data.subarray(offset, offset + mebibyte), { params }).length;
      const used = process.cpuUsage(before);
      seconds.push((used.user + used.system) / 1e6);
    }
    process.stderr.write(`  ${set.name}: ${median(seconds).toFixed(2)} s, ${bytes} bytes\n`);
    lines.push(`| ${set.name} | ${median(seconds).toFixed(2)} | ${bytes.toLocaleString("en")} |`);
  }
  return lines;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "size-mb": { type: "string", default: "300" },
      repeat: { type: "string", default: "3" },
      grid: { type: "boolean", default: false },
    },
    strict: true,
  });
  const directory = await mkdtemp(join(tmpdir(), "hoard-compression-choice-"));
  try {
    const input = await dumpInput(Number(values["size-mb"]), directory);
    if (values.grid) {
      process.stdout.write(`${(await grid(input, Number(values.repeat))).join("\n")}\n`);
      return;
    }
    const inputBytes = (await stat(input)).size;
    process.stderr.write(
      `input: ${(inputBytes / mebibyte).toFixed(1)} MiB of pg_dump -Fc -Z0; Node.js ${process.version}, hoard's zstd: ${zstdCompressorKind()}\n`,
    );
    const timings = new Map<string, Timing[]>();
    for (let round = 0; round < Number(values.repeat); round++) {
      for (const contender of contenders) {
        const timing = await measure(contender, input, directory);
        timings.set(contender.name, [...(timings.get(contender.name) ?? []), timing]);
        process.stderr.write(
          `  ${contender.name}: ${timing.compressSeconds.toFixed(2)} s, ${(timing.outputBytes / mebibyte).toFixed(1)} MiB; back in ${timing.decompressSeconds.toFixed(2)} s\n`,
        );
      }
    }
    const lines = [
      `Node.js ${process.version}, hoard's zstd: ${zstdCompressorKind()}; input ${(inputBytes / mebibyte).toFixed(1)} MiB; median of ${values.repeat}`,
      "",
      "| Compressor | Compress wall s | CPU s (hoard's process) | MiB/s in | Output MiB | Ratio | Decompress wall s |",
      "| --- | --- | --- | --- | --- | --- | --- |",
    ];
    for (const contender of contenders) {
      const runs = timings.get(contender.name) ?? [];
      const wall = median(runs.map((run) => run.compressSeconds));
      const output = median(runs.map((run) => run.outputBytes));
      const cpu = contender.kind === "hoard" ? median(runs.map((run) => run.compressCpuSeconds)).toFixed(2) : "-";
      lines.push(
        `| ${contender.name} | ${wall.toFixed(2)} | ${cpu} | ${(inputBytes / mebibyte / wall).toFixed(1)} | ${(output / mebibyte).toFixed(1)} | ${(inputBytes / output).toFixed(2)} | ${median(runs.map((run) => run.decompressSeconds)).toFixed(2)} |`,
      );
    }
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`compression-choice: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
