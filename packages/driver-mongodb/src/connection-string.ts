import { HoardError } from "@hoard/core";
import { percentDecodes as decodes } from "@hoard/core/plugin";

/** The parts of a `mongodb://` or `mongodb+srv://` URL that hoard looks at; everything else is passed on untouched. */
export interface MongoUrlParts {
  scheme: "mongodb" | "mongodb+srv";
  /** `user:password` as written (percent-encoded), without the `@`; empty when the URL has none. */
  credentials: string;
  /** `host1:27017,host2:27017` as written. */
  hosts: string;
  /** The database named in the path, decoded; undefined when the path names none. */
  database: string | undefined;
  /** The query string without `?`; empty when there is none. */
  query: string;
}

const expectedForm = "expected mongodb://[user:password@]host[:port][,host...]/[database][?options] or mongodb+srv://";

/** Query parameters whose value is a secret (or holds one, like AWS_SESSION_TOKEN in authMechanismProperties). */
const secretParameter = /pass|secret|token|key|credential|authMechanismProperties/i;

/**
 * The URL with its password replaced by `***`, for messages. It never parses the URL, so it works on
 * any text: the user information ends at the LAST `@` (a password may hold an unencoded `@`, `/`,
 * `?` or `#`, and a seed list may name several hosts), and the values of secret-looking options
 * are hidden too. When in doubt it hides more than the password, never less.
 */
export function redactMongoUrl(url: string): string {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)(.*)$/s.exec(url);
  if (!match) return url;
  const prefix = match[1] as string;
  let rest = match[2] as string;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const userInformation = rest.slice(0, at);
    const colon = userInformation.indexOf(":");
    if (colon >= 0) rest = `${userInformation.slice(0, colon)}:***@${rest.slice(at + 1)}`;
  }
  rest = rest.replace(/([?&])([^=&#]*)=([^&#]*)/g, (whole, separator: string, key: string) =>
    secretParameter.test(key) ? `${separator}${key}=***` : whole,
  );
  return prefix + rest;
}

/** The error for a URL that is not a MongoDB connection string: INVALID_ARGUMENT, the URL redacted, then why. */
export function invalidMongoUrl(url: string, reason: string, cause?: unknown): HoardError {
  return new HoardError("INVALID_ARGUMENT", `mongodb: invalid database URL ${redactMongoUrl(url)}: ${reason}`, { cause });
}

/** Why the user information is invalid, or undefined. The reasons never quote the URL: it holds the password. */
function credentialsProblem(credentials: string): string | undefined {
  if (credentials === "") return "the user information before @ is empty";
  const colon = credentials.indexOf(":");
  const user = colon < 0 ? credentials : credentials.slice(0, colon);
  const password = colon < 0 ? undefined : credentials.slice(colon + 1);
  if (user === "") return "the user name before the password is empty";
  if (/[[\]]/.test(user)) return "the user name holds an unencoded [ or ]: percent-encode it (%5B, %5D)";
  if (!decodes(user)) return "bad percent-encoding in the user name (a % must start %XX, write % itself as %25)";
  if (password !== undefined) {
    if (/[:[\]]/.test(password)) return "the password holds an unencoded :, [ or ]: percent-encode it (%3A, %5B, %5D)";
    if (!decodes(password)) return "bad percent-encoding in the password (a % must start %XX, write % itself as %25)";
  }
  return undefined;
}

/** Why the host list is invalid, or undefined. */
function hostsProblem(hosts: string, srv: boolean): string | undefined {
  if (hosts === "") return "it names no host (expected host[:port] after //)";
  const entries = hosts.split(",");
  if (srv && (entries.length > 1 || /:\d*$/.test(hosts))) return "a mongodb+srv:// URL names one host name, without a port";
  for (const [index, entry] of entries.entries()) {
    const which = entries.length > 1 ? `host ${index + 1} of the host list` : "the host";
    if (entry === "") return `${which} is empty`;
    const hostAndPort = /^(\[[0-9A-Fa-f:.]+(?:%[^\]]*)?\]|[^:[\]]+)(?::(.*))?$/.exec(entry);
    if (!hostAndPort) return `${which} is not host[:port] (an IPv6 address goes in brackets: [::1]:27017)`;
    const name = hostAndPort[1] as string;
    const port = hostAndPort[2];
    if (!name.startsWith("[") && !/^[A-Za-z0-9._~%!$&'()*+;=-]+$/.test(name)) return `${which} holds characters a host name cannot`;
    if (!decodes(name)) return `bad percent-encoding in ${which}`;
    if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) {
      return `the port of ${which} is not a number from 1 to 65535`;
    }
  }
  return undefined;
}

/** Why the path (the database) is invalid, or undefined. */
function databaseProblem(path: string): string | undefined {
  if (!decodes(path)) return "bad percent-encoding in the database name";
  if (/[/\\."$\0]/.test(decodeURIComponent(path))) return 'a database name cannot hold /, \\, ., ", $ or NUL';
  return undefined;
}

function queryProblem(query: string): string | undefined {
  for (const pair of query.split("&")) {
    if (!decodes(pair.replaceAll("+", " "))) return "bad percent-encoding in the options after ?";
  }
  return undefined;
}

/**
 * Splits a MongoDB connection string along the grammar of the MongoDB connection string
 * specification (the WHATWG URL parser cannot read a seed list `host1,host2:27018`). A string that
 * is not one fails with INVALID_ARGUMENT: `mongodb: invalid database URL <redacted>: <reason>`,
 * where neither the URL nor the reason shows the password.
 */
export function parseMongoUrl(url: string): MongoUrlParts {
  const schemeMatch = /^(mongodb(?:\+srv)?):\/\//i.exec(url);
  if (!schemeMatch) throw invalidMongoUrl(url, expectedForm);
  const scheme = (schemeMatch[1] as string).toLowerCase() as MongoUrlParts["scheme"];
  const rest = url.slice(schemeMatch[0].length);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const tail = authorityEnd < 0 ? "" : rest.slice(authorityEnd);
  // An "@" past the authority, in a URL whose authority has none, is most likely a password that
  // holds an unencoded "/", "?" or "#": say so with whatever else is wrong.
  const hint =
    !authority.includes("@") && tail.includes("@") ? " (if the password holds /, ? or #, percent-encode them: %2F, %3F, %23)" : "";
  const fail = (reason: string): HoardError => invalidMongoUrl(url, `${reason}${hint}`);

  const ats = authority.split("@").length - 1;
  if (ats > 1) throw fail("the user name or password holds an unencoded @: write it as %40");
  const at = authority.indexOf("@");
  const credentials = at < 0 ? "" : authority.slice(0, at);
  const hosts = at < 0 ? authority : authority.slice(at + 1);
  if (at >= 0) {
    const problem = credentialsProblem(credentials);
    if (problem) throw fail(problem);
  }
  const hostProblem = hostsProblem(hosts, scheme === "mongodb+srv");
  if (hostProblem) throw fail(hostProblem);

  const fragment = tail.indexOf("#");
  if (fragment >= 0) throw fail("a # is not allowed in a connection string (percent-encode it as %23)");
  const question = tail.indexOf("?");
  const path = (question < 0 ? tail : tail.slice(0, question)).replace(/^\//, "");
  const query = question < 0 ? "" : tail.slice(question + 1);
  const pathProblem = databaseProblem(path);
  if (pathProblem) throw fail(pathProblem);
  const optionsProblem = queryProblem(query);
  if (optionsProblem) throw fail(optionsProblem);
  return {
    scheme,
    credentials,
    hosts,
    database: path === "" ? undefined : decodeURIComponent(path),
    query,
  };
}

/** Joins the parts back into a connection string. */
export function formatMongoUrl(parts: MongoUrlParts): string {
  const credentials = parts.credentials === "" ? "" : `${parts.credentials}@`;
  const database = parts.database === undefined ? "" : encodeURIComponent(parts.database);
  const query = parts.query === "" ? "" : `?${parts.query}`;
  return `${parts.scheme}://${credentials}${parts.hosts}/${database}${query}`;
}

/** The password of the URL, decoded, or undefined; used to scrub messages from the server. */
export function passwordOf(url: string): string | undefined {
  const { credentials } = parseMongoUrl(url);
  const colon = credentials.indexOf(":");
  if (colon < 0) return undefined;
  const encoded = credentials.slice(colon + 1);
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
}

/**
 * Removes the URL's password from a text (a driver's or tool's message), in every form it may take
 * there: the whole URL, the password as written (percent-encoded) and decoded.
 */
export function scrubSecrets(text: string, url: string): string {
  let scrubbed = text.split(url).join(redactMongoUrl(url));
  let encoded: string | undefined;
  let decoded: string | undefined;
  try {
    const { credentials } = parseMongoUrl(url);
    const colon = credentials.indexOf(":");
    if (colon >= 0) {
      encoded = credentials.slice(colon + 1);
      decoded = passwordOf(url);
    }
  } catch {
    // An unparsable URL: the whole of it is already replaced.
  }
  for (const secret of [encoded, decoded]) {
    if (secret) scrubbed = scrubbed.split(secret).join("***");
  }
  return scrubbed;
}

/** The hosts of the URL as host:port (27017 when the URL names no port), for messages; the name alone for mongodb+srv. */
export function hostsOf(url: string): string {
  const { scheme, hosts } = parseMongoUrl(url);
  if (scheme === "mongodb+srv") return hosts;
  return hosts
    .split(",")
    .map((host) => (/^\[.*\]$|^[^:[]+$/.test(host) ? `${host}:27017` : host))
    .join(", ");
}

/** The value of a URI option (names are case-insensitive), or undefined. */
export function uriOption(url: string, name: string): string | undefined {
  const { query } = parseMongoUrl(url);
  for (const [key, value] of new URLSearchParams(query)) {
    if (key.toLowerCase() === name.toLowerCase()) return value;
  }
  return undefined;
}

/**
 * The connection timeouts hoard applies: `serverSelectionTimeoutMS` (how long to wait for a server
 * that answers) and `connectTimeoutMS` (how long one connection and its handshake may take), both
 * `connectTimeoutMs`, unless the URL sets them itself. socketTimeoutMS stays unset: a server may
 * rightly be silent for minutes while it builds an index.
 */
export function connectionTimeouts(
  url: string,
  connectTimeoutMs: number,
): { serverSelectionTimeoutMS?: number; connectTimeoutMS?: number } {
  const timeouts: { serverSelectionTimeoutMS?: number; connectTimeoutMS?: number } = {};
  if (uriOption(url, "serverSelectionTimeoutMS") === undefined) timeouts.serverSelectionTimeoutMS = connectTimeoutMs;
  if (uriOption(url, "connectTimeoutMS") === undefined) timeouts.connectTimeoutMS = connectTimeoutMs;
  return timeouts;
}

/** How long server selection waits for this URL: its own serverSelectionTimeoutMS, else `connectTimeoutMs`. */
export function serverSelectionTimeout(url: string, connectTimeoutMs: number): number {
  const own = Number(uriOption(url, "serverSelectionTimeoutMS"));
  return Number.isFinite(own) && own > 0 ? own : connectTimeoutMs;
}

/** The URL with hoard's connection timeouts added as URI options (for the tools' private configuration file). */
export function withTimeouts(url: string, connectTimeoutMs: number): string {
  const parts = parseMongoUrl(url);
  const added = Object.entries(connectionTimeouts(url, connectTimeoutMs)).map(([key, value]) => `${key}=${value}`);
  if (added.length === 0) return url;
  const query = [parts.query, ...added].filter((part) => part !== "").join("&");
  return formatMongoUrl({ ...parts, query });
}

/**
 * The URL without its database, for mongorestore: the tools treat a database in the URI as `--db`,
 * which filters an archive instead of renaming it. The database also named the authentication
 * database, so it moves to `authSource` when the URL has credentials and no `authSource` of its own.
 */
export function withoutDatabase(url: string): string {
  const parts = parseMongoUrl(url);
  if (parts.database === undefined) return url;
  const parameters = new URLSearchParams(parts.query);
  const hasAuthSource = [...parameters.keys()].some((key) => key.toLowerCase() === "authsource");
  let query = parts.query;
  if (parts.credentials !== "" && !hasAuthSource) {
    const authSource = `authSource=${encodeURIComponent(parts.database)}`;
    query = query === "" ? authSource : `${query}&${authSource}`;
  }
  return formatMongoUrl({ ...parts, database: undefined, query });
}
