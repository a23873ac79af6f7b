import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { HoardError } from "./errors.js";
import { type Logger, log } from "./logger.js";

const stderrTailBytes = 16 * 1024;

/** Finds the first of `names` that is an executable on PATH (or an absolute path that exists). */
export async function findExecutable(names: readonly string[], path = process.env.PATH ?? ""): Promise<string | undefined> {
  for (const name of names) {
    const candidates = name.includes("/")
      ? [name]
      : path
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, name));
    for (const candidate of candidates) {
      try {
        await access(candidate, constants.X_OK);
        // Directories pass an X_OK check too.
        if ((await stat(candidate)).isFile()) return candidate;
      } catch {}
    }
  }
  return undefined;
}

export async function requireExecutable(names: readonly string[], hint: string): Promise<string> {
  const found = await findExecutable(names);
  if (!found) {
    throw new HoardError("TOOL_NOT_FOUND", `${names.join(" or ")} not found on PATH: ${hint}`);
  }
  return found;
}

export interface ToolOptions {
  /** Name used in messages, e.g. `pg_dump`. */
  label: string;
  args: readonly string[];
  /** Added to the inherited environment; this is how secrets reach tools, never argv. */
  env?: Record<string, string | undefined>;
  signal?: AbortSignal;
  logger?: Logger;
  /** Turns the tool's stderr tail into a better message, e.g. recognising "authentication failed". */
  explainFailure?: (stderr: string) => string | undefined;
  /**
   * Called with every line the tool writes to stderr (without the line break, empty lines left
   * out), as it comes: e.g. to notice that a tool got past connecting. The lines are logged at
   * debug level too.
   */
  onStderrLine?: (line: string) => void;
  cwd?: string;
}

/** A running tool with its stderr collected, and a promise for its successful exit. */
export interface ToolProcess {
  child: ChildProcess;
  /** Resolves when the tool exited 0; rejects with TOOL_FAILED carrying the tail of stderr. */
  exited: Promise<void>;
  /** The last bytes the tool wrote to stderr. */
  stderr(): string;
  kill(): void;
}

export function startTool(executable: string, options: ToolOptions, stdin: "pipe" | "ignore"): ToolProcess {
  const child = spawn(executable, [...options.args], {
    env: { ...process.env, ...options.env },
    stdio: [stdin, "pipe", "pipe"],
    cwd: options.cwd,
    shell: false,
  });
  let tail = "";
  // The part of the last line that has no line break yet: a line may come in several chunks.
  let partial = "";
  const online = (line: string) => {
    if (!line.trim()) return;
    log(options.logger, "debug", `${options.label}: ${line}`);
    options.onStderrLine?.(line);
  };
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    tail = (tail + chunk).slice(-stderrTailBytes);
    const lines = (partial + chunk).split("\n");
    partial = (lines.pop() ?? "").slice(-stderrTailBytes);
    for (const line of lines) online(line.replace(/\r$/, ""));
  });
  child.stderr?.on("end", () => {
    online(partial);
    partial = "";
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  const onAbort = () => kill();
  // An already-aborted signal never fires 'abort': stop the tool at once.
  if (options.signal?.aborted) kill();
  else options.signal?.addEventListener("abort", onAbort, { once: true });
  const exited = new Promise<void>((resolve, reject) => {
    child.once("error", (error: NodeJS.ErrnoException) => {
      options.signal?.removeEventListener("abort", onAbort);
      reject(
        error.code === "ENOENT"
          ? new HoardError("TOOL_NOT_FOUND", `${options.label} not found: install it or put it on PATH`, { cause: error })
          : new HoardError("TOOL_FAILED", `${options.label} could not start: ${error.message}`, { cause: error }),
      );
    });
    child.once("close", (code, signal) => {
      options.signal?.removeEventListener("abort", onAbort);
      if (code === 0) return resolve();
      if (options.signal?.aborted) {
        return reject(new HoardError("ABORTED", `${options.label} was stopped`, { detail: tail }));
      }
      const explained = options.explainFailure?.(tail);
      const lastLine = lastMeaningfulLine(tail);
      const status = code === null ? `killed by ${signal}` : `exit code ${code}`;
      const message = `${options.label} failed (${status})${explained ? `: ${explained}` : lastLine ? `: ${lastLine}` : ""}`;
      reject(new HoardError("TOOL_FAILED", message, { detail: tail }));
    });
  });
  // Callers attach their own handlers; this keeps an unobserved rejection from crashing the process.
  exited.catch(() => {});
  return { child, exited, stderr: () => tail, kill };
}

function lastMeaningfulLine(text: string): string {
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.at(-1) ?? "";
}

/**
 * Runs a tool and returns its stdout as a stream that ends only after the tool exited 0, and fails
 * with the tool's error otherwise, so a consumer never mistakes a truncated dump for a whole one.
 * Destroying the stream kills the tool.
 */
export function toolOutput(executable: string, options: ToolOptions): Readable {
  const tool = startTool(executable, options, "ignore");
  const output = new PassThrough();
  // The tool can fail before anyone consumes the stream (while a pipeline is still being set up).
  // Consumers learn of it through the stream's errored state, which pipeline() and finished()
  // report; without this listener, the early 'error' event would crash the process instead.
  output.on("error", () => {});
  let stdoutEnded = false;
  tool.child.stdout?.on("end", () => {
    stdoutEnded = true;
  });
  tool.child.stdout?.pipe(output, { end: false });
  tool.exited.then(
    () => {
      if (stdoutEnded) output.end();
      else tool.child.stdout?.once("end", () => output.end());
    },
    (error: unknown) => output.destroy(error as Error),
  );
  output.on("close", () => {
    if (!output.writableFinished) tool.kill();
  });
  return output;
}

/**
 * Runs a tool with `input` on its stdin and waits for it to exit 0. When the input fails (a corrupt
 * archive, a broken download), the tool is killed before it can see end-of-input, so a tool that
 * commits at EOF never commits half a restore. Returns the tail of the tool's stderr.
 */
export async function runToolWithInput(executable: string, options: ToolOptions, input: Readable): Promise<string> {
  const tool = startTool(executable, options, "pipe");
  // A restore tool's stdout is of no use here, but must be read: psql prints the rows of every
  // SELECT in a plain dump (one per sequence's setval), and a full pipe would block it forever.
  tool.child.stdout?.resume();
  const stdin = tool.child.stdin;
  if (!stdin) throw new HoardError("INTERNAL", `${options.label}: no stdin`);
  stdin.on("error", () => {
    // EPIPE when the tool exits early; its exit status carries the real reason.
  });
  let inputError: unknown;
  let inputDone = false;
  // finished() also reports an input that failed before we got it, which an 'error' listener would miss.
  const fed = finished(input, { writable: false }).then(
    () => {
      inputDone = true;
      stdin.end();
    },
    (error: unknown) => {
      inputError = error;
      tool.kill();
    },
  );
  input.pipe(stdin, { end: false });
  try {
    await tool.exited;
  } catch (error) {
    // An input failure kills the tool, so it is known by the time the tool's exit is.
    const cause = inputError ?? error;
    input.destroy();
    throw cause;
  }
  if (inputError) throw inputError;
  // The tool finished without reading everything (it is done); stop feeding it.
  if (!inputDone) input.destroy();
  else await fed;
  return tool.stderr();
}

/** Runs a tool with no input, waits for it, and returns its stdout as text (for small outputs). */
export async function runTool(executable: string, options: ToolOptions): Promise<string> {
  const tool = startTool(executable, options, "ignore");
  let stdout = "";
  tool.child.stdout?.setEncoding("utf8");
  tool.child.stdout?.on("data", (chunk: string) => {
    stdout += chunk;
  });
  await tool.exited;
  return stdout;
}
