import { HoardError, redactUrl } from "@hoard/core";

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

// The WHATWG URL parser cannot read a seed list (`host1,host2:27018`), so the connection string is
// split by hand along the grammar of the MongoDB connection string specification.
const mongoUrlPattern = /^(mongodb(?:\+srv)?):\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/i;

/** Splits a MongoDB connection string; throws INVALID_ARGUMENT (without echoing the password) when it is not one. */
export function parseMongoUrl(url: string): MongoUrlParts {
  const match = mongoUrlPattern.exec(url);
  if (!match?.[3]) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `mongodb: invalid URL ${redactUrl(url)}: expected mongodb://[user:password@]host[:port][,host...]/[database][?options] or mongodb+srv://`,
    );
  }
  const path = match[4] ?? "";
  let database: string | undefined;
  try {
    database = path === "" ? undefined : decodeURIComponent(path);
  } catch (error) {
    throw new HoardError("INVALID_ARGUMENT", `mongodb: invalid database name in ${redactUrl(url)}`, { cause: error });
  }
  return {
    scheme: (match[1] as string).toLowerCase() as MongoUrlParts["scheme"],
    credentials: match[2] ?? "",
    hosts: match[3],
    database,
    query: match[5] ?? "",
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
