import { randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { describeError, HoardError } from "@hoard/core";
import { Counter, Gauge, Registry } from "prom-client";

/**
 * The Prometheus metrics of hoard's jobs, labelled `job` (the job's name in `hoard run`, the prefix
 * for a one-shot `hoard backup`). A registry of its own: no process metrics, nothing global.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Starts a job's series at zero, so that a job that never succeeded shows as such. */
  declare(job: string): void;
  started(job: string): void;
  /** A backup was stored: its time, duration and size. */
  stored(job: string, outcome: { size: number; durationMs: number }): void;
  /** The run ended (`failed`: the backup or its retention failed). */
  finished(job: string, failed: boolean): void;
  /** The exposition text. */
  text(): Promise<string>;
  /** Takes over the values of an earlier exposition text (a one-shot run's previous metrics file). */
  load(text: string): void;
}

/** The metric names, for docs and tests. */
export const metricNames = {
  lastSuccess: "hoard_backup_last_success_timestamp_seconds",
  lastDuration: "hoard_backup_last_duration_seconds",
  lastSize: "hoard_backup_last_size_bytes",
  lastFailure: "hoard_backup_last_failure_timestamp_seconds",
  runs: "hoard_backup_runs_total",
  failures: "hoard_backup_failures_total",
  running: "hoard_backup_running",
} as const;

export function createMetrics(): Metrics {
  const registry = new Registry();
  const labelNames = ["job"] as const;
  const registers = [registry];
  const lastSuccess = new Gauge({
    name: metricNames.lastSuccess,
    help: "When the job's last successful backup was stored (Unix time; 0: never)",
    labelNames,
    registers,
  });
  const lastDuration = new Gauge({
    name: metricNames.lastDuration,
    help: "How long the job's last successful backup took",
    labelNames,
    registers,
  });
  const lastSize = new Gauge({
    name: metricNames.lastSize,
    help: "The size of the job's last successful backup as stored",
    labelNames,
    registers,
  });
  const lastFailure = new Gauge({
    name: metricNames.lastFailure,
    help: "When the job's last run failed (Unix time; 0: never)",
    labelNames,
    registers,
  });
  const runs = new Counter({ name: metricNames.runs, help: "Runs of the job that ended, successful or not", labelNames, registers });
  const failures = new Counter({
    name: metricNames.failures,
    help: "Runs of the job that failed (the backup, or the retention after it)",
    labelNames,
    registers,
  });
  const running = new Gauge({ name: metricNames.running, help: "1 while a run of the job is going", labelNames, registers });
  const gauges: Record<string, Gauge<"job">> = {
    [metricNames.lastSuccess]: lastSuccess,
    [metricNames.lastDuration]: lastDuration,
    [metricNames.lastSize]: lastSize,
    [metricNames.lastFailure]: lastFailure,
  };
  const counters: Record<string, Counter<"job">> = { [metricNames.runs]: runs, [metricNames.failures]: failures };
  return {
    registry,
    declare(job) {
      for (const gauge of [lastSuccess, lastDuration, lastSize, lastFailure, running]) gauge.inc({ job }, 0);
      runs.inc({ job }, 0);
      failures.inc({ job }, 0);
    },
    started(job) {
      running.set({ job }, 1);
    },
    stored(job, outcome) {
      lastSuccess.set({ job }, Date.now() / 1000);
      lastDuration.set({ job }, outcome.durationMs / 1000);
      lastSize.set({ job }, outcome.size);
    },
    finished(job, failed) {
      running.set({ job }, 0);
      runs.inc({ job });
      if (failed) {
        failures.inc({ job });
        lastFailure.set({ job }, Date.now() / 1000);
      }
    },
    text: () => registry.metrics(),
    load(text) {
      for (const line of text.split("\n")) {
        const match = /^(hoard_[a-z_]+)\{job="((?:[^"\\]|\\.)*)"\} (\S+)$/.exec(line);
        if (!match) continue;
        const [, name, quoted, raw] = match as unknown as [string, string, string, string];
        const job = JSON.parse(`"${quoted}"`) as string;
        const value = Number(raw);
        if (!Number.isFinite(value)) continue;
        if (gauges[name]) gauges[name].set({ job }, value);
        else if (counters[name] && value > 0) counters[name].inc({ job }, value);
      }
    },
  };
}

/**
 * Writes the metrics for node_exporter's textfile collector atomically: a temporary file in the
 * same directory, then a rename over the old one, so the collector never reads half a file. The
 * previous file's values are taken over first (counters go on counting, and a failed run keeps
 * the last success's time), for every job in it.
 */
export async function updateMetricsFile(path: string, update: (metrics: Metrics) => void): Promise<void> {
  const metrics = createMetrics();
  try {
    metrics.load(await readFile(path, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw metricsFileError(path, error);
  }
  update(metrics);
  // node_exporter reads only *.prom files: the temporary name must not end in .prom.
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await writeFile(temporary, await metrics.text(), { mode: 0o644 });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw metricsFileError(path, error);
  }
}

function metricsFileError(path: string, error: unknown): HoardError {
  return new HoardError("INTERNAL", `could not write the metrics file ${path}: ${describeError(error).replace(/^[A-Z]+: /, "")}`, {
    cause: error,
  });
}
