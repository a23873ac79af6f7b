/**
 * Creates a PostgreSQL database of about a given size on disk for the benchmarks, filled with
 * mixed data that compresses about 3-4x with gzip: customers (names, emails, numerics, jsonb
 * profiles), orders (jsonb line items, optional free-text notes), events (uuids, timestamps, jsonb
 * payloads) and attachments (random bytea, which gzip cannot shrink beyond undoing the hex text of
 * COPY). Rows are made server-side with `INSERT ... SELECT generate_series` in batches, each one
 * psql run, until pg_database_size reaches the target.
 *
 * The database is named `hoard_bench_<size>mb` and carries a comment with the size and the
 * generator's version; a later run finds it and reuses it (`--fresh` rebuilds it). Only a server
 * that outlives the run (the machine's or HOARD_TEST_POSTGRES_URL) keeps it between runs.
 *
 *   pnpm exec tsx bench/generate-postgres.ts [--size-mb 300] [--fresh]
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { findExecutable, type PostgresServer, startPostgres } from "@hoard/test-harness";
import { assertSucceeded, collectStdout, waitForExit } from "./child-process.ts";

/** Bump when the data changes, so databases made by an older generator are rebuilt. */
const generatorVersion = 1;
const bytesPerMegabyte = 1024 * 1024;
/** On-disk bytes one unit of the batch below adds (1 customer, 3 orders, 3 events, 1/20 attachment); refined as batches run. */
const initialBytesPerUnit = 2300;
const largestBatchUnits = 40_000;
const smallestBatchUnits = 500;

/** A database ready to be dumped. */
export interface BenchmarkDatabase {
  name: string;
  /** postgresql:// URL of the database (with the server's password, if it has one). */
  url: string;
  /** pg_database_size in bytes. */
  sizeBytes: number;
  /** True when an existing database with the same size marker was used as it was. */
  reused: boolean;
  /** Seconds spent generating; 0 when reused. */
  generationSeconds: number;
}

/** What to prepare. */
export interface PrepareOptions {
  server: PostgresServer;
  /** Target size on disk in MiB (pg_database_size). */
  sizeMegabytes: number;
  /** Drop and rebuild the database even when one with the same marker exists. @default false */
  fresh?: boolean;
  /** Progress lines. @default writes to stderr */
  log?: (line: string) => void;
}

/** The database name for a size, e.g. `hoard_bench_300mb`. */
export function benchmarkDatabaseName(sizeMegabytes: number): string {
  return `hoard_bench_${sizeMegabytes}mb`;
}

function sizeMarker(sizeMegabytes: number): string {
  return `hoard-bench generator=${generatorVersion} size-mb=${sizeMegabytes}`;
}

/** Returns the benchmark database of the given size, generating it unless an identical one exists. */
export async function prepareBenchmarkDatabase(options: PrepareOptions): Promise<BenchmarkDatabase> {
  const { server, sizeMegabytes } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const name = benchmarkDatabaseName(sizeMegabytes);
  const url = server.databaseUrl(name);
  if (!options.fresh && (await readMarker(server, name)) === sizeMarker(sizeMegabytes)) {
    const sizeBytes = await databaseSize(server, name);
    log(`reusing ${name} (${formatMegabytes(sizeBytes)} MiB on disk; --fresh rebuilds it)`);
    return { name, url, sizeBytes, reused: true, generationSeconds: 0 };
  }
  const started = performance.now();
  await createEmptyDatabase(server, name);
  await runPsql(server, name, schemaSql);
  const sizeBytes = await fillDatabase(server, name, sizeMegabytes * bytesPerMegabyte, log);
  await runPsql(server, name, finishSql(sizeMarker(sizeMegabytes)));
  const generationSeconds = (performance.now() - started) / 1000;
  log(`generated ${name}: ${formatMegabytes(sizeBytes)} MiB on disk in ${generationSeconds.toFixed(1)} s`);
  return { name, url, sizeBytes: await databaseSize(server, name), reused: false, generationSeconds };
}

/** Inserts batches until the database reaches the target size, adjusting the batch size to what each batch added. */
async function fillDatabase(server: PostgresServer, name: string, targetBytes: number, log: (line: string) => void): Promise<number> {
  const emptyBytes = await databaseSize(server, name);
  let sizeBytes = emptyBytes;
  let bytesPerUnit = initialBytesPerUnit;
  let firstUnit = 1;
  while (sizeBytes < targetBytes * 0.99) {
    const wanted = Math.ceil((targetBytes - sizeBytes) / bytesPerUnit);
    const units = Math.min(largestBatchUnits, Math.max(smallestBatchUnits, wanted));
    await runPsql(server, name, batchSql, { first: String(firstUnit), units: String(units) });
    firstUnit += units;
    sizeBytes = await databaseSize(server, name);
    bytesPerUnit = Math.max(1, (sizeBytes - emptyBytes) / (firstUnit - 1));
    log(`  ${name}: ${formatMegabytes(sizeBytes)} / ${formatMegabytes(targetBytes)} MiB`);
  }
  return sizeBytes;
}

async function readMarker(server: PostgresServer, name: string): Promise<string | undefined> {
  const sql = `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '${name}'`;
  const marker = (await runPsql(server, undefined, sql)).trim();
  return marker === "" ? undefined : marker;
}

async function createEmptyDatabase(server: PostgresServer, name: string): Promise<void> {
  await runPsql(server, undefined, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE);`);
  await runPsql(server, undefined, `CREATE DATABASE "${name}";`);
}

/** pg_database_size in bytes. */
export async function databaseSize(server: PostgresServer, name: string): Promise<number> {
  return Number((await runPsql(server, name, "SELECT pg_database_size(current_database())")).trim());
}

/**
 * Runs SQL through psql (no psqlrc, stop at the first error, bare tuples) in `database` (the
 * server's maintenance database when undefined) with `variables` set for `:name` interpolation,
 * and returns what it printed.
 */
export async function runPsql(
  server: PostgresServer,
  database: string | undefined,
  sql: string,
  variables: Record<string, string> = {},
): Promise<string> {
  const psql = findExecutable("psql");
  if (psql === undefined) throw new Error("psql not found on PATH: install postgresql-client");
  const variableArguments = Object.entries(variables).flatMap(([key, value]) => ["-v", `${key}=${value}`]);
  const child = spawn(psql, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", ...variableArguments, "-f", "-"], {
    env: server.clientEnvironment(database),
    stdio: ["pipe", "pipe", "pipe"],
  });
  const stdout = collectStdout(child);
  const exited = waitForExit("psql", child);
  child.stdin.end(sql);
  assertSucceeded([await exited]);
  return stdout();
}

function formatMegabytes(bytes: number): string {
  return (bytes / bytesPerMegabyte).toFixed(0);
}

/** Tables with primary keys and one secondary index, and two helpers the batches use (dropped at the end). */
const schemaSql = `
CREATE TABLE customers (
  id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, country char(2) NOT NULL,
  balance numeric(12, 2) NOT NULL, created_at timestamptz NOT NULL, profile jsonb NOT NULL);
CREATE TABLE orders (
  id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL, total numeric(12, 2) NOT NULL,
  quantity integer NOT NULL, ordered_at timestamptz NOT NULL, shipped_at timestamptz, items jsonb NOT NULL, note text);
CREATE INDEX orders_customer_id ON orders (customer_id);
CREATE TABLE events (
  id bigint PRIMARY KEY, occurred_at timestamptz NOT NULL, kind text NOT NULL, session uuid NOT NULL, payload jsonb NOT NULL);
CREATE TABLE attachments (
  id bigint PRIMARY KEY, order_id bigint NOT NULL, file_name text NOT NULL, content_type text NOT NULL, content bytea NOT NULL);

CREATE FUNCTION bench_words(word_count bigint) RETURNS text LANGUAGE sql VOLATILE AS $$
  SELECT string_agg(words[1 + floor(random() * array_length(words, 1))::integer], ' ')
  FROM (SELECT '{the,of,and,to,in,is,was,for,on,that,with,as,by,at,from,order,customer,shipping,delivery,invoice,
    payment,refund,package,warehouse,please,thanks,call,before,after,monday,friday,morning,evening,door,left,front,
    back,office,reception,fragile,handle,care,gift,wrap,note,urgent,delayed,express,standard,return,exchange,size,
    colour,blue,red,green,black,white,large,small,medium,box,bag,label,tracking,number,address,street,city,country,
    postal,code,phone,email,account,balance,credit,card,bank,transfer,discount,coupon,loyalty,points,member,since,
    year,month,week,day,today,tomorrow,yesterday,again,never,always,sometimes,quick,slow,good,great,bad,broken,
    missing,damaged,replaced,received,sent,opened,closed,pending,review,rating,stars,product,item,quality,price,
    cheap,expensive,value}'::text[] AS words) AS vocabulary,
    generate_series(1, word_count)
$$;

-- Random bytes from the core gen_random_uuid (no pgcrypto needed): 16 bytes per uuid, 122 of their bits random.
CREATE FUNCTION bench_bytes(byte_count bigint) RETURNS bytea LANGUAGE sql VOLATILE AS $$
  SELECT substring(string_agg(uuid_send(gen_random_uuid()), ''::bytea) FROM 1 FOR byte_count::integer)
  FROM generate_series(1, (byte_count + 15) / 16)
$$;
`;

/**
 * One batch of `:units` units starting at unit `:first`: per unit one customer, three orders and
 * three events, and per twenty units one attachment of 0.5-4 KiB of random bytes. Id ranges of
 * consecutive batches follow each other without overlap.
 */
const batchSql = `
SET synchronous_commit = off;
BEGIN;
INSERT INTO customers
SELECT n, initcap(bench_words(2)),
       'user' || n || '@' || (ARRAY['example.com', 'mail.test', 'corp.example', 'shop.test'])[1 + n % 4],
       (ARRAY['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'JP', 'BR', 'IN', 'ES'])[1 + n % 10],
       round((random() * 10000)::numeric, 2),
       timestamptz '2015-01-01' + random() * interval '3650 days',
       jsonb_build_object('plan', (ARRAY['free', 'basic', 'pro', 'enterprise'])[1 + n % 4], 'newsletter', n % 3 = 0,
         'tags', to_jsonb(string_to_array(bench_words(3), ' ')), 'score', floor(random() * 1000)::integer,
         'address', jsonb_build_object('street', initcap(bench_words(2)) || ' ' || n % 200, 'city', initcap(bench_words(1))))
FROM generate_series(:first::bigint, :first + :units - 1) AS n;

INSERT INTO orders
SELECT n, 1 + n / 3, (ARRAY['pending', 'paid', 'shipped', 'delivered', 'returned'])[1 + n % 5],
       round((random() * 500)::numeric, 2), 1 + n % 7,
       timestamptz '2020-01-01' + random() * interval '1800 days',
       CASE WHEN n % 5 >= 2 THEN timestamptz '2020-01-01' + random() * interval '1800 days' END,
       jsonb_build_array(
         jsonb_build_object('sku', 'SKU-' || (n * 7919) % 100000, 'quantity', 1 + n % 4, 'price', round((random() * 100)::numeric, 2)),
         jsonb_build_object('sku', 'SKU-' || (n * 104729) % 100000, 'quantity', 1, 'price', round((random() * 100)::numeric, 2))),
       CASE WHEN n % 4 = 0 THEN bench_words(8 + n % 12) END
FROM generate_series(:first::bigint * 3, (:first + :units) * 3 - 1) AS n;

INSERT INTO events
SELECT n, timestamptz '2024-01-01' + random() * interval '365 days',
       (ARRAY['page_view', 'click', 'search', 'add_to_cart', 'checkout', 'login', 'logout'])[1 + n % 7],
       gen_random_uuid(),
       jsonb_build_object('path', '/' || replace(bench_words(2), ' ', '/'),
         'referrer', 'https://search.example/?q=' || replace(bench_words(2), ' ', '+'),
         'duration_ms', floor(random() * 5000)::integer, 'user_agent', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/' || (100 + n % 30))
FROM generate_series(:first::bigint * 3, (:first + :units) * 3 - 1) AS n;

INSERT INTO attachments
SELECT n, n * 60, 'scan-' || n || '.jpg', 'image/jpeg', bench_bytes(512 + (n * 2654435761) % 3584)
FROM generate_series(:first::bigint / 20, (:first + :units) / 20 - 1) AS n;
COMMIT;
`;

/**
 * Drops the helpers, freezes and analyses every table (so the first pg_dump does not pay for
 * setting hint bits), and writes the size marker last: a generation that stopped halfway has none.
 */
function finishSql(marker: string): string {
  return `
DROP FUNCTION bench_words(bigint);
DROP FUNCTION bench_bytes(bigint);
VACUUM (FREEZE, ANALYZE);
COMMENT ON DATABASE :"DBNAME" IS '${marker}';
`;
}

/** Command-line entry: prepares one database and prints its URL. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { "size-mb": { type: "string", default: "300" }, fresh: { type: "boolean", default: false } },
    strict: true,
  });
  const sizeMegabytes = Number(values["size-mb"]);
  if (!Number.isInteger(sizeMegabytes) || sizeMegabytes < 10) throw new Error("--size-mb must be a whole number of MiB, at least 10");
  const server = await startPostgres();
  try {
    const database = await prepareBenchmarkDatabase({ server, sizeMegabytes, fresh: values.fresh });
    process.stdout.write(`${database.url}\n`);
    if (server.origin === "throwaway") process.stderr.write("note: this was a throwaway server; the database is gone when this exits\n");
  } finally {
    await server.stop();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`generate-postgres: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
