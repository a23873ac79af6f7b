/**
 * Stable error codes. A code never changes meaning once released; callers branch on it.
 */
export type HoardErrorCode =
  | "INVALID_ARGUMENT"
  | "UNKNOWN_SCHEME"
  | "PLUGIN_NOT_INSTALLED"
  | "TOOL_NOT_FOUND"
  | "TOOL_FAILED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "TARGET_NOT_EMPTY"
  | "ACCESS_DENIED"
  | "UNAUTHENTICATED"
  | "UNREACHABLE"
  | "CORRUPT_ARCHIVE"
  | "UNSUPPORTED_FORMAT"
  | "ABORTED"
  | "STORAGE_FAILED"
  | "DISK_FULL"
  | "INTERNAL";

const marker = Symbol.for("hoard.error");

export interface HoardErrorOptions {
  cause?: unknown;
  /** Extra detail for `--debug` output and programmatic callers, e.g. the tail of a tool's stderr. */
  detail?: string;
}

/**
 * The one error class of hoard. `message` is written for the person running the command: it says
 * what failed and, where possible, what to do about it. It never contains a secret.
 */
export class HoardError extends Error {
  readonly code: HoardErrorCode;
  readonly detail: string | undefined;
  readonly [marker] = true;

  constructor(code: HoardErrorCode, message: string, options: HoardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HoardError";
    this.code = code;
    this.detail = options.detail;
  }

  /** True for any HoardError, even one created by another copy of @hoard/core. */
  static isInstance(value: unknown): value is HoardError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }
}

export function isHoardError(value: unknown, code?: HoardErrorCode): value is HoardError {
  return HoardError.isInstance(value) && (code === undefined || value.code === code);
}

/** Wraps anything thrown into a HoardError, keeping HoardErrors as they are. */
export function toHoardError(error: unknown, code: HoardErrorCode, message: string): HoardError {
  if (HoardError.isInstance(error)) return error;
  return new HoardError(code, `${message}: ${describeError(error)}`, { cause: error });
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
