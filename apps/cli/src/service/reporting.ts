import type { Logger } from "@hoard/core";
import type { Argv } from "yargs";

/**
 * One-shot alerting and metrics for `hoard backup`: `--healthcheck-url`, `--webhook-url`,
 * `--metrics-file`. (Stub: being implemented with `hoard run`.)
 */
export function withReportingOptions<T>(yargs: Argv<T>): Argv<T> {
  return yargs;
}

/** What a finished backup reports. */
export interface RunOutcome {
  url: string;
  size: number;
  durationMs: number;
}

/** Tells the configured receivers that a job started, succeeded or failed. Never throws. */
export interface Reporter {
  started(): Promise<void>;
  succeeded(outcome: RunOutcome): Promise<void>;
  failed(error: unknown): Promise<void>;
}

/** The reporter for the parsed arguments of one `hoard backup` (a no-op when none is configured). (Stub.) */
export function createReporter(_args: Record<string, unknown>, _job: string, _logger: Logger): Reporter {
  return { started: async () => {}, succeeded: async () => {}, failed: async () => {} };
}
