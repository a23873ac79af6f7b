import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** How long and how quiet. */
export interface QuietOptions {
  /** Give up waiting after this many seconds and run anyway. */
  timeoutSeconds: number;
  /** Busy share of all CPUs (0-1) under which the machine counts as quiet. @default 0.2 */
  busyThreshold?: number;
  /** Length of one measurement window in milliseconds. @default 1000 */
  windowMs?: number;
}

/** What the wait saw. */
export interface QuietResult {
  /** Busy share of all CPUs in the last window before the run (0-1). */
  busyFraction: number;
  waitedSeconds: number;
  /** False when the timeout passed first. */
  quiet: boolean;
}

/** Busy and total jiffies of all CPUs from the first line of /proc/stat (idle and iowait count as not busy). */
function readCpuTimes(): { busy: number; total: number } {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** Busy share of all CPUs over one window. */
async function busyFractionOver(windowMs: number): Promise<number> {
  const before = readCpuTimes();
  await sleep(windowMs);
  const after = readCpuTimes();
  const total = after.total - before.total;
  return total <= 0 ? 0 : (after.busy - before.busy) / total;
}

/**
 * Waits until the rest of the machine is quiet (other people's builds and tests share these two
 * cores and skew wall times), or the timeout passes. Load average is no use here: it trails the
 * benchmark's own previous run by minutes; /proc/stat over one-second windows does not.
 */
export async function waitForQuietMachine(options: QuietOptions): Promise<QuietResult> {
  const threshold = options.busyThreshold ?? 0.2;
  const windowMs = options.windowMs ?? 1000;
  const started = Date.now();
  let busyFraction = await busyFractionOver(windowMs);
  while (busyFraction > threshold && (Date.now() - started) / 1000 < options.timeoutSeconds) {
    busyFraction = await busyFractionOver(windowMs);
  }
  return { busyFraction, waitedSeconds: (Date.now() - started) / 1000, quiet: busyFraction <= threshold };
}
