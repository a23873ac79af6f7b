import type { FoundObjects } from "@hoard/core/plugin";

/** The kinds of objects the non-empty check reports, in the order it names them: [one, many]. */
const objectKinds: Record<string, [string, string]> = {
  table: ["table", "tables"],
  view: ["view", "views"],
  "materialized view": ["materialized view", "materialized views"],
  sequence: ["sequence", "sequences"],
  "foreign table": ["foreign table", "foreign tables"],
  type: ["type", "types"],
  function: ["function", "functions"],
  procedure: ["procedure", "procedures"],
  aggregate: ["aggregate", "aggregates"],
  schema: ["schema", "schemas"],
  database: ["other database", "other databases"],
};

/**
 * What a user put in the connected database: relations, sequences, types, functions and schemas
 * outside pg_catalog, information_schema and the toast and temporary schemas, leaving out the
 * `public` schema itself, implicit array and multirange types, table row types, and members of
 * extensions (created by CREATE EXTENSION, as template1 may hold). One row per kind: kind, count,
 * the first two names.
 */
export const userObjectsQuery = String.raw`
WITH spaces AS (
  SELECT oid, nspname FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_toast%' AND nspname NOT LIKE 'pg\_temp\_%'
), members AS (
  SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
), found AS (
  SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind,
         CASE WHEN s.nspname = 'public' THEN format('%I', c.relname) ELSE format('%I.%I', s.nspname, c.relname) END AS name
  FROM pg_class c JOIN spaces s ON s.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND (c.oid) NOT IN (SELECT objid FROM members WHERE classid = 'pg_class'::regclass)
  UNION ALL
  SELECT 'type', CASE WHEN s.nspname = 'public' THEN format('%I', t.typname) ELSE format('%I.%I', s.nspname, t.typname) END
  FROM pg_type t JOIN spaces s ON s.oid = t.typnamespace
  WHERE t.typtype <> 'm'
    AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
    AND NOT EXISTS (SELECT 1 FROM pg_type element WHERE element.typarray = t.oid)
    AND (t.oid) NOT IN (SELECT objid FROM members WHERE classid = 'pg_type'::regclass)
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
         CASE WHEN s.nspname = 'public' THEN format('%I', p.proname) ELSE format('%I.%I', s.nspname, p.proname) END
  FROM pg_proc p JOIN spaces s ON s.oid = p.pronamespace
  WHERE (p.oid) NOT IN (SELECT objid FROM members WHERE classid = 'pg_proc'::regclass)
  UNION ALL
  SELECT 'schema', format('%I', s.nspname) FROM spaces s
  WHERE s.nspname <> 'public' AND (s.oid) NOT IN (SELECT objid FROM members WHERE classid = 'pg_namespace'::regclass)
)
SELECT kind, count(*), array_to_string((array_agg(name ORDER BY name))[1:2], chr(31)) FROM found GROUP BY kind`;

/** Databases a cluster script could restore over: all but the templates, `postgres` and the connected one. */
export const otherDatabasesQuery = `
SELECT 'database', count(*), array_to_string((array_agg(format('%I', datname) ORDER BY datname))[1:2], chr(31))
FROM pg_database WHERE datname NOT IN ('template0', 'template1', 'postgres') AND datname <> current_database() HAVING count(*) > 0`;

/**
 * What a restore asks before it starts, in one psql call (each call is a process and a connection:
 * tens of milliseconds, more on a busy server): the server's version (a row `server`,
 * `server_version_num`, `server_version`) and, with `contents`, the rows of
 * {@link userObjectsQuery} and {@link otherDatabasesQuery} (whose kind is `database`).
 */
export function restoreChecksQuery(contents: boolean): string {
  const version = "SELECT 'server', current_setting('server_version_num'), current_setting('server_version')";
  if (!contents) return version;
  return `${version}
UNION ALL SELECT kind, count::text, names FROM (${userObjectsQuery}) AS objects(kind, count, names)
UNION ALL SELECT kind, count::text, names FROM (${otherDatabasesQuery}) AS others(kind, count, names)`;
}

/** What {@link restoreChecksQuery} found: the version's two fields, the user's objects, and the other databases. */
export interface RestoreChecks {
  versionNumber: string;
  versionText: string;
  found: FoundObjects[];
  otherDatabases: FoundObjects[];
}

/** Reads the output of {@link restoreChecksQuery}. */
export function parseRestoreChecks(output: string): RestoreChecks {
  const rows = parseRows(output);
  const server = rows.find((row) => row.kind === "server");
  return {
    versionNumber: server?.count ?? "",
    versionText: server?.examples ?? "",
    found: toFound(rows.filter((row) => row.kind !== "server" && row.kind !== "database")),
    otherDatabases: toFound(rows.filter((row) => row.kind === "database")),
  };
}

/** Reads the rows of either query (psql's unaligned output with hoard's separators), kinds in order. */
export function parseFound(output: string): FoundObjects[] {
  return toFound(parseRows(output));
}

interface Row {
  kind: string;
  count: string;
  examples: string;
}

function parseRows(output: string): Row[] {
  return output
    .replace(/\n$/, "")
    .split("\x1e")
    .map((row) => row.replace(/^\n/, ""))
    .filter((row) => row.trim() !== "")
    .map((row) => {
      const [kind = "", count = "0", examples = ""] = row.split("\x1f\x1d");
      return { kind, count, examples };
    });
}

function toFound(rows: Row[]): FoundObjects[] {
  const order = Object.keys(objectKinds);
  return rows
    .map(({ kind, count, examples }) => ({ kind, count: Number(count), examples: examples.split("\x1f").filter(Boolean) }))
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind))
    .map(({ kind, count, examples }) => {
      const [one, many] = objectKinds[kind] ?? [kind, `${kind}s`];
      return { kind: one, plural: many, count, examples };
    });
}
