import { HoardError, type HoardErrorCode } from "@hoard/core";
import { noAnswerError } from "@hoard/core/plugin";

/** A server or client error number found in a tool's stderr, with the line that carries it. */
interface ServerError {
  number: number;
  line: string;
}

// The shapes the tools print errors in:
//   mariadb:      ERROR 1045 (28000): Access denied for user ...      (`at line N` once statements run)
//   mariadb-dump: mariadb-dump: Got error: 1049: "Unknown database 'x'" when selecting the database
//   mariadb-dump: mariadb-dump: Couldn't execute 'SHOW ...': View 'x' references invalid table(s) ... (1356)
const errorPatterns = [/\bERROR (\d{4})\b/, /\bGot error: (\d{4})\b/, /\((\d{4})\)\s*$/];

function findServerError(stderr: string): ServerError | undefined {
  for (const text of stderr.split("\n")) {
    const line = text.trim();
    for (const pattern of errorPatterns) {
      const match = pattern.exec(line);
      if (match?.[1]) return { number: Number(match[1]), line: line.replace(/^(mariadb-dump|mysqldump|mariadb|mysql):\s*/, "") };
    }
  }
  return undefined;
}

interface Diagnosis {
  code: HoardErrorCode;
  advice: string;
}

const privilegeAdvice = "the user lacks a privilege the tool needs (see the README of @hoard/driver-mariadb)";

/** What the common error numbers mean, and what to do about them. */
const diagnoses: Record<number, Diagnosis> = {
  1045: { code: "UNAUTHENTICATED", advice: "check the user name and password in the database URL" },
  1698: { code: "UNAUTHENTICATED", advice: "check the user name and password in the database URL" },
  1049: { code: "NOT_FOUND", advice: "the database does not exist; check its name in the URL" },
  1044: { code: "ACCESS_DENIED", advice: privilegeAdvice },
  1142: { code: "ACCESS_DENIED", advice: privilegeAdvice },
  1143: { code: "ACCESS_DENIED", advice: privilegeAdvice },
  1227: { code: "ACCESS_DENIED", advice: privilegeAdvice },
  1370: { code: "ACCESS_DENIED", advice: privilegeAdvice },
  2002: { code: "UNREACHABLE", advice: "is the server running, and are the host, port or socket in the URL right?" },
  2003: { code: "UNREACHABLE", advice: "is the server running, and are the host, port or socket in the URL right?" },
  2005: { code: "UNREACHABLE", advice: "the host name in the URL does not resolve" },
  1046: {
    code: "TOOL_FAILED",
    advice: "the SQL does not say which database to use; name one in the URL, or dump with --databases",
  },
};

/** For core's `explainFailure`: the error line of the tool's stderr, with advice for the common ones. */
export function explainMariadbFailure(stderr: string): string | undefined {
  const found = findServerError(stderr);
  if (!found) return undefined;
  const diagnosis = diagnoses[found.number];
  return diagnosis ? `${found.line}: ${diagnosis.advice}` : found.line;
}

/**
 * Gives a tool failure a more precise code when its stderr says why: wrong password
 * (UNAUTHENTICATED), missing database (NOT_FOUND), missing privilege (ACCESS_DENIED), server
 * not reachable (UNREACHABLE). Anything else is returned as it is.
 */
export function classifyFailure(error: unknown): unknown {
  if (!HoardError.isInstance(error) || error.code !== "TOOL_FAILED" || !error.detail) return error;
  const found = findServerError(error.detail);
  const code = found ? diagnoses[found.number]?.code : undefined;
  if (!code || code === error.code) return error;
  return new HoardError(code, error.message, { cause: error, detail: error.detail });
}

/**
 * True when the client failed before running any statement: it could not connect, or the
 * database was refused. Once statements run, the client's errors say `at line N`.
 */
export function failedBeforeStatements(error: unknown): boolean {
  if (!HoardError.isInstance(error) || !error.detail) return false;
  const found = findServerError(error.detail);
  return found !== undefined && !/ at line \d+/.test(found.line);
}

/**
 * Adds to a restore failure that the target may be half restored: MariaDB commits every DDL
 * statement on its own, so a restore cut short leaves whatever it had created and inserted.
 */
export function partialRestoreFailure(error: unknown, target: string): unknown {
  if (!HoardError.isInstance(error)) return error;
  return new HoardError(
    error.code,
    `${error.message}; ${target} may be partially restored (MariaDB cannot roll back DDL): drop what the restore created, or restore into an empty database, before trying again`,
    { cause: error, detail: error.detail },
  );
}

/**
 * The client's connect timeout ran out during the handshake (`--connect-timeout`): the host took
 * the TCP connection and never answered. Turned into UNREACHABLE naming the address and the
 * timeout; any other error is returned as it is.
 */
export function handshakeTimeout(error: unknown, address: string, seconds: number): unknown {
  if (!HoardError.isInstance(error) || error.code === "ABORTED" || !error.detail) return error;
  if (!/\b2013\b.*handshake.*system error: (110|60|10060)\b/.test(error.detail)) return error;
  return unreachable(address, seconds, error);
}

/** `mariadb: no answer from 127.0.0.1:3306 within 15 s`. */
export function unreachable(address: string, seconds: number, cause?: HoardError): HoardError {
  return noAnswerError("mariadb", address, seconds * 1000, cause);
}

/** A `--verbose` progress line of mariadb-dump other than the one it writes before connecting. */
export function isProgressLine(line: string): boolean {
  return line.startsWith("-- ") && !line.startsWith("-- Connecting to ");
}

/** The dump's failures, without its `--verbose` progress lines (which would otherwise be the "last line"). */
export function explainDumpFailure(stderr: string): string | undefined {
  const explained = explainMariadbFailure(stderr);
  if (explained) return explained;
  const lines = stderr
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  const last = lines.filter((line) => !line.startsWith("-- ")).at(-1);
  if (last) return last;
  const step = lines.at(-1);
  return step ? `last step: ${step.replace(/^-- /, "")}` : undefined;
}
