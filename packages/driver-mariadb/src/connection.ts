import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { HoardError } from "@hoard/core";
import { decodeUrlPart, parseUrl, redactUrl, writePrivateFile } from "@hoard/core/plugin";

/** Where and as whom the tools connect, read from a `mariadb://` or `mysql://` URL. */
export interface MariadbConnection {
  /** Host name or address; undefined means the client's default (the local socket). */
  host?: string;
  port?: number;
  /** Path of a Unix socket, from `?socket=`. */
  socket?: string;
  user?: string;
  /** Never passed on a command line: see {@link writeCredentials}. */
  password?: string;
  /** Undefined when the URL names none, which means every database. */
  database?: string;
}

const supportedParameters = ["socket"];

/**
 * Reads `mariadb://user:password@host:port/database?socket=/path`. User, password and database
 * are percent-decoded; a URL without a database (`mariadb://host` or `mariadb://host/`) names none.
 */
export function parseMariadbUrl(url: string): MariadbConnection {
  const parsed = parseUrl(url, "MariaDB URL");
  if (parsed.protocol !== "mariadb:" && parsed.protocol !== "mysql:") {
    throw new HoardError("INVALID_ARGUMENT", `mariadb: expected a mariadb:// or mysql:// URL, got ${redactUrl(url)}`);
  }
  for (const key of parsed.searchParams.keys()) {
    if (!supportedParameters.includes(key)) {
      throw new HoardError(
        "INVALID_ARGUMENT",
        `mariadb: unsupported URL parameter "${key}" in ${redactUrl(url)}: only ${supportedParameters.join(", ")}; pass other client options as dump and restore options`,
      );
    }
  }
  const path = parsed.pathname.replace(/^\//, "").replace(/\/$/, "");
  if (path.includes("/")) {
    throw new HoardError("INVALID_ARGUMENT", `mariadb: the URL path must be one database name: ${redactUrl(url)}`);
  }
  // Never the URL or the text in the message: it may be (part of) the password.
  const decode = (text: string, what: string) => decodeUrlPart("mariadb", text, what);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    host: host || undefined,
    port: parsed.port ? Number(parsed.port) : undefined,
    socket: parsed.searchParams.get("socket") || undefined,
    user: decode(parsed.username, "user name") || undefined,
    password: decode(parsed.password, "password") || undefined,
    database: decode(path, "database name") || undefined,
  };
}

/**
 * Client options that say where to connect and as whom. A URL with a host always connects over
 * TCP, even to `localhost` (where the MariaDB client would otherwise pick the socket); `?socket=`
 * connects through that socket; a URL with neither leaves the choice to the client.
 */
export function connectionArguments(connection: MariadbConnection): string[] {
  const where = connection.socket
    ? ["--protocol=SOCKET", `--socket=${connection.socket}`]
    : connection.host || connection.port
      ? [
          "--protocol=TCP",
          ...(connection.host ? [`--host=${connection.host}`] : []),
          ...(connection.port ? [`--port=${connection.port}`] : []),
        ]
      : [];
  return [...where, ...(connection.user ? [`--user=${connection.user}`] : [])];
}

/** A password handed to a tool through a private option file. */
export interface ClientCredentials {
  /** `--defaults-extra-file=...` when there is a password, else nothing; must come first. */
  arguments: string[];
  /** Removes the option file; safe to call more than once. */
  remove(): Promise<void>;
}

/**
 * Writes the password to an option file (mode 0600, in a fresh private directory under `parent`)
 * so it reaches the tools without ever being on a command line, where any local user could read
 * it. The file adds to the usual option files; without a password nothing is written and the
 * client's own sources apply (option files, MYSQL_PWD, socket authentication).
 */
export async function writeCredentials(password: string | undefined, parent: string): Promise<ClientCredentials> {
  if (!password) return { arguments: [], remove: async () => {} };
  const file = await writePrivateFile(parent, "mariadb-", "client.cnf", `[client]\npassword=${quoteOptionValue(password)}\n`);
  return { arguments: [`--defaults-extra-file=${file.path}`], remove: file.remove };
}

/**
 * The user's own option file when it sets a password. The clients read `~/.my.cnf` after the
 * `--defaults-extra-file`, so a password there wins over the URL's.
 */
export async function competingOptionFile(): Promise<string | undefined> {
  const file = join(process.env.HOME || homedir(), ".my.cnf");
  try {
    return /^\s*password\s*=/m.test(await readFile(file, "utf8")) ? file : undefined;
  } catch {
    return undefined;
  }
}

/** Quotes a value for a MariaDB option file: double quotes, with the escapes the option reader undoes. */
export function quoteOptionValue(value: string): string {
  const escapes: Record<string, string> = { "\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b" };
  return `"${value.replace(/[\\"\n\r\t\b]/g, (character) => escapes[character] ?? character)}"`;
}

/** Where a connection goes, for messages: `host:port` or the socket. */
export function describeAddress(connection: MariadbConnection): string {
  if (connection.socket) return connection.socket;
  if (!connection.host && !connection.port) return "the local server (default socket)";
  return `${connection.host ?? "localhost"}:${connection.port ?? 3306}`;
}

/** A string as an SQL hex literal, `X'...'`: no escaping rules (sql_mode, character sets) to get wrong. */
export function hexLiteral(text: string): string {
  return `X'${Buffer.from(text, "utf8").toString("hex")}'`;
}

/** Quotes an identifier for SQL: backticks, with backticks inside doubled. */
export function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll("`", "``")}\``;
}
