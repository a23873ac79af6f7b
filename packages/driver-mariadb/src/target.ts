import type { Readable, Writable } from "node:stream";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StringDecoder } from "node:string_decoder";
import type { FoundObjects } from "@hoard/core/plugin";
import { hexLiteral } from "./connection.js";

/** Databases the server keeps for itself; an all-databases dump restores `mysql`, which is never empty. */
export const systemDatabases = new Set(["mysql", "information_schema", "performance_schema", "sys"]);

const kindOrder = ["table", "view", "sequence", "procedure", "function", "package", "package body", "event"];

/**
 * Tables, views, sequences, routines and events in the given databases: one row per database and
 * kind with its count and the first two names. Names are compared as bytes (hex literals): no
 * escaping to get wrong and no case folding.
 */
export function userObjectsQuery(databases: string[]): string {
  const list = databases.map(hexLiteral).join(", ");
  return `SELECT db, kind, COUNT(*), SUBSTRING_INDEX(GROUP_CONCAT(name ORDER BY name SEPARATOR '\x1f'), '\x1f', 2) FROM (
  SELECT TABLE_SCHEMA AS db, CASE TABLE_TYPE WHEN 'VIEW' THEN 'view' WHEN 'SEQUENCE' THEN 'sequence' ELSE 'table' END AS kind, TABLE_NAME AS name
    FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (${list})
  UNION ALL SELECT ROUTINE_SCHEMA, LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA IN (${list})
  UNION ALL SELECT EVENT_SCHEMA, 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN (${list})
) found GROUP BY db, kind`;
}

/** What each database holds, by kind in the order above, for the non-empty check. */
export function parseFound(output: string): Map<string, FoundObjects[]> {
  const found = new Map<string, FoundObjects[]>();
  for (const row of output.split("\n")) {
    if (!row) continue;
    const [database = "", kind = "", count = "0", examples = ""] = row.split("\t");
    const entries = found.get(database) ?? [];
    const plural = kind === "package body" ? "package bodies" : undefined;
    entries.push({ kind, plural, count: Number(count), examples: examples.split("\x1f").filter(Boolean) });
    found.set(database, entries);
  }
  for (const entries of found.values()) entries.sort((a, b) => kindOrder.indexOf(a.kind) - kindOrder.indexOf(b.kind));
  return found;
}

const databaseStatement =
  /^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:DATABASE|SCHEMA)\s+(?:\/\*!\d*\s*)?(?:IF\s+NOT\s+EXISTS\s*)?(?:\*\/\s*)?|USE\s+)(`(?:[^`]|``)+`|[^\s;`]+)/i;

/** How much of a line is kept to look for a database statement; longer lines (rows of data) are cut. */
const scannedLineLength = 4096;

/**
 * Copies `source` to `sink` and returns the databases its SQL creates or switches to (`CREATE
 * DATABASE`, `USE`), reading line by line with bounded memory.
 */
export async function databasesIn(source: Readable, sink: Writable, signal?: AbortSignal): Promise<string[]> {
  const names = new Set<string>();
  const decoder = new StringDecoder("utf8");
  let line = "";
  const scan = (text: string, final: boolean) => {
    const parts = text.split("\n");
    const last = final ? undefined : parts.pop();
    for (const [index, part] of parts.entries()) {
      const whole = index === 0 ? line + part : part;
      const match = databaseStatement.exec(whole.slice(0, scannedLineLength));
      const name = match?.[1];
      if (name) names.add(name.startsWith("`") ? name.slice(1, -1).replaceAll("``", "`") : name);
    }
    line = last === undefined ? "" : (parts.length === 0 ? line + last : last).slice(0, scannedLineLength);
  };
  const scanner = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      scan(decoder.write(chunk), false);
      callback(null, chunk);
    },
    flush(callback) {
      scan(decoder.end(), true);
      callback();
    },
  });
  await pipeline(source, scanner, sink, { signal });
  return [...names];
}
