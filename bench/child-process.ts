import type { ChildProcess } from "node:child_process";

/** How a child process ended, with the end of what it wrote to stderr. */
export interface ChildExit {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

const stderrTailCharacters = 4000;

/**
 * Waits for a child to exit, collecting the tail of its stderr (when it is piped). Never rejects:
 * a failure to start is reported as exit code 127 with the error message as stderr.
 */
export function waitForExit(name: string, child: ChildProcess): Promise<ChildExit> {
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-stderrTailCharacters);
  });
  return new Promise((resolve) => {
    child.once("error", (error) => resolve({ name, code: 127, signal: null, stderr: `${stderr}${error.message}` }));
    child.once("close", (code, signal) => resolve({ name, code, signal, stderr }));
  });
}

/** Throws an error naming the first child that did not exit 0, with its stderr. */
export function assertSucceeded(exits: readonly ChildExit[]): void {
  const failed = exits.find((exit) => exit.code !== 0);
  if (failed === undefined) return;
  const status = failed.code === null ? `killed by ${failed.signal}` : `exit code ${failed.code}`;
  throw new Error(`${failed.name} failed (${status}): ${failed.stderr.trim() || "no output"}`);
}

/** Collects a child's stdout as text (for small outputs such as a JSON result). */
export function collectStdout(child: ChildProcess): () => string {
  let stdout = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    stdout += chunk;
  });
  return () => stdout;
}
