import { HoardError } from "@hoard/core";
import { hostsOf, redactMongoUrl, scrubSecrets } from "./connection-string.js";

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
    const within = name === "MongoServerSelectionError" && context.timeoutMs !== undefined ? ` within ${seconds(context.timeoutMs)}` : "";
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

/** `15 s`, `1.5 s`. */
export function seconds(milliseconds: number): string {
  return `${Number((milliseconds / 1000).toFixed(3))} s`;
}

function safeHosts(url: string): string {
  try {
    return hostsOf(url);
  } catch {
    return "the server";
  }
}
