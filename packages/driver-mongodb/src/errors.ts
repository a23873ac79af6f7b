import { HoardError, redactUrl } from "@hoard/core";
import { passwordOf } from "./connection-string.js";

interface DriverErrorShape {
  name?: unknown;
  code?: unknown;
  codeName?: unknown;
  message?: unknown;
}

/**
 * Converts an error of the MongoDB driver into a HoardError, once, at the edge: unreachable servers,
 * failed authentication and missing privileges get their own codes and a message that says what to
 * check; the password never appears in it.
 */
export function toMongoError(error: unknown, action: string, url: string): HoardError {
  if (HoardError.isInstance(error)) return error;
  const shape = (typeof error === "object" && error !== null ? error : {}) as DriverErrorShape;
  const name = typeof shape.name === "string" ? shape.name : "";
  const detail = scrub(typeof shape.message === "string" ? shape.message : String(error), url);
  const where = redactUrl(url);
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
    return new HoardError("UNREACHABLE", `mongodb: ${action}: cannot reach ${where} (${detail})`, { cause: error });
  }
  if (name === "MongoParseError" || name === "MongoInvalidArgumentError") {
    return new HoardError("INVALID_ARGUMENT", `mongodb: invalid connection string ${where} (${detail})`, { cause: error });
  }
  return new HoardError("TOOL_FAILED", `mongodb: ${action} failed: ${detail}`, { cause: error });
}

/** Removes the URL's password from a message, in case a server or driver echoes it. */
function scrub(message: string, url: string): string {
  let password: string | undefined;
  try {
    password = passwordOf(url);
  } catch {
    password = undefined;
  }
  return password ? message.split(password).join("***") : message;
}
