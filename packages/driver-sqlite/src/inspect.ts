import { Writable } from "node:stream";
import type { ArchiveCheck, InventoryItem } from "@hoard/core";
import { HoardError } from "@hoard/core";

/** `3.40.1 2022-12-28 14:03:47 ...` -> `3.40.1`. */
export function sqliteVersion(output: string): string {
  return /^\d+(?:\.\d+)*/.exec(output.trim())?.[0] ?? output.trim();
}

/** Tables and views, names in hex (any byte survives the list output): `type|hexname` rows. */
export const schemaQuery =
  "SELECT type, hex(name) FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";

export function parseSchema(output: string): InventoryItem[] {
  const items: InventoryItem[] = [];
  for (const row of output.split("\n")) {
    const [type = "", hex = ""] = row.trim().split("|");
    if (!type) continue;
    items.push({ name: Buffer.from(hex, "hex").toString("utf8"), kind: type === "view" ? "view" : "table" });
  }
  return items;
}

/** One query counting every table's rows: `hexname|count` rows; undefined when there are none. */
export function countsQuery(tables: string[]): string | undefined {
  if (tables.length === 0) return undefined;
  return tables.map((name) => `SELECT hex(${literal(name)}), count(*) FROM ${identifier(name)}`).join(" UNION ALL ");
}

export function parseCounts(output: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const row of output.split("\n")) {
    const [hex = "", count = ""] = row.trim().split("|");
    if (hex) counts.set(Buffer.from(hex, "hex").toString("utf8"), Number(count));
  }
  return counts;
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function identifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const dumpStarts = ["PRAGMA page_size=", "PRAGMA foreign_keys=OFF;", "BEGIN TRANSACTION;"];
const tableStatement = /^CREATE TABLE (?:IF NOT EXISTS )?("(?:[^"]|"")+"|'(?:[^']|'')+'|`[^`]+`|\[[^\]]+\]|[^\s(]+)/;
const scannedLineBytes = 1024;

function unquote(name: string): string {
  const first = name[0];
  if (first === '"') return name.slice(1, -1).replaceAll('""', '"');
  if (first === "'") return name.slice(1, -1).replaceAll("''", "'");
  if (first === "`" || first === "[") return name.slice(1, -1);
  return name;
}

/**
 * Reads an SQLite `.dump` line by line with bounded memory: it must start as the driver's dumps
 * (or sqlite3's own) start and end with `COMMIT;` (a cut dump lacks it); its tables are those it
 * creates.
 */
export function dumpScanner(): { sink: Writable; result(): ArchiveCheck } {
  let head = "";
  let tail = "";
  let line: Buffer[] = [];
  let lineBytes = 0;
  let inserts = 0;
  const items: InventoryItem[] = [];
  const onLine = (text: string) => {
    if (text.startsWith("INSERT INTO ")) {
      inserts += 1;
      return;
    }
    const table = tableStatement.exec(text);
    if (table?.[1]) items.push({ name: unquote(table[1]), kind: "table" });
  };
  const endLine = () => {
    onLine(Buffer.concat(line).toString("utf8"));
    line = [];
    lineBytes = 0;
  };
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (head.length < 32) head += chunk.subarray(0, 32).toString("latin1");
      tail = (tail + chunk.subarray(-64).toString("latin1")).slice(-64);
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
          `sqlite: the archive is not an SQLite dump (it begins with ${JSON.stringify(head.slice(0, 20))})`,
        );
      }
      if (!/(?:^|\n)COMMIT;\s*$/.test(tail))
        throw new HoardError("CORRUPT_ARCHIVE", "sqlite: the dump ends before its COMMIT: it is truncated");
      return {
        summary: `complete SQLite dump, ${items.length} tables, ${inserts} INSERT statements`,
        inventory: { items, exactCounts: false },
      };
    },
  };
}
