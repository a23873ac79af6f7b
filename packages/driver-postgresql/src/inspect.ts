import { Writable } from "node:stream";
import type { ArchiveCheck, Inventory, InventoryItem } from "@hoard/core";
import { HoardError } from "@hoard/core";

/** The server's version: `server_version_num` (150019) and `server_version` (`15.19 (Debian 15.19-1.pgdg120+1)`). */
export const serverVersionQuery = "SELECT current_setting('server_version_num'), current_setting('server_version')";

/** `pg_dump (PostgreSQL) 15.19` -> `15.19`. */
export function toolVersion(output: string): string {
  return /\d+(?:\.\d+)*\S*/.exec(output.trim().split("\n")[0] ?? "")?.[0] ?? output.trim();
}

/**
 * Tables, partitioned tables, views, materialized views and sequences outside the system
 * schemas, leaving out members of extensions: schema, name, kind and count. Counts are the
 * planner's estimates (`reltuples`, absent for a table never analysed) unless `exact`, which
 * counts every table's rows (reading them all).
 */
export function inventoryQuery(exact: boolean): string {
  const count = exact
    ? `CASE WHEN c.relkind = 'r' THEN (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text END`
    : `CASE WHEN c.relkind IN ('r', 'm') AND c.reltuples >= 0 THEN c.reltuples::bigint::text END`;
  return String.raw`SELECT n.nspname, c.relname,
  CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' WHEN 'S' THEN 'sequence' ELSE 'table' END,
  coalesce(${count}, '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND c.oid NOT IN (SELECT objid FROM pg_depend WHERE deptype = 'e' AND classid = 'pg_class'::regclass)
ORDER BY 1, 2`;
}

/** psql's output of {@link inventoryQuery} (fields `\x1f\x1d`, records `\x1e`). */
export function parseInventory(output: string, exact: boolean): Inventory {
  const items: InventoryItem[] = [];
  for (const record of output.split("\x1e")) {
    if (!record.trim()) continue;
    const [schema = "", name = "", kind = "table", count = ""] = record.replace(/^\n/, "").split("\x1f\x1d");
    const counted = count.trim();
    items.push({ database: schema, name, kind: kind as InventoryItem["kind"], ...(counted !== "" && { count: Number(counted) }) });
  }
  return { items, exactCounts: exact };
}

/** The end of pg_dump's script; since 17.6, 16.10, 15.14 (and the like) a `\unrestrict <key>` line follows it. */
const trailer = /-- PostgreSQL database (?:cluster )?dump complete\s*(?:--\s*)?(?:\\unrestrict \S+\s*)?$/;
/** How much of a line is looked at: headers and COPY lines are short; rows of data may be huge. */
const scannedLineBytes = 1024;

/**
 * Reads an SQL script as pg_dump writes it (and pg_restore prints it) line by line with bounded
 * memory: counts the table of contents entries (`-- Name: ...; Type: ...; Schema: ...`), the
 * tables, views and sequences, and the rows of every COPY block; at the end, checks the
 * `-- PostgreSQL database dump complete` trailer. Returns the sink and what it found.
 */
export function scriptScanner(): { sink: Writable; result(): ArchiveCheck } {
  let line: Buffer[] = [];
  let lineBytes = 0;
  let inCopy = false;
  let rows = 0;
  let entries = 0;
  let copying: InventoryItem | undefined;
  let tail = "";
  const items = new Map<string, InventoryItem>();
  const itemFor = (name: string, schema: string, kind: InventoryItem["kind"]) => {
    const key = `${schema}\x00${name}`;
    let item = items.get(key);
    if (!item) {
      item = { database: schema, name, kind };
      items.set(key, item);
    }
    return item;
  };
  let dataFor: InventoryItem | undefined;
  const onLine = (text: string) => {
    if (inCopy) {
      if (text === "\\.") {
        inCopy = false;
        if (copying) copying.count = (copying.count ?? 0) + rows;
        copying = undefined;
        return;
      }
      rows += 1;
      return;
    }
    const header = /^-- (Data for )?Name: (.*); Type: ([A-Z ]+); Schema: ([^;]*);/.exec(text);
    if (header) {
      entries += 1;
      const [, data, name = "", type = "", schema = ""] = header;
      if (data && type === "TABLE DATA") dataFor = itemFor(name, schema, "table");
      else if (type === "TABLE") itemFor(name, schema, "table");
      else if (type === "VIEW" || type === "MATERIALIZED VIEW") itemFor(name, schema, "view");
      else if (type === "SEQUENCE") itemFor(name, schema, "sequence");
      return;
    }
    if (text.startsWith("COPY ") && text.endsWith("FROM stdin;")) {
      inCopy = true;
      rows = 0;
      copying = dataFor;
      dataFor = undefined;
    }
  };
  const endLine = () => {
    onLine(Buffer.concat(line).toString("utf8").replace(/\r$/, ""));
    line = [];
    lineBytes = 0;
  };
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      tail = (tail + chunk.subarray(-256).toString("latin1")).slice(-256);
      let start = 0;
      for (let newline = chunk.indexOf(10, start); newline >= 0; newline = chunk.indexOf(10, start)) {
        if (lineBytes < scannedLineBytes) line.push(chunk.subarray(start, Math.min(newline, start + scannedLineBytes - lineBytes)));
        endLine();
        start = newline + 1;
      }
      if (start < chunk.length && lineBytes < scannedLineBytes) {
        const piece = chunk.subarray(start, Math.min(chunk.length, start + scannedLineBytes - lineBytes));
        line.push(piece);
        lineBytes += piece.length;
      }
      done();
    },
    final(done) {
      if (lineBytes > 0) endLine();
      done();
    },
  });
  return {
    sink,
    result() {
      if (inCopy) throw new HoardError("CORRUPT_ARCHIVE", "postgresql: the dump ends inside the data of a table: it is truncated");
      if (!trailer.test(tail)) {
        throw new HoardError(
          "CORRUPT_ARCHIVE",
          `postgresql: the dump does not end with "-- PostgreSQL database dump complete": it is truncated`,
        );
      }
      const list = [...items.values()];
      const tables = list.filter((item) => item.kind === "table");
      const total = tables.reduce((sum, item) => sum + (item.count ?? 0), 0);
      return {
        summary: `${entries} entries in the table of contents, ${tables.length} tables, ${total} rows`,
        inventory: { items: list, exactCounts: true },
      };
    },
  };
}

/** `"name"` with inner quotes doubled. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `'text'` with inner quotes doubled (standard_conforming_strings is on since PostgreSQL 9.1). */
export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
