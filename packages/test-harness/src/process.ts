import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { appendFileSync, chownSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** A user id and group id to run a child process as. */
export interface ProcessOwner {
  uid: number;
  gid: number;
}

/** How a child process ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A long-running child process whose output goes to a log file. */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logPath: string;
  /** Settles when the process has exited. */
  exited: Promise<ProcessExit>;
  hasExited(): boolean;
  /** Sends `signal` (default SIGTERM), then SIGKILL after `timeoutMs`, and waits for the exit. */
  stop(options?: { signal?: NodeJS.Signals; timeoutMs?: number }): Promise<void>;
}

/** Options for {@link startProcess}. */
export interface StartProcessOptions {
  name: string;
  command: string;
  args: readonly string[];
  logPath: string;
  env?: NodeJS.ProcessEnv | undefined;
  cwd?: string | undefined;
  owner?: ProcessOwner | undefined;
}

/** Output of a finished command. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link runCommand}. */
export interface RunCommandOptions {
  env?: NodeJS.ProcessEnv | undefined;
  cwd?: string | undefined;
  owner?: ProcessOwner | undefined;
  timeoutMs?: number | undefined;
}

const runningChildren = new Set<ChildProcess>();
const temporaryDirectories = new Set<string>();
let exitCleanupRegistered = false;

/** Milliseconds a server may take to start: HOARD_TEST_STARTUP_TIMEOUT_MS or 60 s. */
export function startupTimeoutMs(): number {
  const configured = Number(process.env.HOARD_TEST_STARTUP_TIMEOUT_MS);
  return Number.isFinite(configured) && configured > 0 ? configured : 60_000;
}

/** Kills every child still running and removes temporary directories when Node exits. */
function registerExitCleanup(): void {
  if (exitCleanupRegistered) {
    return;
  }
  exitCleanupRegistered = true;
  process.on("exit", () => {
    for (const child of runningChildren) {
      child.kill("SIGKILL");
    }
    for (const directory of temporaryDirectories) {
      rmSync(directory, { recursive: true, force: true, maxRetries: 3 });
    }
  });
}

/**
 * Makes a directory under the system temporary directory, removed on process exit unless
 * {@link removeTemporaryDirectory} removed it first. With an owner, the directory is given to it.
 */
export function makeTemporaryDirectory(label: string, owner?: ProcessOwner): string {
  registerExitCleanup();
  const directory = mkdtempSync(join(tmpdir(), `hoard-${label}-`));
  temporaryDirectories.add(directory);
  if (owner !== undefined) {
    chownSync(directory, owner.uid, owner.gid);
  }
  return directory;
}

/** Removes a directory made by {@link makeTemporaryDirectory}. */
export async function removeTemporaryDirectory(directory: string): Promise<void> {
  await rm(directory, { recursive: true, force: true, maxRetries: 3 });
  temporaryDirectories.delete(directory);
}

/** Starts a long-running process with stdout and stderr appended to `logPath`. */
export function startProcess(options: StartProcessOptions): ManagedProcess {
  registerExitCleanup();
  const logDescriptor = openSync(options.logPath, "a");
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", logDescriptor, logDescriptor],
      uid: options.owner?.uid,
      gid: options.owner?.gid,
    });
  } finally {
    closeSync(logDescriptor);
  }
  runningChildren.add(child);
  let exit: ProcessExit | undefined;
  const exited = new Promise<ProcessExit>((resolveExit) => {
    const finish = (result: ProcessExit): void => {
      if (exit === undefined) {
        exit = result;
        runningChildren.delete(child);
        resolveExit(result);
      }
    };
    child.once("exit", (code, signal) => finish({ code, signal }));
    child.once("error", (error) => {
      appendToLog(options.logPath, `failed to start ${options.command}: ${error.message}`);
      finish({ code: null, signal: null });
    });
  });
  return {
    name: options.name,
    child,
    logPath: options.logPath,
    exited,
    hasExited: () => exit !== undefined,
    stop: (stopOptions) => stopProcess(child, exited, () => exit !== undefined, stopOptions),
  };
}

async function stopProcess(
  child: ChildProcess,
  exited: Promise<ProcessExit>,
  hasExited: () => boolean,
  options: { signal?: NodeJS.Signals; timeoutMs?: number } = {},
): Promise<void> {
  if (hasExited()) {
    return;
  }
  child.kill(options.signal ?? "SIGTERM");
  const cancelTimeout = new AbortController();
  const timeout = sleep(options.timeoutMs ?? 15_000, "timeout" as const, { signal: cancelTimeout.signal }).catch(
    () => "cancelled" as const,
  );
  const outcome = await Promise.race([exited, timeout]);
  cancelTimeout.abort();
  if (outcome === "timeout") {
    child.kill("SIGKILL");
    await exited;
  }
}

function appendToLog(logPath: string, line: string): void {
  try {
    appendFileSync(logPath, `${line}\n`);
  } catch {
    // The log is best effort.
  }
}

/** The last `count` lines of a log file ("" when it cannot be read). */
export function logTail(logPath: string, count = 30): string {
  try {
    const lines = readFileSync(logPath, "utf8").trimEnd().split("\n");
    return lines.slice(-count).join("\n");
  } catch {
    return "";
  }
}

/** An Error for a server that failed to start, with the end of its log. */
export function startupError(message: string, server?: ManagedProcess): Error {
  if (server === undefined) {
    return new Error(message);
  }
  const tail = logTail(server.logPath);
  return new Error(`${message}\n--- last lines of ${server.logPath} ---\n${tail || "(empty)"}`);
}

/**
 * Polls `check` until it returns true. Fails with the server's log tail when the server exits
 * first or when `timeoutMs` passes.
 */
export async function waitUntil(
  description: string,
  check: () => Promise<boolean>,
  options: { server?: ManagedProcess; timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? startupTimeoutMs();
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  for (;;) {
    if (options.server?.hasExited()) {
      const exit = await options.server.exited;
      throw startupError(
        `${options.server.name} exited (code ${exit.code}, signal ${exit.signal}) while waiting until ${description}`,
        options.server,
      );
    }
    try {
      if (await check()) {
        return;
      }
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      const detail = lastError === "" ? "" : ` (last error: ${lastError})`;
      throw startupError(`timed out after ${timeoutMs} ms waiting until ${description}${detail}`, options.server);
    }
    await sleep(options.intervalMs ?? 100);
  }
}

/** Runs a command to completion with argument arrays (no shell) and captures its output. */
export function runCommand(command: string, args: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  return new Promise((resolveResult, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      uid: options.owner?.uid,
      gid: options.owner?.gid,
      timeout: options.timeoutMs ?? 60_000,
      killSignal: "SIGKILL",
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.once("error", reject);
    child.once("close", (code, signal) => {
      resolveResult({
        exitCode: code ?? (signal === null ? 1 : 128),
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      });
    });
  });
}

/** Like {@link runCommand}, but throws (with stderr) unless the command exits with 0. */
export async function runCommandOrThrow(command: string, args: readonly string[], options: RunCommandOptions = {}): Promise<string> {
  const result = await runCommand(command, args, options);
  if (result.exitCode !== 0) {
    const output = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-20).join("\n");
    throw new Error(`${command} ${args.join(" ")} exited with ${result.exitCode}:\n${output}`);
  }
  return result.stdout;
}

/** What {@link launchInTemporaryDirectory} gives the function that starts a server. */
export interface ServerLaunch {
  /** The temporary directory: the server's working directory, holding its log `<name>.log`. */
  directory: string;
  /** Starts the server process in the directory (as the directory's owner, if any). */
  launch(options: Omit<StartProcessOptions, "cwd" | "owner" | "logPath">): ManagedProcess;
  /** Stops the launched process with `signal` (SIGKILL after `timeoutMs`) and removes the directory. */
  shutdown(signal: NodeJS.Signals, timeoutMs: number): Promise<void>;
}

/**
 * Makes a temporary directory (given to `owner`) and runs `start` with it, which launches a server
 * there, waits until it answers and returns it. When `start` fails, the process is killed,
 * `onFailure` runs, the directory is removed, and the error is thrown again.
 */
export async function launchInTemporaryDirectory<T>(
  label: string,
  start: (launch: ServerLaunch) => Promise<T>,
  options: { owner?: ProcessOwner | undefined; onFailure?: () => Promise<void> } = {},
): Promise<T> {
  const directory = makeTemporaryDirectory(label, options.owner);
  let server: ManagedProcess | undefined;
  const launch: ServerLaunch = {
    directory,
    launch: (process) => {
      server = startProcess({ ...process, logPath: join(directory, `${process.name}.log`), cwd: directory, owner: options.owner });
      return server;
    },
    shutdown: async (signal, timeoutMs) => {
      await server?.stop({ signal, timeoutMs });
      await removeTemporaryDirectory(directory);
    },
  };
  try {
    return await start(launch);
  } catch (error) {
    await server?.stop({ signal: "SIGKILL" });
    await options.onFailure?.();
    await removeTemporaryDirectory(directory);
    throw error;
  }
}
