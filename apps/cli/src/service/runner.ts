import {
  backup,
  type Driver,
  HoardError,
  type HoardEvent,
  joinKey,
  prune,
  redactUrl,
  type Schedule,
  type Storage,
  type StorageSettings,
  schedule,
} from "@hoard/core";
import { createLogger, type GlobalArguments, openCliDriver, openStorageWith, type StorageArguments } from "../context.js";
import { handleSignals, signalStatus } from "../interrupt.js";
import type { CliLogger } from "../output.js";
import { pluginSettingsBag } from "../plugins.js";
import type { JobConfig, ServiceConfig } from "./config.js";
import { createJobHealth, type JobHealth } from "./health.js";
import { createMetrics } from "./metrics.js";
import { createJobReporter, errorLine, type Reporter, type RunOutcome } from "./reporting.js";
import { type StatusServer, startStatusServer } from "./server.js";

/** At most `limit` runs at once; waiting stops when the signal fires. */
function createLimiter(limit: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return {
    async acquire(signal: AbortSignal): Promise<void> {
      if (active < limit) {
        active += 1;
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          waiting.splice(waiting.indexOf(grant), 1);
          reject(new HoardError("ABORTED", "stopped while waiting for a free slot"));
        };
        const grant = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        waiting.push(grant);
      });
    },
    release(): void {
      const next = waiting.shift();
      if (next) next();
      else active -= 1;
    },
  };
}

/** What `hoard run` opened and tracks for one job. */
interface RunningJob {
  config: JobConfig;
  storage: Storage;
  driver: Driver;
  logger: CliLogger;
  reporter: Reporter;
  health: JobHealth;
}

function objectUrl(storageUrl: string, key: string): string {
  return `${storageUrl.replace(/\/+$/, "")}/${joinKey(key)}`;
}

export interface RunServiceOptions {
  /** Overrides the config's `listen` (`--listen`); "false" serves nothing. */
  listen?: { host: string; port: number } | false;
}

/**
 * Runs every job of the config on its schedule until SIGINT/SIGTERM: a job never overlaps itself
 * (a tick during its run is skipped and logged), at most `concurrency` jobs run at once (the others
 * wait for a slot), one job's failure never touches another, and retention runs only after that
 * job's backup was stored. The first signal stops scheduling and lets running jobs finish (queued
 * ones are dropped); a second aborts them. Returns the exit status.
 */
export async function runService(
  config: ServiceConfig,
  args: GlobalArguments & StorageArguments,
  options: RunServiceOptions = {},
): Promise<number> {
  const { redact } = config;
  const logger = createLogger(args, { redact, progress: false });
  const metrics = createMetrics();
  const limiter = createLimiter(config.concurrency);
  const jobs: RunningJob[] = [];
  for (const job of config.jobs) {
    const jobLogger = createLogger(args, { job: job.name, redact, progress: false });
    // The job's settings over hoard run's plugin flags and HOARD_* variables (and the plugins' secret variables).
    const timeoutMs = job.timeoutMs ?? args.timeout;
    const storage = await openStorageWith(job.storage, {
      ...pluginSettingsBag("storage", args),
      ...(job.settings as StorageSettings),
      timeoutMs,
    });
    const driver = await openCliDriver(job.database, {
      ...pluginSettingsBag("driver", args),
      ...job.settings,
      dumpOptions: job.dumpOptions,
      logger: jobLogger,
      connectTimeoutMs: timeoutMs,
    });
    metrics.declare(job.name);
    const reporter = createJobReporter({ job: job.name, notify: job.notify, metrics, logger: jobLogger, redact });
    jobs.push({ config: job, storage, driver, logger: jobLogger, reporter, health: createJobHealth(job.graceMs) });
  }
  const listen = options.listen === undefined ? config.listen : options.listen || undefined;
  let server: StatusServer | undefined;
  if (listen) {
    server = await startStatusServer(listen, metrics, new Map(jobs.map((job) => [job.config.name, job.health])));
    logger.event({
      type: "service",
      level: "info",
      event: "listening",
      message: `serving ${server.url}/metrics and ${server.url}/healthz`,
      fields: { url: server.url },
    });
  }

  let stopping = false;
  let aborted: NodeJS.Signals | undefined;
  const schedules: Schedule[] = jobs.map((job) => {
    const { config: settings } = job;
    const scheduleLogger = {
      event(event: HoardEvent) {
        // A tick skipped because the job's previous run is still going is a scheduled time too.
        if (event.type === "schedule-skipped") job.health.tick(Date.now());
        job.logger.event(event);
      },
    };
    return schedule({
      expression: settings.schedule,
      ...(settings.timezone && { timezone: settings.timezone }),
      run: (signal) => runJob(job, signal),
      logger: scheduleLogger,
    });
  });
  for (const { config: job } of jobs) {
    logger.event({
      type: "service",
      level: "info",
      event: "scheduled",
      message: `${job.name}: ${redactUrl(job.database)} to ${redactUrl(job.storage)} as ${job.prefix}, on "${job.schedule}" (${job.timezone ?? "UTC"})`,
      fields: { job: job.name, schedule: job.schedule, timezone: job.timezone ?? "UTC" },
    });
  }

  async function runJob(job: RunningJob, signal: AbortSignal): Promise<void> {
    const tick = Date.now();
    job.health.tick(tick);
    const { config: settings, logger: jobLogger } = job;
    try {
      await limiter.acquire(signal);
    } catch {
      return;
    }
    try {
      if (stopping) return;
      jobLogger.event({ type: "service", level: "info", event: "job-started", message: "run started" });
      await job.reporter.started();
      let stored: RunOutcome | undefined;
      try {
        const result = await backup({
          driver: job.driver,
          storage: job.storage,
          prefix: settings.prefix,
          mode: settings.mode,
          compression: settings.compression,
          compressionLevel: settings.compressionLevel,
          compressionThreads: settings.compressionThreads,
          ...(settings.encryption && { encryption: settings.encryption }),
          verify: settings.verify,
          logger: jobLogger,
          signal,
        });
        stored = { url: objectUrl(settings.storage, result.key), size: result.size, durationMs: result.durationMs };
        job.health.stored(tick);
        if (settings.retention) {
          try {
            const pruned = await prune({
              storage: job.storage,
              policy: settings.retention,
              prefix: settings.prefix,
              logger: jobLogger,
              signal,
            });
            jobLogger.event({
              type: "service",
              level: "info",
              event: "retention",
              message: `retention: kept ${pruned.keep.length}, deleted ${pruned.remove.length}`,
              fields: { kept: pruned.keep.length, deleted: pruned.remove.length },
            });
          } catch (error) {
            throw new HoardError("STORAGE_FAILED", `stored ${stored.url}, but retention failed: ${errorLine(error)}`, { cause: error });
          }
        }
        jobLogger.event({
          type: "service",
          level: "info",
          event: "job-succeeded",
          message: `run succeeded: ${stored.url}`,
          fields: { url: stored.url, size: stored.size, durationMs: stored.durationMs },
        });
        await job.reporter.succeeded(stored);
      } catch (error) {
        jobLogger.event({
          type: "service",
          level: "error",
          event: "job-failed",
          message: `run failed: ${errorLine(error)}`,
          fields: { error: errorLine(error), ...(HoardError.isInstance(error) && { code: error.code }) },
        });
        await job.reporter.failed(error, stored);
      }
    } finally {
      limiter.release();
    }
  }

  let signals = 0;
  const release = handleSignals((name) => {
    signals += 1;
    stopping = true;
    const abort = signals > 1;
    if (abort) aborted = name;
    logger.event({
      type: "service",
      level: "info",
      event: abort ? "aborting" : "stopping",
      message: abort
        ? `${name} again: aborting the running jobs`
        : `${name} received: no new runs; stopping after the running jobs (send again to abort them)`,
    });
    for (const scheduled of schedules) void scheduled.stop({ abort });
  });
  try {
    await Promise.all(schedules.map((scheduled) => scheduled.stopped));
  } finally {
    release();
    await server?.close();
    logger.event({ type: "service", level: "info", event: "stopped", message: "stopped" });
  }
  return aborted ? signalStatus(aborted) : 0;
}
