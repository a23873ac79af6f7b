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

const networkErrorCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
]);

/** The errno-style code of an error or of any error in its cause chain. */
function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (let current = error, depth = 0; current && depth < 8; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/** True when the error (or its cause) says the network connection failed or was cut. */
export function isNetworkError(error: unknown): boolean {
  return codesOf(error).some((code) => networkErrorCodes.has(code)) || /premature close|socket hang up/i.test(describeError(error));
}

/**
 * A DISK_FULL error naming the directory when `error` is "no space left" (ENOSPC) or "quota
 * exceeded" (EDQUOT) from writing a local file; undefined for any other error.
 */
export function diskFullError(error: unknown, directory: string, doing: string): HoardError | undefined {
  const code = codesOf(error).find((candidate) => candidate === "ENOSPC" || candidate === "EDQUOT");
  if (!code) return undefined;
  const what = code === "ENOSPC" ? "no space left on the device" : "disk quota exceeded";
  return new HoardError("DISK_FULL", `${doing}: ${what} in ${directory} (point TMPDIR at a larger disk)`, {
    cause: error,
  });
}

/**
 * Names the real cause of a failure while reading an object from a storage: a HoardError from
 * the storage is kept; a cut connection is UNREACHABLE, anything else STORAGE_FAILED. Never
 * CORRUPT_ARCHIVE: the archive was not what failed.
 */
export function downloadError(error: unknown, storageUrl: string, key: string): HoardError {
  if (HoardError.isInstance(error) && error.code !== "INTERNAL") return error;
  if (isNetworkError(error)) {
    return new HoardError("UNREACHABLE", `connection to ${storageUrl} lost while downloading ${key} (${describeError(error)})`, {
      cause: error,
    });
  }
  return new HoardError("STORAGE_FAILED", `downloading ${key} from ${storageUrl} failed: ${describeError(error)}`, { cause: error });
}
