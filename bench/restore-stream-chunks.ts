/**
 * Where a streamed restore loses time against `pg_restore` reading a file: the same data restored
 * four ways into a fresh database, rounds interleaved:
 *
 *   pg_restore file                      pg_restore --single-transaction of a pg_dump -Fc file (the baseline)
 *   gzip -dc | pg_restore                hoard's .dump.gz through a pipe, no Node.js
 *   node gunzip 16 KiB -> pg_restore     read, gunzip (zlib's default chunkSize, what hoard's restore uses) and pipe in Node.js
 *   node gunzip 256 KiB -> pg_restore    the same with chunkSize 256 KiB
 *
 * For each: the wall time, pg_restore's CPU time and context switches (voluntary: it waited on
 * its input), and the Node.js CPU of this process (the streaming ones: reading, inflating, piping).
 *
 *   pnpm exec tsx bench/restore-stream-chunks.ts [--size-mb 300] [--repeat 2] [--quiet-wait 30]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createReadStream, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { createGunzip } from "node:zlib";
import { startPostgres } from "@hoard/test-harness";
import { assertSucceeded, waitForExit } from "./child-process.ts";
import { prepareBenchmarkDatabase } from "./generate-postgres.ts";
import { waitForQuietMachine } from "./machine-quiet.ts";
import { findPlainTools, requireTool } from "./plain-pipelines.ts";
import { checkRestored, dropRestoreDatabase, freshDatabase, RestoreInputs, restoreDatabaseName } from "./restore.ts";

/** Context switches and CPU seconds of a process, from /proc; undefined once it is gone. */
function processCounters(pid: number): { voluntary: number; involuntary: number; cpuSeconds: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      voluntary: Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1]),
      involuntary: Number(/^nonvoluntary_ctxt_switches:\s+(\d+)$/m.exec(status)?.[1]),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100,
    };
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "size-mb": { type: "string", default: "300" },
      repeat: { type: "string", default: "2" },
      "quiet-wait": { type: "string", default: "30" },
    },
    strict: true,
  });
  const server = await startPostgres();
  const directory = await mkdtemp(join(tmpdir(), "hoard-restore-chunks-"));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const tools = findPlainTools();
  const pgRestore = requireTool(tools.pgRestore, "pg_restore", "postgresql-client");
  try {
    const database = await prepareBenchmarkDatabase({ server, sizeMegabytes: Number(values["size-mb"]), log });
    const inputs = new RestoreInputs({ directory, server, sourceDatabase: database.name, tools, jobs: 2, log });
    const backup = (await inputs.get("hoard-stream")).path;
    if (!backup.endsWith(".gz")) throw new Error(`hoard's default backup is ${backup}, not gzip: this experiment inflates gzip`);
    const custom = (await inputs.get("pg-custom")).path;
    const environment = server.clientEnvironment(restoreDatabaseName);
    const restoreArguments = ["--no-password", "--exit-on-error", "--single-transaction", `--dbname=${restoreDatabaseName}`];
    const streamed = (chunkSize: number) => (): ChildProcess => {
      const child = spawn(pgRestore, restoreArguments, { env: environment, stdio: ["pipe", "ignore", "pipe"] });
      if (child.stdin === null) throw new Error("pg_restore: no stdin");
      pipeline(createReadStream(backup, { highWaterMark: 1024 * 1024 }), createGunzip({ chunkSize }), child.stdin).catch(() => {});
      return child;
    };
    const variants: [string, () => ChildProcess][] = [
      ["pg_restore file", () => spawn(pgRestore, [...restoreArguments, custom], { env: environment, stdio: ["ignore", "ignore", "pipe"] })],
      [
        "gzip -dc | pg_restore",
        () => {
          const gzip = spawn(tools.gzip, ["-dc", backup], { stdio: ["ignore", "pipe", "ignore"] });
          const child = spawn(pgRestore, restoreArguments, { env: environment, stdio: [gzip.stdout, "ignore", "pipe"] });
          gzip.stdout.destroy();
          return child;
        },
      ],
      ["node gunzip 16 KiB -> pg_restore", streamed(16 * 1024)],
      ["node gunzip 256 KiB -> pg_restore", streamed(256 * 1024)],
    ];
    process.stdout.write(
      "| Round | Variant | Wall s | pg_restore CPU s | pg_restore context switches, voluntary / involuntary | Node.js CPU s (this process) | machine busy before |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for (let round = 1; round <= Number(values.repeat); round++) {
      for (const [name, start] of variants) {
        const quiet = await waitForQuietMachine({ timeoutSeconds: Number(values["quiet-wait"]) });
        await freshDatabase(server);
        const cpuBefore = process.cpuUsage();
        const started = performance.now();
        const child = start();
        let last = { voluntary: 0, involuntary: 0, cpuSeconds: 0 };
        const timer = setInterval(() => {
          last = (child.pid === undefined ? undefined : processCounters(child.pid)) ?? last;
        }, 20);
        const exit = await waitForExit(name, child);
        clearInterval(timer);
        const wall = (performance.now() - started) / 1000;
        const cpu = process.cpuUsage(cpuBefore);
        assertSucceeded([exit]);
        await checkRestored({ server, inputs });
        process.stdout.write(
          `| ${round} | ${name.replaceAll("|", "\\|")} | ${wall.toFixed(2)} | ${last.cpuSeconds.toFixed(1)} | ${last.voluntary} / ${last.involuntary} | ${((cpu.user + cpu.system) / 1e6).toFixed(1)} | ${(quiet.busyFraction * 100).toFixed(0)}% |\n`,
        );
      }
    }
  } finally {
    await dropRestoreDatabase(server).catch(() => {});
    await rm(directory, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`restore-stream-chunks: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
