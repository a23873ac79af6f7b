import cron from "node-cron";
import { describeError, HoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";

export interface ScheduleOptions<T> {
  /** A cron expression (5 fields, or 6 with seconds first), evaluated in UTC unless `timezone` says otherwise. */
  expression: string;
  timezone?: string;
  /** One run; gets a signal that fires when the schedule is stopped with `abort`. */
  run: (signal: AbortSignal) => Promise<T>;
  onResult?: (result: T) => void;
  onError?: (error: unknown) => void;
  logger?: Logger;
}

export interface Schedule {
  /** Stops scheduling; resolves when a running backup has finished (or, with `abort`, has been stopped). */
  stop(options?: { abort?: boolean }): Promise<void>;
  /** Resolves when the schedule has been stopped and nothing is running. */
  readonly stopped: Promise<void>;
}

export function validateCron(expression: string): void {
  if (!cron.validate(expression)) {
    throw new HoardError("INVALID_ARGUMENT", `invalid cron expression "${expression}"`);
  }
}

/**
 * Runs `run` on a cron schedule. A run never overlaps the previous one: a tick that comes while a
 * run is still going is skipped and reported.
 */
export function schedule<T>(options: ScheduleOptions<T>): Schedule {
  validateCron(options.expression);
  let running: Promise<void> | undefined;
  let runStarted = 0;
  let controller = new AbortController();
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });
  const task = cron.schedule(
    options.expression,
    () => {
      if (running) {
        // Said every time, with how long the run has been going, so a run that hangs is loud, not silent.
        const minutes = Math.floor((Date.now() - runStarted) / 60_000);
        options.logger?.event({
          type: "schedule-skipped",
          reason: `the previous run is still going (started ${minutes < 1 ? "less than a minute" : `${minutes} min`} ago)`,
        });
        return;
      }
      controller = new AbortController();
      runStarted = Date.now();
      running = options
        .run(controller.signal)
        .then(
          (result) => options.onResult?.(result),
          (error: unknown) => {
            if (options.onError) options.onError(error);
            else log(options.logger, "warn", `scheduled run failed: ${describeError(error)}`);
          },
        )
        .finally(() => {
          running = undefined;
        });
    },
    { timezone: options.timezone ?? "Etc/UTC" },
  );
  // node-cron would print its own warning to the console for a tick the busy process missed: say it
  // through the logger instead, so a JSON log stays one object per line.
  task.on("execution:missed", (context) => {
    options.logger?.event({
      type: "schedule-skipped",
      reason: `the tick of ${context.date.toISOString()} was missed: the process was busy when it came`,
    });
  });
  return {
    stopped,
    async stop({ abort = false } = {}) {
      task.stop();
      await task.destroy?.();
      if (abort) controller.abort();
      await running;
      resolveStopped();
    },
  };
}
