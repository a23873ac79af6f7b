import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";
import { collectStdout, waitForExit } from "./child-process.ts";

/** What the numbers were measured on. */
export interface MachineInfo {
  cpuModel: string;
  /** What `nproc` says: the CPUs this process may use. */
  processors: number;
  memoryGibibytes: number;
  kernel: string;
  node: string;
  pgDump: string;
  gzip: string;
  postgresServer: string;
  /** `df -hT` of the directory the outputs go to. */
  disk: string;
  loadAverage: number[];
}

/** Runs a program and returns its stdout, or a note when it is missing or fails: machine details are never worth failing over. */
async function outputOf(executable: string, argumentList: string[], environment?: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(executable, argumentList, { stdio: ["ignore", "pipe", "pipe"], env: environment ?? process.env });
  const stdout = collectStdout(child);
  const exit = await waitForExit(executable, child);
  return exit.code === 0 ? stdout().trim() : `unknown (${executable} exited ${exit.code})`;
}

function cpuModel(): string {
  const fromCpuinfo = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1];
  return fromCpuinfo ?? cpus()[0]?.model ?? "unknown";
}

/** Collects the machine's details; `postgresEnvironment` reaches the server being dumped. */
export async function machineInfo(outputDirectory: string, postgresEnvironment: NodeJS.ProcessEnv): Promise<MachineInfo> {
  const [pgDump, gzip, postgresServer, disk] = await Promise.all([
    outputOf("pg_dump", ["--version"]),
    outputOf("gzip", ["--version"]).then((text) => text.split("\n")[0] ?? text),
    outputOf("psql", ["-X", "-A", "-t", "-c", "SELECT version()"], postgresEnvironment),
    outputOf("df", ["-hT", outputDirectory]),
  ]);
  return {
    cpuModel: cpuModel(),
    processors: availableParallelism(),
    memoryGibibytes: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    node: process.version,
    pgDump,
    gzip,
    postgresServer,
    disk,
    loadAverage: loadavg(),
  };
}
