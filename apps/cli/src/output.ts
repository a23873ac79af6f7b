import type { HoardEvent, Logger } from "@hoard/core";

/** Writing a result to stdout failed: the reader closed the pipe (EPIPE) or the disk is full (ENOSPC). */
export class OutputError extends Error {
  override name = "OutputError";
  readonly code: string | undefined;
  /** What went wrong, e.g. "no space left on device". */
  readonly reason: string;
  constructor(cause: NodeJS.ErrnoException) {
    const reason =
      cause.code === "ENOSPC" ? "no space left on device" : cause.code === "EPIPE" ? "the reader closed the pipe" : cause.message;
    super(`could not write to stdout: ${reason}`, { cause });
    this.code = cause.code;
    this.reason = reason;
  }

  /** The reader went away (`hoard list | head -1`): not a failure of hoard's. */
  get readerClosed(): boolean {
    return this.code === "EPIPE";
  }
}

/** Writes a result to stdout and waits until it is written; a failed write rejects with OutputError. */
export function writeResult(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => (error ? reject(new OutputError(error)) : resolve()));
  });
}

/**
 * Keeps a failed write to stdout or stderr from crashing the process with an unhandled 'error'
 * event: writeResult reports stdout's failures; a lost stderr is ignored.
 */
export function guardStandardStreams(): void {
  process.stdout.on("error", () => {});
  process.stderr.on("error", () => {});
}

/** Human-readable bytes: 1.5 MB, 320 B. */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(1)} ${units[unit]}`;
}

/** How log lines are written: `text` for people, `json` one object per line for log collectors. */
export type LogFormat = "text" | "json";

export const logFormats: readonly LogFormat[] = ["text", "json"];

/**
 * Something the CLI's own service layer reports (a job started or failed, a notification was not
 * delivered), besides the pipelines' events. `event` is a stable kebab-case name.
 */
export interface ServiceEvent {
  type: "service";
  level: "debug" | "info" | "warn" | "error";
  event: string;
  message: string;
  /** Extra structured fields for the JSON format (never a secret). */
  fields?: Record<string, unknown>;
}

/** The CLI's logger: core's events and the service's own. */
export interface CliLogger extends Logger {
  event(event: HoardEvent | ServiceEvent): void;
  /** Clears a progress line; call before writing results. */
  finish(): void;
}

export interface StderrLoggerOptions {
  /** Show debug lines (tool stderr, decisions). */
  debug: boolean;
  /** Redraw a progress line; only when stderr is a terminal (never in JSON). */
  progress: boolean;
  write?: (text: string) => void;
  /** The job the lines are about, in `hoard run`: `[shop] ` before each text line, `"job"` in JSON. */
  job?: string;
  /** Removes secrets from every line (the config's resolved secrets). */
  redact?: (text: string) => string;
}

/** A logger that drops everything (`--quiet`). */
export const quietLogger: CliLogger = { event() {}, finish() {} };

/** A text or JSON logger to stderr. */
export function createFormatLogger(format: LogFormat, options: StderrLoggerOptions): CliLogger {
  return format === "json" ? createJsonLogger(options) : createStderrLogger(options);
}

/** The log level of a pipeline event. */
function levelOf(event: HoardEvent | ServiceEvent): "debug" | "info" | "warn" | "error" {
  if (event.type === "log" || event.type === "service") return event.level;
  if (event.type === "progress") return "debug";
  return event.type === "schedule-skipped" ? "warn" : "info";
}

/**
 * One JSON object per line: `time` (ISO 8601), `level`, `job` (in `hoard run`), `event` (the
 * pipeline event's type, e.g. `backup-finished`, or the service's event name), `message` for
 * people, and the event's fields. Progress events are left out (they are for a terminal);
 * debug events only with --debug.
 */
export function createJsonLogger(options: StderrLoggerOptions): CliLogger {
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  const redact = options.redact ?? ((text: string) => text);
  return {
    event(event) {
      if (event.type === "progress") return;
      const level = levelOf(event);
      if (level === "debug" && !options.debug) return;
      const message = describeEvent(event);
      const { type, ...fields } = event as HoardEvent & Record<string, unknown>;
      const record: Record<string, unknown> = { time: new Date().toISOString(), level };
      if (options.job !== undefined) record.job = options.job;
      if (event.type === "service") {
        record.event = event.event;
        record.message = event.message;
        Object.assign(record, event.fields ?? {});
      } else if (event.type === "log") {
        record.event = "log";
        record.message = event.message;
      } else {
        record.event = type;
        record.message = message;
        Object.assign(record, fields);
      }
      write(`${JSON.stringify(record, (_key, value: unknown) => (typeof value === "string" ? redact(value) : value))}\n`);
    },
    finish() {},
  };
}

/** The text line of an event (without the job's prefix), or "" for progress. */
export function describeEvent(event: HoardEvent | ServiceEvent): string {
  switch (event.type) {
    case "progress":
      return "";
    case "backup-started":
      return `backing up ${event.driver} to ${event.storage} as ${event.key} (${event.mode} mode)`;
    case "backup-finished":
      return `stored ${event.key}: ${formatBytes(event.size)} in ${(event.durationMs / 1000).toFixed(1)} s`;
    case "restore-started":
      return `restoring ${event.key} from ${event.storage} into ${event.driver}`;
    case "restore-finished":
      return `restored ${event.key} in ${(event.durationMs / 1000).toFixed(1)} s`;
    case "deleted":
      return `deleted ${event.key}`;
    case "schedule-skipped":
      return `skipped a scheduled run: ${event.reason}`;
    case "log":
      return event.level === "warn" ? `warning: ${event.message}` : event.message;
    case "service":
      return event.level === "warn" || event.level === "error"
        ? `${event.level === "warn" ? "warning" : "error"}: ${event.message}`
        : event.message;
  }
}

/**
 * Logs to stderr: one line per step, a live progress line (bytes and rate) on a terminal, and
 * debug lines with --debug. Results never go here; they go to stdout.
 */
export function createStderrLogger(options: StderrLoggerOptions): CliLogger {
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  const redact = options.redact ?? ((text: string) => text);
  const prefix = options.job === undefined ? "" : `[${options.job}] `;
  let progressShown = false;
  let phaseStarted = Date.now();
  let currentPhase = "";
  const clearProgress = () => {
    if (progressShown) write("\r\x1b[2K");
    progressShown = false;
  };
  const line = (text: string) => {
    clearProgress();
    write(`${redact(`${prefix}${text}`)}\n`);
  };
  return {
    event(event) {
      switch (event.type) {
        case "progress": {
          if (!options.progress) return;
          if (event.phase !== currentPhase) {
            currentPhase = event.phase;
            phaseStarted = Date.now();
          }
          const seconds = Math.max((Date.now() - phaseStarted) / 1000, 0.001);
          clearProgress();
          write(`${event.phase} ${formatBytes(event.bytes)} (${formatBytes(event.bytes / seconds)}/s)`);
          progressShown = true;
          return;
        }
        case "log":
        case "service":
          if (event.level === "debug" && !options.debug) return;
          return line(describeEvent(event));
        default:
          return line(describeEvent(event));
      }
    },
    finish: clearProgress,
  };
}

/** A plain text table with left-aligned columns. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const format = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return [format(header), ...rows.map(format)].join("\n");
}
