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
/** `INSERT INTO `t` VALUES ` or, with --complete-insert, `INSERT INTO `t` (`a`, `b`) VALUES `. */
const insertStatement = /^INSERT (?:IGNORE )?INTO (`(?:[^`]|``)+`) (?:\((?:`(?:[^`]|``)*`(?:, ?)?)*\) )?VALUES ?/;
/** The start of a line that is looked at: enough for every statement header mariadb-dump writes. */
const scannedLineBytes = 4096;

function unquote(name: string): string {
  return name.startsWith("`") ? name.slice(1, -1).replaceAll("``", "`") : name;
}

const quote = 0x27;
const backslash = 0x5c;
const open = 0x28;
const close = 0x29;
const semicolon = 0x3b;

/**
 * Counts the rows of `INSERT ... VALUES (...),(...);` (one line, or with newer mariadb-dump one
 * row per line): opening parentheses at depth 0 outside strings (escaped with backslashes, as
 * mariadb-dump writes them), until the `;` that ends the statement.
 */
interface RowCounter {
  rows: number;
  depth: number;
  inString: boolean;
  escaped: boolean;
}

/** Counts through `from`..`to`; returns the index after the statement's `;`, or -1 when it goes on. */
function countRows(counter: RowCounter, bytes: Buffer, from: number, to: number): number {
  let { rows, depth, inString, escaped } = counter;
  let end = -1;
  for (let index = from; index < to; index += 1) {
    const byte = bytes[index];
    if (inString) {
      if (escaped) escaped = false;
      else if (byte === backslash) escaped = true;
      else if (byte === quote) inString = false;
    } else if (byte === quote) inString = true;
    else if (byte === open) {
      if (depth === 0) rows += 1;
      depth += 1;
    } else if (byte === close) depth -= 1;
    else if (byte === semicolon && depth === 0) {
      end = index + 1;
      break;
    }
  }
  Object.assign(counter, { rows, depth, inString, escaped });
  return end;
}

/**
 * Reads a mariadb-dump (or mysqldump) SQL dump line by line with bounded memory: it must start as
 * the tool starts its output and end with `-- Dump completed` (the tool writes it last, so a cut
 * dump lacks it); the tables are those it creates (`CREATE TABLE`), in the databases it switches
 * to (`USE`) for an all-databases dump, each with the rows its INSERT statements hold (exact: every
 * byte of every INSERT is read; a table whose INSERTs cannot be read that way gets no count).
 */
export function dumpScanner(): { sink: Writable; result(): ArchiveCheck } {
  let head = "";
  let tail = "";
  let line: Buffer[] = [];
  let lineBytes = 0;
  /** The INSERT being counted on this line, once its header was read. */
  let counting: { item: InventoryItem; counter: RowCounter } | undefined;
  let decided = false;
  let statements = 0;
  let database: string | undefined;
  const items = new Map<string, InventoryItem>();
  const uncounted = new Set<InventoryItem>();
  const itemFor = (name: string) => {
    const key = `${database ?? ""}\x00${name}`;
    let item = items.get(key);
    if (!item) {
      item = { ...(database !== undefined && { database }), name, kind: "table", count: 0 };
      items.set(key, item);
    }
    return item;
  };
  /** Looks at the start of a line (up to scannedLineBytes); returns where an INSERT's values start, or -1. */
  const decide = (start: Buffer): number => {
    decided = true;
    const text = start.toString("utf8");
    if (text.startsWith("INSERT ")) {
      statements += 1;
      const insert = insertStatement.exec(start.toString("latin1"));
      const name = insert?.[1];
      if (!insert || !name) {
        const named = /^INSERT (?:IGNORE )?INTO (`(?:[^`]|``)+`)/.exec(text)?.[1];
        if (named) uncounted.add(itemFor(unquote(named)));
        return -1;
      }
      // The header was matched as latin1, so its length is its length in bytes.
      counting = {
        item: itemFor(unquote(Buffer.from(name, "latin1").toString("utf8"))),
        counter: { rows: 0, depth: 0, inString: false, escaped: false },
      };
      return insert[0].length;
    }
    const table = tableStatement.exec(text);
    if (table?.[1]) {
      itemFor(unquote(table[1]));
      return -1;
    }
    const switched = databaseStatement.exec(text);
    if (switched?.[1]) database = unquote(switched[1]);
    return -1;
  };
  /** The statement being counted ended: its rows go to its table. */
  const finish = () => {
    if (counting) {
      const { item, counter } = counting;
      if (counter.depth !== 0 || counter.inString) uncounted.add(item);
      else item.count = (item.count ?? 0) + counter.rows;
    }
    counting = undefined;
    // The rest of the line (nothing, for mariadb-dump) is not looked at.
    decided = true;
  };
  /** Counts `from`..`to` into the statement being counted, if any. */
  const count = (bytes: Buffer, from: number, to: number) => {
    const started = counting as { counter: RowCounter } | undefined;
    if (started && from < to && countRows(started.counter, bytes, from, to) >= 0) finish();
  };
  /** Takes the bytes `from`..`to` of the current line. */
  const take = (chunk: Buffer, from: number, to: number) => {
    if (counting) return count(chunk, from, to);
    if (decided) return;
    const piece = chunk.subarray(from, Math.min(to, from + scannedLineBytes - lineBytes));
    line.push(piece);
    lineBytes += piece.length;
    if (lineBytes >= scannedLineBytes) {
      const start = Buffer.concat(line);
      const values = decide(start);
      if (values >= 0) count(start, values, start.length);
      count(chunk, from + piece.length, to);
    }
  };
  const endLine = () => {
    if (!decided && !counting && lineBytes > 0) {
      const start = Buffer.concat(line);
      const values = decide(start);
      if (values >= 0) count(start, values, start.length);
    }
    // An INSERT whose rows go on over the next lines keeps counting.
    decided = false;
    line = [];
    lineBytes = 0;
  };
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (head.length < 16) head += chunk.subarray(0, 16).toString("latin1");
      tail = (tail + chunk.subarray(-256).toString("latin1")).slice(-256);
      let start = 0;
      for (let newline = chunk.indexOf(10, start); newline >= 0; newline = chunk.indexOf(10, start)) {
        take(chunk, start, newline);
        endLine();
        start = newline + 1;
      }
      if (start < chunk.length) take(chunk, start, chunk.length);
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
      // A dump that ends inside an INSERT fails the trailer check below; its table is not counted.
      if (counting) uncounted.add(counting.item);
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
      for (const item of uncounted) delete item.count;
      const list = [...items.values()];
      // Items of an all-databases dump name their database; those of one database do not, as the inventory of one database.
      const databases = new Set(list.map((item) => item.database));
      const single = databases.size <= 1;
      const rows = list.reduce((sum, item) => sum + (item.count ?? 0), 0);
      const inventory: Inventory = { items: single ? list.map(({ database: _, ...item }) => item) : list, exactCounts: true };
      return {
        summary: `complete SQL dump, ${list.length} tables${single ? "" : ` in ${databases.size} databases`}, ${rows} rows in ${statements} INSERT statements`,
        inventory,
      };
    },
  };
}
