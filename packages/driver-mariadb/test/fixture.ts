import { readFile } from "node:fs/promises";
import { databaseOf, identifier, runSql } from "./mariadb.ts";

/** Seeds a database (given by URL, with the account that will own the objects) with fixture.sql. */
export async function seedFixture(url: string): Promise<void> {
  await runSql(url, await readFile(new URL("fixture.sql", import.meta.url), "utf8"));
}

const tableQueries: Record<string, string> = {
  "every type ✓": `SELECT ${[
    "`id`",
    "`text ü`",
    "HEX(`text ü`)",
    "`varchar`",
    "CONCAT('[', `char`, ']')",
    "HEX(`blob`)",
    "LENGTH(`blob`)",
    "HEX(`varbinary`)",
    "`json`",
    "`decimal`",
    "`datetime`",
    "`timestamp`",
    "UNIX_TIMESTAMP(`timestamp`)",
    "`date`",
    "`time`",
    "`year`",
    "`bit` + 0",
    "`enum`",
    "`set`",
    "`float`",
    "CAST(`float` AS DOUBLE)",
    "`double`",
    "`tinyint`",
    "`bigint`",
    "`unsigned bigint`",
    "`uuid`",
    "`inet6`",
    "`col``with``backticks`",
    "`virtual`",
    "`stored`",
  ].join(", ")} FROM \`every type ✓\` ORDER BY \`id\``,
};

const schemaQueries: Record<string, string> = {
  tables:
    "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION, AUTO_INCREMENT, CREATE_OPTIONS, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
  columns:
    "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, IS_GENERATED, GENERATION_EXPRESSION, COLUMN_COMMENT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION",
  indexes:
    "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, INDEX_TYPE FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
  constraints:
    "SELECT TABLE_NAME, CONSTRAINT_NAME, CONSTRAINT_TYPE FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY TABLE_NAME, CONSTRAINT_NAME",
  foreignKeys:
    "SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME, UPDATE_RULE, DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY CONSTRAINT_NAME",
  checks:
    "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY TABLE_NAME, CONSTRAINT_NAME",
  views:
    "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE, DEFINER, SECURITY_TYPE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, ALGORITHM FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
  triggers:
    "SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_STATEMENT, ACTION_TIMING, SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY TRIGGER_NAME",
  routines:
    "SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_BODY, ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE, SQL_MODE, ROUTINE_COMMENT, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY ROUTINE_NAME",
  parameters:
    "SELECT SPECIFIC_NAME, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = DATABASE() ORDER BY SPECIFIC_NAME, ORDINAL_POSITION",
  events:
    "SELECT EVENT_NAME, DEFINER, TIME_ZONE, EVENT_BODY, EVENT_DEFINITION, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, SQL_MODE, STARTS, ENDS, STATUS, ON_COMPLETION, EVENT_COMMENT FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME",
  calls: "SELECT `doubled ✓`(21.25)",
  sequence:
    "SELECT next_not_cached_value, minimum_value, maximum_value, start_value, increment, cache_size, cycle_option FROM `order number`",
};

/**
 * Reads back everything the fixture covers, as text per query: schema from information_schema,
 * `SHOW CREATE TABLE` (which carries AUTO_INCREMENT) for every table, view and sequence, and every
 * table's rows ordered by primary key, blobs as hex. The database's own name is replaced so two
 * databases can be compared.
 */
export async function snapshotFixture(url: string): Promise<Record<string, string>> {
  const database = databaseOf(url);
  const snapshot: Record<string, string> = {};
  const query = async (sql: string) =>
    (await runSql(url, `SET time_zone = '+05:30'; ${sql}`, { columnNames: true })).replaceAll(database, "<database>");
  for (const [name, sql] of Object.entries(schemaQueries)) {
    snapshot[name] = await query(sql);
  }
  const tables = (await runSql(url, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME"))
    .split("\n")
    .filter(Boolean);
  for (const table of tables) {
    snapshot[`create ${table}`] = await query(`SHOW CREATE TABLE ${identifier(table)}`);
    snapshot[`rows ${table}`] = await query(tableQueries[table] ?? `SELECT * FROM ${identifier(table)} ORDER BY 1`);
  }
  return snapshot;
}
