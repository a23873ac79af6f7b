import { Writable } from "node:stream";
import type { ArchiveCheck, Inventory, InventoryItem } from "@hoard/core";
import { HoardError } from "@hoard/core";
import { hexLiteral, quoteIdentifier } from "./connection.js";

/** `10.11.14-MariaDB-0+deb12u2` -> MariaDB 10.11.14; `8.0.39` -> MySQL 8.0.39. */
export function serverOf(version: string): { product: string; version: string } {
  const text = version.trim();
  const number = /^\d+(?:\.\d+)*/.exec(text)?.[0] ?? text;
  return { product: /mariadb/i.test(text) ? "MariaDB" : "MySQL", version: number };
}

/**
 * `mariadb-dump from 11.4.2-MariaDB, client 10.19 ...` -> `11.4.2-MariaDB`;
 * `mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB, for debian-linux-gnu` -> `10.11.6-MariaDB`.
 */
export function dumpToolVersion(output: string): string {
  const text = output.trim().split("\n")[0] ?? "";
  return /(?:Distrib|from)\s+([^\s,]+)/.exec(text)?.[1] ?? /\d+(?:\.\d+)+\S*/.exec(text)?.[0] ?? text;
}

/** Tables, views and sequences of the given databases, with the server's row estimates (`TABLE_ROWS`). */
export function tablesQuery(databases: string[]): string {
  return `SELECT TABLE_SCHEMA, TABLE_NAME, CASE TABLE_TYPE WHEN 'VIEW' THEN 'view' WHEN 'SEQUENCE' THEN 'sequence' ELSE 'table' END, IFNULL(TABLE_ROWS, '')
FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (${databases.map(hexLiteral).join(", ")}) ORDER BY 1, 2`;
}

/** The rows of {@link tablesQuery} (tab-separated, raw). `single`: one database, whose name is left out (a restore may use another). */
export function parseTables(output: string, single: boolean): InventoryItem[] {
  const items: InventoryItem[] = [];
  for (const row of output.split("\n")) {
    if (!row) continue;
    const [database = "", name = "", kind = "table", rows = ""] = row.split("\t");
    items.push({
      ...(!single && { database }),
      name,
      kind: kind as InventoryItem["kind"],
      ...(kind === "table" && rows !== "" && { count: Number(rows) }),
    });
  }
  return items;
}

/** One query counting every table's rows exactly (for a drill), or undefined when there are none. */
export function exactCountsQuery(tables: Array<{ database: string; name: string }>): string | undefined {
  if (tables.length === 0) return undefined;
  return tables
    .map(
      ({ database, name }) =>
        `SELECT ${hexLiteral(database)}, ${hexLiteral(name)}, COUNT(*) FROM ${quoteIdentifier(database)}.${quoteIdentifier(name)}`,
    )
    .join(" UNION ALL ");
}

/** `database\tname\tcount` rows -> counts by `database\0name`. */
export function parseCounts(output: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const row of output.split("\n")) {
    if (!row) continue;
    const [database = "", name = "", count = "0"] = row.split("\t");
    counts.set(`${database}\x00${name}`, Number(count));
  }
  return counts;
}

/** How a dump begins (see output.ts), and how it ends when it is complete. */
const dumpStarts = ["/*M!999999", "-- MariaDB dump", "-- MySQL dump"];
const completed = /(^|\n)-- Dump completed[^\n]*\n*$/;
const tableStatement = /^CREATE TABLE (?:IF NOT EXISTS )?(`(?:[^`]|``)+`|\S+)/;
const databaseStatement = /^(?:CREATE DATABASE (?:\/\*!\d+ IF NOT EXISTS\*\/ |IF NOT EXISTS )?|USE )(`(?:[^`]|``)+`)/;
const scannedLineBytes = 1024;

function unquote(name: string): string {
  return name.startsWith("`") ? name.slice(1, -1).replaceAll("``", "`") : name;
}

/**
 * Reads a mariadb-dump (or mysqldump) SQL dump line by line with bounded memory: it must start as
 * the tool starts its output and end with `-- Dump completed` (the tool writes it last, so a cut
 * dump lacks it); the tables are those it creates (`CREATE TABLE`), in the databases it switches
 * to (`USE`) for an all-databases dump.
 */
export function dumpScanner(): { sink: Writable; result(): ArchiveCheck } {
  let head = "";
  let tail = "";
  let line: Buffer[] = [];
  let lineBytes = 0;
  let statements = 0;
  let database: string | undefined;
  const items: InventoryItem[] = [];
  const onLine = (text: string) => {
    const table = tableStatement.exec(text);
    if (table?.[1]) {
      items.push({ ...(database !== undefined && { database }), name: unquote(table[1]), kind: "table" });
      return;
    }
    if (text.startsWith("INSERT INTO ")) statements += 1;
    const switched = databaseStatement.exec(text);
    if (switched?.[1]) database = unquote(switched[1]);
  };
  const endLine = () => {
    onLine(Buffer.concat(line).toString("utf8"));
    line = [];
    lineBytes = 0;
  };
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (head.length < 16) head += chunk.subarray(0, 16).toString("latin1");
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
      if (!dumpStarts.some((start) => head.startsWith(start))) {
        throw new HoardError(
          "CORRUPT_ARCHIVE",
          `mariadb: the archive does not start like a mariadb-dump or mysqldump dump (${JSON.stringify(head)})`,
        );
      }
      if (!completed.test(tail)) {
        throw new HoardError(
          "CORRUPT_ARCHIVE",
          `mariadb: the dump does not end with "-- Dump completed": it is truncated (or was made with comments off)`,
        );
      }
      // Items of an all-databases dump name their database; those of one database do not, as the inventory of one database.
      const databases = new Set(items.map((item) => item.database));
      const single = databases.size <= 1;
      const inventory: Inventory = { items: single ? items.map(({ database: _, ...item }) => item) : items, exactCounts: false };
      return {
        summary: `complete SQL dump, ${items.length} tables${single ? "" : ` in ${databases.size} databases`}, ${statements} INSERT statements`,
        inventory,
      };
    },
  };
}
