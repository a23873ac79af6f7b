/** The exit status after a signal, by the shell's convention: 128 + the signal's number. */
export function signalStatus(name: NodeJS.Signals): number {
  return name === "SIGINT" ? 130 : 143;
}

/** The command stopped because of SIGINT or SIGTERM; the message says what state things were left in. */
export class InterruptedError extends Error {
  override name = "InterruptedError";
  readonly status: number;
  constructor(
    readonly signalName: NodeJS.Signals,
    state: string,
    options?: { cause?: unknown },
  ) {
    super(`interrupted by ${signalName}; ${state}`, options);
    this.status = signalStatus(signalName);
  }
}

export interface RunOptions {
  /** What state things are in after an interruption, e.g. "nothing was stored". */
  state(): string;
  /**
   * true: after a signal, wait for the work to fail and clean up (backup, restore).
   * false: stop waiting at once (list, prune): the work holds nothing to clean up.
   */
  waitForCleanup: boolean;
}

export interface Interrupt {
  /** Fires on the first SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** Awaits `work`; if a signal came and the work did not finish, fails with InterruptedError. */
  run<T>(work: Promise<T>, options: RunOptions): Promise<T>;
  /** Call when the command has ended, output included; the handlers stay until the process exits. */
  dispose(): void;
}

/** After a second signal, how long hoard still waits for the cleanup before it exits anyway. */
export const forcedExitDelayMs = 10_000;

let interruptedBy: NodeJS.Signals | undefined;
let count = 0;
let deadline: NodeJS.Timeout | undefined;
/** The running command's abort controller and state, once it has started. */
let current: { controller: AbortController; state?: () => string } | undefined;
/** A command that handles signals itself (backup --cron). */
let delegate: ((name: NodeJS.Signals) => void) | undefined;

/** The first signal received, if one was: the process then exits as soon as main returns. */
export function receivedSignal(): NodeJS.Signals | undefined {
  return interruptedBy;
}

function exitNow(reason: string): never {
  const name = interruptedBy ?? "SIGTERM";
  const state = current?.state?.();
  process.stderr.write(`hoard: interrupted by ${name}; ${reason}${state ? ` (${state})` : ""}\n`);
  process.exit(signalStatus(name));
}

function onSignal(name: NodeJS.Signals): void {
  if (delegate) {
    delegate(name);
    return;
  }
  count += 1;
  if (count === 1) {
    interruptedBy = name;
    current?.controller.abort(new Error(`interrupted by ${name}`));
  } else if (count === 2) {
    deadline = setTimeout(() => exitNow("gave up waiting for the cleanup"), forcedExitDelayMs);
    deadline.unref();
  } else {
    exitNow("stopped without waiting for the cleanup");
  }
}

/**
 * Installs the SIGINT and SIGTERM handlers for the whole run, first thing, so that no signal finds
 * hoard without them: the first signal aborts the command, which cleans up and fails; a second one
 * (Ctrl-C twice) cannot kill hoard in the middle of its cleanup, it only sets a deadline: if the
 * cleanup has not finished {@link forcedExitDelayMs} later, hoard exits anyway; a third exits at once.
 */
export function installSignalHandlers(): void {
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

/** Lets a command handle the signals itself until the returned function is called. */
export function handleSignals(handler: (name: NodeJS.Signals) => void): () => void {
  delegate = handler;
  if (interruptedBy) handler(interruptedBy);
  return () => {
    delegate = undefined;
  };
}

/** The abort signal and runner of a one-shot command; a signal that came before it started aborts it at once. */
export function watchInterrupts(): Interrupt {
  const controller = new AbortController();
  if (interruptedBy) controller.abort(new Error(`interrupted by ${interruptedBy}`));
  current = { controller };
  return {
    signal: controller.signal,
    async run(work, options) {
      if (current) current.state = options.state;
      try {
        return await (options.waitForCleanup ? work : untilAborted(work, controller.signal));
      } catch (error) {
        if (interruptedBy) throw new InterruptedError(interruptedBy, options.state(), { cause: error });
        throw error;
      }
    },
    dispose() {
      if (deadline) clearTimeout(deadline);
    },
  };
}

/** The work's outcome, or a rejection as soon as the signal fires. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
