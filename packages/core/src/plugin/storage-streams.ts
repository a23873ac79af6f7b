import { PassThrough, type Readable, Transform } from "node:stream";
import type { HoardError } from "../errors.js";

/** A pass-through stream that counts the bytes going through it. */
export interface ByteCounter extends Transform {
  /** Bytes passed on so far. */
  readonly bytes: number;
}

/**
 * A pass-through that counts the bytes of an upload (the size to report, whatever the store says)
 * and reports the running total to `onProgress` after each chunk.
 */
export function byteCounter(onProgress?: (bytes: number) => void): ByteCounter {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      onProgress?.(bytes);
      callback(null, chunk);
    },
  });
  return Object.defineProperty(counter, "bytes", { get: () => bytes }) as ByteCounter;
}

/** A timer that fires when nothing has happened for a while; see {@link silenceTimer}. */
export interface SilenceTimer {
  /** (Re)starts the timer: call it on every byte that moves. No effect while paused. */
  arm(milliseconds?: number): void;
  /** Stops timing, e.g. while waiting for the upload's own source (a dump that thinks is not a silent store). */
  pause(): void;
  /** Times again, from now. */
  resume(): void;
  /** Stops for good. */
  stop(): void;
}

/**
 * Calls `onSilence` once nothing has re-armed the timer for `timeoutMs` ("no byte for N ms"). It is
 * not armed until the first `arm()` or `resume()`.
 */
export function silenceTimer(timeoutMs: number, onSilence: () => void): SilenceTimer {
  let timer: NodeJS.Timeout | undefined;
  let paused = false;
  const arm = (milliseconds = timeoutMs) => {
    clearTimeout(timer);
    if (!paused) timer = setTimeout(onSilence, milliseconds);
  };
  return {
    arm,
    pause() {
      paused = true;
      clearTimeout(timer);
    },
    resume() {
      paused = false;
      arm();
    },
    stop() {
      paused = true;
      clearTimeout(timer);
    },
  };
}

/** How {@link guardDownload} reports what ends a download early. */
export interface GuardDownloadOptions {
  /** The caller's signal: when it fires, the download fails with `aborted(reason)` at once. */
  signal?: AbortSignal;
  /** The ABORTED error, with the signal's reason or the source's error as the cause. */
  aborted(cause: unknown): HoardError;
  /** The error for a source that failed (a lost connection, a server error) while the signal had not fired. */
  failed(error: unknown): HoardError;
  /**
   * Times the download's silence: nothing received for `timeoutMs` while the reader waits for more
   * fails it with `error()`. A reader slower than the download is not silence, and the first
   * silence after the reader held the download back is forgiven (TCP reopens a closed window
   * lazily). Leave it out when the transport times silence itself.
   */
  silence?: {
    timeoutMs: number;
    /** How long the first byte may take (the request's retries, say). @default timeoutMs */
    firstByteMs?: number;
    error(): HoardError;
  };
}

/**
 * An object's body as a stream whose errors are HoardErrors naming the store (a lost connection, a
 * silent endpoint) or ABORTED when the caller's signal fired: core reads any other stream error as
 * damage to the archive. Destroying the returned stream destroys the source.
 */
export function guardDownload(source: Readable, options: GuardDownloadOptions): Readable {
  const { signal, silence } = options;
  const output = new PassThrough();
  let timer: NodeJS.Timeout | undefined;
  let heldBack = false;
  const stop = (error: HoardError) => {
    clearTimeout(timer);
    output.destroy(error);
    source.destroy();
  };
  const arm = (milliseconds: number) => {
    if (!silence) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (output.writableNeedDrain || heldBack) {
        heldBack = output.writableNeedDrain;
        arm(silence.timeoutMs);
      } else {
        stop(silence.error());
      }
    }, milliseconds);
  };
  const onAbort = () => stop(options.aborted(signal?.reason));
  if (silence) {
    arm(silence.firstByteMs ?? silence.timeoutMs);
    source.on("data", () => arm(silence.timeoutMs));
  }
  source.once("end", () => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  });
  source.once("error", (error: unknown) => {
    clearTimeout(timer);
    output.destroy(signal?.aborted ? options.aborted(error) : options.failed(error));
  });
  output.once("close", () => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    if (!source.readableEnded) source.destroy();
  });
  signal?.addEventListener("abort", onAbort, { once: true });
  source.pipe(output);
  return output;
}

/** Waits for `work` at most `milliseconds` (a clean-up after a failure, say); it goes on in the background after that. */
export async function within(milliseconds: number, work: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work(), new Promise<void>((resolve) => (timer = setTimeout(resolve, milliseconds)))]);
  clearTimeout(timer);
}
