import { HoardError } from "@hoard/core";
import { secondsText } from "@hoard/core/plugin";
import { hostsOf, redactMongoUrl, scrubSecrets, serverSelectionTimeout } from "./connection-string.js";

interface DriverErrorShape {
  name?: unknown;
  code?: unknown;
  codeName?: unknown;
  message?: unknown;
}

export interface MongoErrorContext {
  /** How long server selection waited, to say so when no server answered. */
  timeoutMs?: number;
}

/**
 * Converts an error of the MongoDB driver into a HoardError, once, at the edge: unreachable servers,
 * failed authentication and missing privileges get their own codes and a message that says what to
 * check; the password never appears in it.
 */
export function toMongoError(error: unknown, action: string, url: string, context: MongoErrorContext = {}): HoardError {
  if (HoardError.isInstance(error)) return error;
  const shape = (typeof error === "object" && error !== null ? error : {}) as DriverErrorShape;
  const name = typeof shape.name === "string" ? shape.name : "";
  const detail = scrubSecrets(typeof shape.message === "string" ? shape.message : String(error), url);
  const where = redactMongoUrl(url);
  if (name === "AbortError") {
    return new HoardError("ABORTED", `mongodb: ${action} was stopped`, { cause: error });
  }
  if (shape.code === 18 || shape.codeName === "AuthenticationFailed") {
    return new HoardError(
      "UNAUTHENTICATED",
      `mongodb: ${action}: authentication failed for ${where}; check the user, password and authSource in the URL (${detail})`,
      { cause: error },
    );
  }
  if (shape.code === 13 || shape.codeName === "Unauthorized") {
    return new HoardError("ACCESS_DENIED", `mongodb: ${action}: the user in ${where} lacks a privilege (${detail})`, { cause: error });
  }
  if (/^Mongo(ServerSelection|Network|NetworkTimeout|TopologyClosed)Error$/.test(name)) {
    const within =
      name === "MongoServerSelectionError" && context.timeoutMs !== undefined ? ` within ${secondsText(context.timeoutMs)}` : "";
    return new HoardError(
      "UNREACHABLE",
      `mongodb: ${action}: cannot reach ${where}: no usable answer from ${safeHosts(url)}${within}; check the host and port in the URL (${detail})`,
      { cause: error },
    );
  }
  if (name === "MongoParseError" || name === "MongoInvalidArgumentError" || name === "MongoAPIError") {
    return new HoardError("INVALID_ARGUMENT", `mongodb: invalid database URL ${where}: ${detail}`, { cause: error });
  }
  return new HoardError("TOOL_FAILED", `mongodb: ${action} failed: ${detail}`, { cause: error });
}

function safeHosts(url: string): string {
  try {
    return hostsOf(url);
  } catch {
    return "the server";
  }
}

/** mongorestore's failure for a truncated or damaged archive. */
const damagedArchive = /corruption found in archive|error demultiplexing archive|CRC mismatch for namespace/;

/** What the tools' usual complaints mean. */
export type ToolComplaint = "unauthenticated" | "unreachable" | "access-denied";

/** Recognises the tools' usual complaints in their stderr. */
export function complaintOf(stderr: string): ToolComplaint | undefined {
  if (/authentication failed|AuthenticationFailed|auth error/i.test(stderr)) return "unauthenticated";
  if (
    /server selection error|server selection timeout|no reachable servers|connection refused|connect: connection|i\/o timeout/i.test(stderr)
  ) {
    return "unreachable";
  }
  if (/not authorized|Unauthorized/i.test(stderr)) return "access-denied";
  return undefined;
}

/** What {@link toolError} needs to know about the run. */
export interface ToolErrorContext {
  url: string;
  /** Applied as connectTimeoutMS and serverSelectionTimeoutMS in the URI unless it sets them. */
  connectTimeoutMs: number;
}

/**
 * A tool's failure as the driver reports it: prefixed with the plugin's name, without the password
 * (in the message and the stderr tail), UNREACHABLE or UNAUTHENTICATED when the tool says so.
 */
export function toolError(error: unknown, options: ToolErrorContext): unknown {
  if (!HoardError.isInstance(error)) return error;
  const scrub = (text: string) => scrubSecrets(text, options.url);
  const message = scrub(error.message.startsWith("mongodb: ") ? error.message : `mongodb: ${error.message}`);
  const detail = error.detail === undefined ? undefined : scrub(error.detail);
  let code = error.code;
  if (code === "TOOL_FAILED" && error.detail !== undefined) {
    const complaint = complaintOf(error.detail);
    if (complaint === "unreachable") code = "UNREACHABLE";
    if (complaint === "unauthenticated") code = "UNAUTHENTICATED";
    // mongorestore's words for an archive that ends early or is damaged (common/archive parser.go, demultiplexer.go).
    if (complaint === undefined && damagedArchive.test(error.detail)) code = "CORRUPT_ARCHIVE";
  }
  if (code === "UNREACHABLE" && error.code === "TOOL_FAILED") {
    const within = secondsText(serverSelectionTimeout(options.url, options.connectTimeoutMs));
    return new HoardError(code, `${message} (no usable answer from ${hostsOf(options.url)} within ${within})`, { cause: error, detail });
  }
  if (message === error.message && detail === error.detail && code === error.code) return error;
  return new HoardError(code, message, { cause: error, detail });
}
