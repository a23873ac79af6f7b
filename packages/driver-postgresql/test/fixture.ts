import { psql } from "./postgres.ts";

/**
 * A database that is awkward to back up: odd names, every common type, NULLs, unicode, bytea with
 * every byte value, a sequence in use, an enum, a domain, a composite and a range type, a view, a
 * materialized view, functions, a trigger, foreign keys, comments and a generated column.
 */
export const fixtureSql = String.raw`
CREATE SCHEMA "Weird Schema ü";
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'éxtatic');
CREATE TYPE "Weird Schema ü".address AS (street text, zip varchar(10));
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TYPE float_range AS RANGE (subtype = float8);

CREATE TABLE "Weird Schema ü"."Table ""Quoted"" ✓" (
  id serial PRIMARY KEY,
  "Mixed Case Col" text,
  "select" text
);

CREATE TABLE everything (
  id bigserial PRIMARY KEY,
  small smallint, medium integer, large bigint,
  exact numeric(30, 10), free_numeric numeric, real_number real, double_number double precision,
  flag boolean, label varchar(20), fixed char(5), body text,
  raw bytea,
  day date, clock time, clock_tz timetz, moment timestamp, moment_tz timestamptz, span interval,
  identifier uuid, document json, binary_document jsonb,
  address inet, network cidr, hardware macaddr,
  numbers integer[], words text[], grid integer[][],
  place point, feeling mood, home "Weird Schema ü".address, amount positive_int,
  valid_range int4range, float_span float_range, search tsvector, bits bit varying(16),
  doubled bigint GENERATED ALWAYS AS (medium::bigint * 2) STORED
);

CREATE TABLE parent (id integer PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE child (
  id integer PRIMARY KEY,
  parent_id integer NOT NULL REFERENCES parent (id) ON DELETE CASCADE,
  note text CHECK (note <> '')
);
CREATE INDEX child_parent_index ON child (parent_id);

CREATE SEQUENCE invoice_number START 1000 INCREMENT 7;
SELECT nextval('invoice_number') FROM generate_series(1, 5);

CREATE TABLE audit (id serial PRIMARY KEY, changed_table text, at_count integer);
CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit (changed_table, at_count) VALUES (TG_TABLE_NAME, (SELECT count(*) FROM child));
  RETURN NEW;
END $$;
CREATE TRIGGER child_audit AFTER INSERT ON child FOR EACH ROW EXECUTE FUNCTION record_change();

CREATE FUNCTION "Weird Schema ü".greet(who text, mood mood DEFAULT 'ok') RETURNS text
  LANGUAGE sql IMMUTABLE AS $$ SELECT 'hello ' || who || ' (' || mood || ')' $$;

INSERT INTO "Weird Schema ü"."Table ""Quoted"" ✓" ("Mixed Case Col", "select")
VALUES ('naïve café', 'drop table students; --'), (NULL, ''), ('日本語テキスト 🎉', E'tab\there\nnewline\\backslash');

INSERT INTO everything (small, medium, large, exact, free_numeric, real_number, double_number, flag, label, fixed, body, raw,
  day, clock, clock_tz, moment, moment_tz, span, identifier, document, binary_document, address, network, hardware,
  numbers, words, grid, place, feeling, home, amount, valid_range, float_span, search, bits)
VALUES
  (-32768, 2147483647, -9223372036854775808, 12345678901234567890.0123456789, 1e-30, 3.4028235e38, 1.7976931348623157e308,
   true, 'label', 'ab', 'emoji 😀 and quotes '' "', (SELECT string_agg(set_byte('\x00'::bytea, 0, n), ''::bytea) FROM generate_series(0, 255) n),
   '0001-01-01', '23:59:59.999999', '12:00:00+05:30', '1999-12-31 23:59:59.123456', '2038-01-19 03:14:07.5+00', '1 year 2 mons 3 days 04:05:06.789',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1, "a": [1, 2, {"c": null}]}', '{"z": "ü", "n": 1.50}', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
   '{1,NULL,3}', '{"with space","with,comma","with\"quote",NULL}', '{{1,2},{3,4}}', '(1.5,-2.25)', 'éxtatic', ROW('Main St. 1', '12345'), 42,
   '[1,10)', '[1.5,2.5]', to_tsvector('english', 'The quick brown foxes jumped'), B'1010'),
  (0, 0, 0, 0, 'NaN', 'Infinity', '-Infinity', false, '', '', '', '',
   'infinity', '00:00', '00:00+00', '-infinity', 'infinity', '-1 days', '00000000-0000-0000-0000-000000000000', 'null', '[]', '::1', '::/0', '00:00:00:00:00:00',
   '{}', '{}', '{}', '(0,0)', 'sad', ROW(NULL, NULL), 1, 'empty', '(,)', '', B''),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

INSERT INTO parent SELECT n, 'parent ' || n FROM generate_series(1, 50) n;
INSERT INTO child SELECT n, 1 + n % 50, 'child ' || n FROM generate_series(1, 2000) n;
-- Leave a gap in the serial so the restored sequence must carry its position, not max(id).
INSERT INTO "Weird Schema ü"."Table ""Quoted"" ✓" ("Mixed Case Col") VALUES ('to be deleted');
DELETE FROM "Weird Schema ü"."Table ""Quoted"" ✓" WHERE "Mixed Case Col" = 'to be deleted';

CREATE VIEW child_summary AS
  SELECT p.name, count(c.id) AS children FROM parent p LEFT JOIN child c ON c.parent_id = p.id GROUP BY p.name;
CREATE MATERIALIZED VIEW busy_parents AS SELECT name FROM child_summary WHERE children > 39;

COMMENT ON TABLE everything IS 'every common type, ünïcode comment';
COMMENT ON COLUMN everything.raw IS 'all 256 byte values';
`;

/** Tables to compare row by row, each with its ordering. */
const tables: Array<[string, string]> = [
  [`"Weird Schema ü"."Table ""Quoted"" ✓"`, "id"],
  ["everything", "id"],
  ["parent", "id"],
  ["child", "id"],
  ["audit", "id"],
  ["busy_parents", "name"],
  ["child_summary", "name"],
];

const sequences = [`"Weird Schema ü"."Table ""Quoted"" ✓_id_seq"`, "everything_id_seq", "invoice_number", "audit_id_seq"];

export async function seedFixture(url: string): Promise<void> {
  await psql(url, fixtureSql);
}

/**
 * Everything the fixture holds, read back: the schema as pg_dump prints it (with the per-run
 * `\restrict` key removed), every row in text form, sequence positions and function results.
 */
export async function snapshotFixture(url: string, schema: (url: string) => Promise<string>): Promise<Record<string, string>> {
  const snapshot: Record<string, string> = {};
  snapshot.schema = (await schema(url))
    .split("\n")
    .filter((line) => !/^\\(un)?restrict /.test(line) && !/^-- Dumped (from|by)/.test(line))
    .join("\n");
  for (const [table, order] of tables) {
    snapshot[table] = await psql(url, `SELECT t::text FROM ${table} t ORDER BY ${order}`);
  }
  for (const sequence of sequences) {
    snapshot[sequence] = await psql(url, `SELECT last_value, is_called FROM ${sequence}`);
  }
  snapshot.functions = await psql(url, `SELECT "Weird Schema ü".greet('you'), "Weird Schema ü".greet('me', 'happy')`);
  return snapshot;
}
