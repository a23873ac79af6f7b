import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { performance } from "node:perf_hooks";

/** The highest resident set size one process reached while it was sampled. */
export interface ProcessPeak {
  pid: number;
  /** The process name from /proc/<pid>/comm as last seen (after any exec, e.g. pg_wrapper -> pg_dump). */
  name: string;
  /** The program it runs; when it changes (an exec), the peak starts over, so a wrapper script's memory is not counted. */
  executable: string;
  /** VmHWM in KiB: the kernel's own high-water mark of the resident set, so sampling misses no peak, only growth in the last interval before exit. */
  peakKilobytes: number;
  /** User plus system CPU seconds as last sampled (up to one interval short of the total). */
  cpuSeconds: number;
  /**
   * Seconds from the sampler's creation to the first time this process was seen (a descendant is
   * found up to one discovery interval late): when a tool started inside hoard's run.
   */
  firstSeenSeconds: number;
  /** Seconds from the sampler's creation to the last sample that found the process alive (up to one sample interval before its exit). */
  lastSeenSeconds: number;
}

/** How often to sample. */
export interface SamplerOptions {
  /** Milliseconds between two reads of VmHWM for each known process. @default 20 */
  sampleIntervalMs?: number;
  /** Milliseconds between two scans of /proc for new descendants of the root. @default 200 */
  discoveryIntervalMs?: number;
}

/** True when this machine has a Linux /proc with VmHWM, which the benchmark needs for child processes. */
export function canSampleProcessMemory(): boolean {
  return readPeakResidentKilobytes(process.pid) !== undefined;
}

/**
 * VmHWM of a process in KiB. Undefined when the process is gone, or is a zombie whose memory has
 * already been released (its status then has no VmHWM line).
 */
export function readPeakResidentKilobytes(pid: number): number | undefined {
  const status = readProcessFile(pid, "status");
  const match = status?.match(/^VmHWM:\s+(\d+)\s+kB$/m);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** Clock ticks per second of /proc/<pid>/stat times: USER_HZ, 100 on every mainstream Linux build. */
const clockTicksPerSecond = 100;

/** The fields of /proc/<pid>/stat after the parenthesised name (which may itself hold spaces): index 0 is field 3, the state. */
function readStatFields(pid: number): string[] | undefined {
  const stat = readProcessFile(pid, "stat");
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

function readParentPid(pid: number): number | undefined {
  const fields = readStatFields(pid);
  return fields === undefined ? undefined : Number(fields[1]);
}

/** utime + stime (fields 14 and 15) in seconds. */
function readCpuSeconds(pid: number): number | undefined {
  const fields = readStatFields(pid);
  return fields === undefined ? undefined : (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

function readProcessName(pid: number): string | undefined {
  return readProcessFile(pid, "comm")?.trim();
}

function readExecutable(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

function readProcessFile(pid: number, name: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${name}`, "utf8");
  } catch {
    return undefined;
  }
}

/** Every process below `rootPid` in the process tree, found by reading the parent pid of each process in /proc. */
function findDescendants(rootPid: number): number[] {
  const childrenByParent = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const parent = readParentPid(pid);
    if (parent === undefined) continue;
    const siblings = childrenByParent.get(parent) ?? [];
    siblings.push(pid);
    childrenByParent.set(parent, siblings);
  }
  const descendants: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    const children = childrenByParent.get(pending.pop() as number) ?? [];
    descendants.push(...children);
    pending.push(...children);
  }
  return descendants;
}

/**
 * Records the peak resident set (VmHWM) of a set of processes by polling /proc, optionally
 * including every descendant of some of them (hoard's Node process starts pg_dump itself, so its
 * pid is only known from the process tree). This kernel has no /proc/<pid>/task/<tid>/children,
 * so descendants are found by a full scan of /proc, done less often than the cheap VmHWM reads:
 * a late discovery loses nothing because VmHWM is a high-water mark.
 */
export class ProcessMemorySampler {
  readonly #peaks = new Map<number, ProcessPeak>();
  readonly #roots: number[] = [];
  readonly #sampleIntervalMs: number;
  readonly #discoveryIntervalMs: number;
  readonly #created = performance.now();
  #sampleTimer: NodeJS.Timeout | undefined;
  #discoveryTimer: NodeJS.Timeout | undefined;

  constructor(options: SamplerOptions = {}) {
    this.#sampleIntervalMs = options.sampleIntervalMs ?? 20;
    this.#discoveryIntervalMs = options.discoveryIntervalMs ?? 200;
  }

  /** Samples this process; with `withDescendants`, also every process it starts. */
  watch(pid: number | undefined, withDescendants = false): void {
    if (pid === undefined) return;
    this.#track(pid);
    if (withDescendants) this.#roots.push(pid);
    this.#sample();
    this.#start();
  }

  /** Takes a last sample, stops polling and returns the peak of every process seen. */
  stop(): ProcessPeak[] {
    this.#sample();
    clearInterval(this.#sampleTimer);
    clearInterval(this.#discoveryTimer);
    this.#sampleTimer = undefined;
    this.#discoveryTimer = undefined;
    return [...this.#peaks.values()];
  }

  #start(): void {
    this.#sampleTimer ??= setInterval(() => this.#sample(), this.#sampleIntervalMs);
    if (this.#roots.length > 0) this.#discoveryTimer ??= setInterval(() => this.#discover(), this.#discoveryIntervalMs);
  }

  #track(pid: number): void {
    if (this.#peaks.has(pid)) return;
    this.#peaks.set(pid, {
      pid,
      name: readProcessName(pid) ?? "?",
      executable: readExecutable(pid) ?? "?",
      peakKilobytes: 0,
      cpuSeconds: 0,
      firstSeenSeconds: (performance.now() - this.#created) / 1000,
      lastSeenSeconds: (performance.now() - this.#created) / 1000,
    });
  }

  #discover(): void {
    for (const root of this.#roots) for (const pid of findDescendants(root)) this.#track(pid);
  }

  #sample(): void {
    for (const peak of this.#peaks.values()) {
      const executable = readExecutable(peak.pid);
      const kilobytes = readPeakResidentKilobytes(peak.pid);
      if (executable === undefined || kilobytes === undefined) continue;
      if (executable !== peak.executable) {
        // The process exec'd another program (Debian's pg_dump is a Perl wrapper that execs the real one).
        peak.executable = executable;
        peak.peakKilobytes = 0;
      }
      peak.peakKilobytes = Math.max(peak.peakKilobytes, kilobytes);
      peak.cpuSeconds = readCpuSeconds(peak.pid) ?? peak.cpuSeconds;
      peak.lastSeenSeconds = (performance.now() - this.#created) / 1000;
      peak.name = readProcessName(peak.pid) ?? peak.name;
    }
  }
}

/** The processes of one name (e.g. every `pg_dump`) that were seen with memory. */
function processesNamed(peaks: readonly ProcessPeak[], name: string): ProcessPeak[] {
  return peaks.filter((peak) => peak.name === name && peak.peakKilobytes > 0);
}

/** The earliest time a process of one name was first seen (seconds from the sampler's creation); undefined when none was. */
export function firstSeenOf(peaks: readonly ProcessPeak[], name: string): number | undefined {
  const matching = peaks.filter((peak) => peak.name === name);
  return matching.length === 0 ? undefined : Math.min(...matching.map((peak) => peak.firstSeenSeconds));
}

/** The largest peak among processes of one name, in KiB; undefined when none was seen. */
export function peakOf(peaks: readonly ProcessPeak[], name: string): number | undefined {
  const matching = processesNamed(peaks, name);
  return matching.length === 0 ? undefined : Math.max(...matching.map((peak) => peak.peakKilobytes));
}

/** The CPU seconds of every process of one name together; undefined when none was seen. */
export function cpuOf(peaks: readonly ProcessPeak[], name: string): number | undefined {
  const matching = processesNamed(peaks, name);
  return matching.length === 0 ? undefined : matching.reduce((total, peak) => total + peak.cpuSeconds, 0);
}
