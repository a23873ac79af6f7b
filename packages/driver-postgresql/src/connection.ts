import { HoardError } from "@hoard/core";
import { connectTimeoutSecondsOf, decodeUrlPart, parseUrl, redactUrl, writePrivateFile } from "@hoard/core/plugin";

/** Where and as whom the tools connect, with the secrets taken out of the URL. */
export interface PostgresConnection {
  /** The URL for `--dbname`: without the password, `password=` or `sslpassword=`. */
  connectionString: string;
  database: string;
  password?: string;
  sslPassword?: string;
  /** `host:port` (or the socket directory) for messages. */
  address: string;
}

/** Query parameters that carry secrets: they never reach a command line. */
const secretParameters = new Set(["password", "sslpassword"]);

/** The longest sslpassword a PostgreSQL 15 service file line holds (libpq reads lines of up to 1023 bytes). */
const maxServiceFileValueBytes = 1000;

const decodePart = (text: string, what: string) => decodeUrlPart("postgresql", text, what);

/**
 * Reads a `postgresql://` URL and takes the secrets out of it: the password from the user
 * information or `?password=`, and `?sslpassword=`. The rest of the query is passed on as it was
 * written (libpq decodes it; re-encoding it would turn spaces into `+`, which libpq keeps).
 */
export function parsePostgresUrl(url: string): PostgresConnection {
  const parsed = parseUrl(url, "PostgreSQL URL");
  let password = decodePart(parsed.password, "password") || undefined;
  decodePart(parsed.username, "user name");
  parsed.password = "";
  let sslPassword: string | undefined;
  const kept: string[] = [];
  for (const part of parsed.search.replace(/^\?/, "").split("&")) {
    if (!part) continue;
    const equals = part.indexOf("=");
    const key = decodePart(equals < 0 ? part : part.slice(0, equals), "query");
    if (!secretParameters.has(key)) {
      kept.push(part);
      continue;
    }
    const value = decodePart(equals < 0 ? "" : part.slice(equals + 1), key);
    if (key === "password") password = value || undefined;
    else sslPassword = value || undefined;
  }
  parsed.search = kept.length > 0 ? `?${kept.join("&")}` : "";
  const database = decodePart(parsed.pathname.replace(/^\//, ""), "database name");
  if (!database) {
    throw new HoardError("INVALID_ARGUMENT", `postgresql: the URL names no database: ${redactUrl(url)} (add /dbname)`);
  }
  if (sslPassword !== undefined) {
    if (/[\r\n]|\s$/.test(sslPassword) || Buffer.byteLength(sslPassword) > maxServiceFileValueBytes) {
      throw new HoardError(
        "INVALID_ARGUMENT",
        `postgresql: the sslpassword in the database URL cannot be handed to the tools safely: it must not end in whitespace, hold a line break or be longer than ${maxServiceFileValueBytes} bytes`,
      );
    }
    if (kept.some((part) => /^service=/i.test(part))) {
      throw new HoardError(
        "INVALID_ARGUMENT",
        "postgresql: the database URL cannot have both sslpassword= and service=: put the sslpassword in the service",
      );
    }
  }
  parsed.protocol = "postgresql:";
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    connectionString: parsed.toString(),
    database,
    password,
    sslPassword,
    address: host ? `${host}:${parsed.port || "5432"}` : `the local socket (port ${parsed.port || "5432"})`,
  };
}

/** The connect timeout in whole seconds as libpq takes it: at least 2 (libpq raises 1 to 2). */
export function connectTimeoutSeconds(milliseconds: number | undefined): number {
  return connectTimeoutSecondsOf("postgresql", milliseconds, 2);
}

/** The tools' environment for one dump or restore, and how to clean up after it. */
export interface ToolEnvironment {
  env: Record<string, string | undefined>;
  /** Removes the service file, if one was written; safe to call more than once. */
  remove(): Promise<void>;
}

/**
 * The password goes into PGPASSWORD. libpq has no environment variable for sslpassword, so it
 * goes into a private connection service file (the kit's private file: mode 0600, in a fresh 0700
 * directory under the work directory) named by PGSERVICEFILE and PGSERVICE; libpq takes from a
 * service only what the connection string does not set.
 */
export async function toolEnvironment(
  connection: PostgresConnection,
  timeoutSeconds: number,
  workDirectory: string,
): Promise<ToolEnvironment> {
  const env: Record<string, string | undefined> = { PGCONNECT_TIMEOUT: String(timeoutSeconds) };
  if (connection.password) env.PGPASSWORD = connection.password;
  if (!connection.sslPassword) return { env, remove: async () => {} };
  const file = await writePrivateFile(workDirectory, "postgresql-", "pg_service.conf", `[hoard]\nsslpassword=${connection.sslPassword}\n`);
  env.PGSERVICEFILE = file.path;
  env.PGSERVICE = "hoard";
  return { env, remove: file.remove };
}
