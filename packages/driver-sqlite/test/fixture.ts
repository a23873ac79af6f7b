import { readFile } from "node:fs/promises";
import { parseSqliteUrl } from "../src/options.ts";
import { sqlite } from "./sqlite.ts";

const fixture = readFile(new URL("./fixture.sql", import.meta.url), "utf8");

/** Fills a database file with the fixture: several tables (one WITHOUT ROWID, one with a space in its name), BLOBs, NULLs, unicode, an index, a view, a trigger, an FTS5 table. */
export async function seedFixture(url: string): Promise<void> {
  await sqlite(parseSqliteUrl(url), await fixture);
}

/** One query per line of output, so values with line breaks cannot shift the rows. */
async function rows(file: string, sql: string): Promise<string[]> {
  const output = await sqlite(file, `SELECT json_group_array(row) FROM (${sql})`, { readonly: true });
  return JSON.parse(output) as string[];
}

/** Every value with its exact type: `quote()` tells 1, 1.0, '1' and X'31' apart; reals with all their digits. */
function exact(column: string): string {
  const name = `"${column.replaceAll('"', '""')}"`;
  return `CASE typeof(${name}) WHEN 'real' THEN printf('real %!.17g', ${name}) ELSE quote(${name}) END`;
}

/** Everything the fixture covers, read with sqlite3 itself (not through the driver). */
export async function snapshotFixture(url: string): Promise<unknown> {
  const file = parseSqliteUrl(url);
  const settings = await sqlite(
    file,
    "SELECT json_array((SELECT user_version FROM pragma_user_version), (SELECT application_id FROM pragma_application_id), (SELECT journal_mode FROM pragma_journal_mode), (SELECT page_size FROM pragma_page_size))",
    { readonly: true },
  );
  const schema = await rows(file, "SELECT json_array(type, name, tbl_name, sql) AS row FROM sqlite_master ORDER BY type, name");
  const tables = await rows(
    file,
    "SELECT name AS row FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name",
  );
  const data: Record<string, string[]> = {};
  for (const table of tables) {
    const quoted = `"${table.replaceAll('"', '""')}"`;
    const columns = await rows(file, `SELECT name AS row FROM pragma_table_info('${table.replaceAll("'", "''")}') ORDER BY cid`);
    data[table] = (await rows(file, `SELECT json_array(${columns.map(exact).join(", ")}) AS row FROM ${quoted}`)).sort();
  }
  return {
    settings: JSON.parse(settings) as unknown,
    schema,
    data,
    view: await rows(file, "SELECT json_array(name, total) AS row FROM big_spenders ORDER BY name"),
    search: await rows(file, "SELECT body AS row FROM notes WHERE notes MATCH 'elephant OR elefant' ORDER BY rowid"),
    integrity: await sqlite(file, "PRAGMA integrity_check", { readonly: true }),
  };
}
