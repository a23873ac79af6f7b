/** Something a pipeline reports while it works. Library code never prints; the caller decides. */
export type HoardEvent =
  | { type: "backup-started"; driver: string; storage: string; key: string; mode: "stream" | "file" }
  | { type: "progress"; phase: "dump" | "upload" | "download" | "restore"; bytes: number }
  | { type: "backup-finished"; key: string; size: number; durationMs: number }
  | { type: "restore-started"; storage: string; key: string; driver: string }
  | { type: "restore-finished"; key: string; durationMs: number }
  | { type: "deleted"; key: string }
  | { type: "schedule-skipped"; reason: string }
  | { type: "log"; level: "debug" | "info" | "warn"; message: string };

export interface Logger {
  event(event: HoardEvent): void;
}

export const silentLogger: Logger = { event() {} };

export function log(logger: Logger | undefined, level: "debug" | "info" | "warn", message: string): void {
  logger?.event({ type: "log", level, message });
}
