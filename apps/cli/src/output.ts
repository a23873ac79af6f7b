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

export interface StderrLoggerOptions {
  /** Show debug lines (tool stderr, decisions). */
  debug: boolean;
  /** Redraw a progress line; only when stderr is a terminal. */
  progress: boolean;
  write?: (text: string) => void;
}

/**
 * Logs to stderr: one line per step, a live progress line (bytes and rate) on a terminal, and
 * debug lines with --debug. Results never go here; they go to stdout.
 */
export function createStderrLogger(options: StderrLoggerOptions): Logger & { finish(): void } {
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  let progressShown = false;
  let phaseStarted = Date.now();
  let currentPhase = "";
  const clearProgress = () => {
    if (progressShown) write("\r\x1b[2K");
    progressShown = false;
  };
  const line = (text: string) => {
    clearProgress();
    write(`${text}\n`);
  };
  return {
    event(event: HoardEvent) {
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
        case "backup-started":
          return line(`backing up ${event.driver} to ${event.storage} as ${event.key} (${event.mode} mode)`);
        case "backup-finished":
          return line(`stored ${event.key}: ${formatBytes(event.size)} in ${(event.durationMs / 1000).toFixed(1)} s`);
        case "restore-started":
          return line(`restoring ${event.key} from ${event.storage} into ${event.driver}`);
        case "restore-finished":
          return line(`restored ${event.key} in ${(event.durationMs / 1000).toFixed(1)} s`);
        case "deleted":
          return line(`deleted ${event.key}`);
        case "schedule-skipped":
          return line(`skipped a scheduled run: ${event.reason}`);
        case "log":
          if (event.level === "debug" && !options.debug) return;
          return line(event.level === "warn" ? `warning: ${event.message}` : event.message);
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
