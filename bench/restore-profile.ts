/**
 * Where a hoard restore's time goes, next to the plain tool's: runs `hoard restore` under strace
 * (only execve and exit_group are traced, filtered in the kernel with --seccomp-bpf, so the
 * restore itself runs at full speed) and prints every program hoard started, when, and for how
 * long: Node.js and CLI start-up until the first program, the checks before the restore (tool
 * versions, the server's version, the empty database), the restoring tool itself, and what
 * follows its exit. Then the plain counterpart restores the same data, timed alone, and
 * `hoard --version` is timed for Node.js and the CLI's start-up.
 *
 *   pnpm exec tsx bench/restore-profile.ts [--size-mb 300] [--input hoard-stream|hoard-jobs|sql-bz2]
 *                                          [--repeat 3] [--jobs 2] [--quiet-wait 60]
 *
 * Needs strace, the built CLI (pnpm build) and the benchmark database (bench/generate-postgres.ts
 * makes it, bench/run.ts reuses it); the restore goes into `hoard_bench_restore`, dropped after.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { findExecutable, startPostgres } from "@hoard/test-harness";
import { assertSucceeded, waitForExit } from "./child-process.ts";
import { prepareBenchmarkDatabase } from "./generate-postgres.ts";
import { cliScript } from "./hoard-runner.ts";
import { waitForQuietMachine } from "./machine-quiet.ts";
import { findPlainTools } from "./plain-pipelines.ts";
import {
  checkRestored,
  dropRestoreDatabase,
  freshDatabase,
  type RestoreInputKind,
  RestoreInputs,
  restoreDatabaseName,
  restoreVariants,
} from "./restore.ts";

/** One program hoard started, from the trace. */
interface TracedProgram {
  pid: number;
  program: string;
  arguments: string;
  startSeconds: number;
  endSeconds: number | undefined;
}

/** The restore variants (hoard's and the plain one) for each input. */
const pairs: Record<string, { hoard: string; plain: string }> = {
  "hoard-stream": { hoard: "restore-hoard", plain: "restore-pg-restore" },
  "hoard-jobs": { hoard: "restore-hoard-jobs", plain: "restore-pg-restore-jobs" },
  "sql-bz2": { hoard: "restore-hoard-bz2", plain: "restore-bzip2-psql" },
};

/** Parses `strace -f -ttt -qq -v -s 200 -e trace=execve,exit_group` output into programs with start and end times, relative to the first execve. */
function parseTrace(text: string): TracedProgram[] {
  const programs = new Map<number, TracedProgram>();
  let origin: number | undefined;
  for (const line of text.split("\n")) {
    const match = /^(\d+)\s+(\d+\.\d+)\s+(execve|exit_group)\((.*)$/.exec(line);
    if (match === null) continue;
    const pid = Number(match[1]);
    const time = Number(match[2]);
    origin ??= time;
    const seconds = time - origin;
    if (match[3] === "execve") {
      if (/= -1 /.test(line)) continue;
      const program = basename(/^"([^"]*)"/.exec(match[4] ?? "")?.[1] ?? "?");
      const argv = /\[(.*?)\]/.exec(match[4] ?? "")?.[1] ?? "";
      const args = argv
        .split(/",\s*"/)
        .slice(1)
        .map((argument) => argument.replaceAll('"', "").replace(/postgres(ql)?:\/\/\S*/, "<database URL>"))
        .join(" ");
      programs.set(pid, { pid, program, arguments: args.slice(0, 90), startSeconds: seconds, endSeconds: undefined });
    } else {
      const program = programs.get(pid);
      if (program !== undefined) program.endSeconds = seconds;
    }
  }
  return [...programs.values()].sort((left, right) => left.startSeconds - right.startSeconds);
}

async function timed(executable: string, args: string[], environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  const started = performance.now();
  const child = spawn(executable, args, { env: environment, stdio: ["ignore", "ignore", "pipe"] });
  assertSucceeded([await waitForExit(basename(executable), child)]);
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "size-mb": { type: "string", default: "300" },
      input: { type: "string", default: "hoard-stream" },
      repeat: { type: "string", default: "3" },
      jobs: { type: "string", default: "2" },
      "quiet-wait": { type: "string", default: "60" },
    },
    strict: true,
  });
  const pair = pairs[values.input];
  if (pair === undefined) throw new Error(`--input takes ${Object.keys(pairs).join(", ")}`);
  const strace = findExecutable("strace");
  if (strace === undefined) throw new Error("strace is not on PATH (Debian package strace)");
  const jobs = Number(values.jobs);
  const repeat = Number(values.repeat);
  const quietWait = Number(values["quiet-wait"]);
  const sizeMegabytes = Number(values["size-mb"]);
  const variants = restoreVariants(jobs);
  const plain = variants.find((variant) => variant.id === pair.plain);
  if (plain === undefined) throw new Error(`no variant ${pair.plain}`);
  const server = await startPostgres();
  const directory = await mkdtemp(join(tmpdir(), "hoard-restore-profile-"));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const tools = findPlainTools();
  try {
    const database = await prepareBenchmarkDatabase({ server, sizeMegabytes, log });
    const inputs = new RestoreInputs({ directory, server, sourceDatabase: database.name, tools, jobs, log });
    const input = await inputs.get(values.input as RestoreInputKind);
    const startup: number[] = [];
    for (let round = 1; round <= repeat; round++) {
      const quiet = await waitForQuietMachine({ timeoutSeconds: quietWait });
      startup.push(await timed(process.execPath, [cliScript, "--version"]));
      await freshDatabase(server);
      const traceFile = join(directory, `trace-${round}.txt`);
      const hoardArguments = ["restore", input.path, server.databaseUrl(restoreDatabaseName)];
      if (values.input === "hoard-jobs") hoardArguments.push("--pg-jobs", String(jobs));
      const straceArguments = ["--seccomp-bpf", "-f", "-ttt", "-qq", "-v", "-s", "200", "-e", "trace=execve,exit_group", "-o", traceFile];
      const hoardWall = await timed(strace, [...straceArguments, process.execPath, cliScript, ...hoardArguments], {
        ...process.env,
        TMPDIR: directory,
      });
      await checkRestored({ server, inputs });
      const programs = parseTrace(await readFile(traceFile, "utf8"));
      await freshDatabase(server);
      const plainMeasured = await plain.run({ server, tools, inputs, jobs, temporaryDirectory: directory, runName: `profile-${round}` });
      process.stdout.write(
        `\nround ${round} (machine ${(quiet.busyFraction * 100).toFixed(0)}% busy before): hoard ${hoardWall.toFixed(2)} s under strace, ${plain.label} ${plainMeasured.wallSeconds.toFixed(2)} s\n`,
      );
      process.stdout.write("| start s | end s | seconds | program |\n| --- | --- | --- | --- |\n");
      for (const program of programs) {
        const end = program.endSeconds;
        process.stdout.write(
          `| ${program.startSeconds.toFixed(3)} | ${end === undefined ? "-" : end.toFixed(3)} | ${end === undefined ? "-" : (end - program.startSeconds).toFixed(3)} | ${program.program} ${program.arguments} |\n`,
        );
      }
    }
    process.stdout.write(`\nhoard --version (Node.js and CLI start-up): ${startup.map((seconds) => seconds.toFixed(2)).join(", ")} s\n`);
  } finally {
    await dropRestoreDatabase(server).catch(() => {});
    await rm(directory, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`restore-profile: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
