import { HoardError } from "../errors.js";
import { secondsText } from "./driver-messages.js";

/** Codes of a connection that could not be made: the endpoint is wrong, down or out of reach. */
const unreachableCodes = ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "UND_ERR_CONNECT_TIMEOUT"];
/** Codes of a connection that broke after it was made: the server went away, not the caller. */
const lostCodes = ["ECONNRESET", "EPIPE", "ECONNABORTED", "ERR_STREAM_PREMATURE_CLOSE"];
const unreachablePattern = new RegExp(`\\b(${unreachableCodes.join("|")})\\b`);
const lostPattern = new RegExp(`\\b(${lostCodes.join("|")})\\b|Premature close|socket hang up|^aborted$`, "i");

/** What went wrong with a connection, by the code that says so (`ECONNREFUSED`, `socket hang up`). */
export interface NetworkFailure {
  /** `unreachable`: no connection was made; `lost`: a connection broke midway. */
  kind: "unreachable" | "lost";
  /** The system code, or the words of the message that tell (`socket hang up`). */
  code: string;
}

/** The errors an error wraps, the first of an AggregateError's and the cause, a few levels deep. */
function* chainOf(error: unknown): Generator<{ code?: unknown; message?: unknown; errors?: unknown[]; cause?: unknown }> {
  for (let current: unknown = error, depth = 0; current && typeof current === "object" && depth < 6; depth++) {
    const shape = current as { code?: unknown; message?: unknown; errors?: unknown[]; cause?: unknown };
    yield shape;
    current = shape.errors?.[0] ?? shape.cause;
  }
}

/**
 * Whether an error, or an error it wraps, says the connection failed: `unreachable` (ECONNREFUSED,
 * ENOTFOUND, ETIMEDOUT...) or `lost` (ECONNRESET, EPIPE, a premature close, a socket hang-up). By
 * the error code first, then by the message (clients that only say it in words). Undefined for
 * anything else: an answer from the server is not a network failure.
 */
export function networkFailureOf(error: unknown): NetworkFailure | undefined {
  const chain = [...chainOf(error)];
  for (const kind of ["unreachable", "lost"] as const) {
    const codes = kind === "unreachable" ? unreachableCodes : lostCodes;
    const pattern = kind === "unreachable" ? unreachablePattern : lostPattern;
    for (const shape of chain) {
      if (typeof shape.code === "string" && codes.includes(shape.code)) return { kind, code: shape.code };
    }
    for (const shape of chain) {
      const match = typeof shape.message === "string" ? pattern.exec(shape.message) : null;
      if (match) return { kind, code: match[1] ?? match[0] };
    }
  }
  return undefined;
}

/**
 * UNREACHABLE for an endpoint that went silent:
 * `s3: no answer from http://127.0.0.1:7070 within 15 s (ListObjectsV2 s3://backups/shop)`.
 */
export function silentEndpointError(plugin: string, endpoint: string, timeoutMs: number, operation: string, cause?: unknown): HoardError {
  return new HoardError("UNREACHABLE", `${plugin}: no answer from ${endpoint} within ${secondsText(timeoutMs)} (${operation})`, {
    cause,
  });
}

/**
 * UNREACHABLE for a connection that broke midway:
 * `gcs: connection to http://127.0.0.1:4443 lost while uploading gs://b/a.gz (ECONNRESET)`.
 */
export function connectionLostError(plugin: string, endpoint: string, doing: string, code: string, cause?: unknown): HoardError {
  return new HoardError("UNREACHABLE", `${plugin}: connection to ${endpoint} lost while ${doing} (${code})`, { cause });
}

/**
 * UNREACHABLE for an endpoint no connection could be made to:
 * `s3: cannot reach http://127.0.0.1:7070 (ECONNREFUSED): check --s3-endpoint and the network`.
 */
export function unreachableError(plugin: string, endpoint: string, code: string, hint: string, cause?: unknown): HoardError {
  return new HoardError("UNREACHABLE", `${plugin}: cannot reach ${endpoint} (${code}): ${hint}`, { cause });
}

/** ABORTED for a call whose signal fired: `gcs: listing gs://b/p aborted`. */
export function abortedError(plugin: string, doing: string, cause?: unknown): HoardError {
  return new HoardError("ABORTED", `${plugin}: ${doing} aborted`, { cause });
}

/** True for the error a client throws when a request's abort signal fired. */
export function isAbortError(error: unknown): boolean {
  return (error as { name?: unknown } | undefined)?.name === "AbortError";
}

/** Options of {@link abortable}. */
export interface AbortableOptions {
  signal?: AbortSignal;
  /** The ABORTED error, given the signal's reason. */
  aborted(reason: unknown): HoardError;
  /** Gives up after this long (a client whose requests cannot be cancelled), failing with `deadline()`. */
  deadlineMs?: number;
  deadline?(): HoardError;
}

/**
 * Runs one call of a client that cannot be cancelled: the call fails with ABORTED as soon as the
 * signal fires (or at once when it already has), and with `deadline()` when no answer came within
 * `deadlineMs`; the request itself goes on in the background and ends on its own timeout.
 */
export function abortable<T>(work: () => Promise<T>, options: AbortableOptions): Promise<T> {
  const { signal, deadlineMs, deadline } = options;
  if (signal?.aborted) return Promise.reject(options.aborted(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const timer = deadlineMs !== undefined && deadline ? setTimeout(() => reject(deadline()), deadlineMs) : undefined;
    const onAbort = () => reject(options.aborted(signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    work()
      .then(resolve, reject)
      .finally(() => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      });
  });
}
