/**
 * Creates a MariaDB database of about a given size on disk for the MariaDB benchmark, with the
 * shape of bench/generate-postgres.ts: customers (names, emails, DECIMAL, DATETIME(6), DOUBLE,
 * BOOLEAN, JSON profiles), orders (ENUM, SET, TIME, TINYINT UNSIGNED, JSON line items, optional
 * free-text notes, a secondary index), events (UUID, INET6, DATETIME(3), JSON payloads) and
 * attachments (0.5-4 KiB of random bytes in a MEDIUMBLOB, which a dump writes as hex with
 * --hex-blob and gzip can only shrink back to about the bytes). Rows are made in the server with
 * `INSERT ... SELECT` from the SEQUENCE engine's `seq_<first>_to_<last>` tables, one mariadb client
 * run per batch, until the tables' InnoDB files (information_schema.INNODB_SYS_TABLESPACES
 * FILE_SIZE) reach the target.
 *
 * The database is named `hoard_bench_<size>mb` and carries a COMMENT with the size and the
 * generator's version; a later run finds it and reuses it (`--fresh` rebuilds it). The machine's
 * MariaDB (127.0.0.1:3306, root) or HOARD_TEST_MARIADB_URL keeps it between runs.
 *
 *   pnpm exec tsx bench/mariadb-generate.ts [--size-mb 300] [--fresh]
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { findExecutable, type MariadbServer, startMariadb } from "@hoard/test-harness";
import { assertSucceeded, collectStdout, waitForExit } from "./child-process.ts";

/** Bump when the data changes, so databases made by an older generator are rebuilt. */
const generatorVersion = 1;
const bytesPerMegabyte = 1024 * 1024;
/** On-disk bytes one unit (1 customer, 3 orders, 3 events, 1/20 attachment) adds; refined as batches run. */
const initialBytesPerUnit = 2600;
const largestBatchUnits = 20_000;
const smallestBatchUnits = 500;

/** A MariaDB database ready to be dumped. */
export interface MariadbBenchmarkDatabase {
  name: string;
  /** mariadb:// URL of the database. */
  url: string;
  /** Bytes of the tables' InnoDB files. */
  sizeBytes: number;
  /** True when an existing database with the same marker was used as it was. */
  reused: boolean;
  /** Seconds spent generating; 0 when reused. */
  generationSeconds: number;
  /** Rows per table. */
  rows: Record<string, number>;
}

/** What to prepare. */
export interface MariadbPrepareOptions {
  server: MariadbServer;
  /** Target size on disk in MiB (the tables' InnoDB files). */
  sizeMegabytes: number;
  /** Drop and rebuild the database even when one with the same marker exists. @default false */
  fresh?: boolean;
  /** Progress lines. @default writes to stderr */
  log?: (line: string) => void;
}

/** The tables the generator makes, in the order the checks compare them. */
export const mariadbBenchmarkTables = ["attachments", "customers", "events", "orders"] as const;

/** The database name for a size, e.g. `hoard_bench_300mb`. */
export function mariadbBenchmarkDatabaseName(sizeMegabytes: number): string {
  return `hoard_bench_${sizeMegabytes}mb`;
}

function sizeMarker(sizeMegabytes: number): string {
  return `hoard-bench mariadb generator=${generatorVersion} size-mb=${sizeMegabytes}`;
}

/** Returns the benchmark database of the given size, generating it unless an identical one exists. */
export async function prepareMariadbBenchmarkDatabase(options: MariadbPrepareOptions): Promise<MariadbBenchmarkDatabase> {
  const { server, sizeMegabytes } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const name = mariadbBenchmarkDatabaseName(sizeMegabytes);
  const url = server.databaseUrl(name);
  if (!options.fresh && (await readMarker(server, name)) === sizeMarker(sizeMegabytes)) {
    const sizeBytes = await mariadbDatabaseSize(server, name);
    log(`reusing ${name} (${formatMegabytes(sizeBytes)} MiB of InnoDB files; --fresh rebuilds it)`);
    return { name, url, sizeBytes, reused: true, generationSeconds: 0, rows: await rowCounts(server, name) };
  }
  const started = performance.now();
  await runMariadbSql(server, undefined, `DROP DATABASE IF EXISTS \`${name}\`; CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4;`);
  await runMariadbSql(server, name, schemaSql);
  const sizeBytes = await fillDatabase(server, name, sizeMegabytes * bytesPerMegabyte, log);
  await runMariadbSql(server, name, finishSql(name, sizeMarker(sizeMegabytes)));
  const generationSeconds = (performance.now() - started) / 1000;
  log(`generated ${name}: ${formatMegabytes(sizeBytes)} MiB of InnoDB files in ${generationSeconds.toFixed(1)} s`);
  return {
    name,
    url,
    sizeBytes: await mariadbDatabaseSize(server, name),
    reused: false,
    generationSeconds,
    rows: await rowCounts(server, name),
  };
}

/** Inserts batches until the tables reach the target size, adjusting the batch to what each one added. */
async function fillDatabase(server: MariadbServer, name: string, targetBytes: number, log: (line: string) => void): Promise<number> {
  const emptyBytes = await mariadbDatabaseSize(server, name);
  let sizeBytes = emptyBytes;
  let bytesPerUnit = initialBytesPerUnit;
  let firstUnit = 1;
  while (sizeBytes < targetBytes * 0.99) {
    const wanted = Math.ceil((targetBytes - sizeBytes) / bytesPerUnit);
    const units = Math.min(largestBatchUnits, Math.max(smallestBatchUnits, wanted));
    await runMariadbSql(server, name, batchSql(firstUnit, units));
    firstUnit += units;
    sizeBytes = await mariadbDatabaseSize(server, name);
    bytesPerUnit = Math.max(1, (sizeBytes - emptyBytes) / (firstUnit - 1));
    log(`  ${name}: ${formatMegabytes(sizeBytes)} / ${formatMegabytes(targetBytes)} MiB`);
  }
  return sizeBytes;
}

async function readMarker(server: MariadbServer, name: string): Promise<string | undefined> {
  const marker = (
    await runMariadbSql(server, undefined, `SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${name}'`)
  ).trim();
  return marker === "" ? undefined : marker;
}

/** Bytes of the database's InnoDB files (one per table), as the file system has them. */
export async function mariadbDatabaseSize(server: MariadbServer, name: string): Promise<number> {
  const sql = `SELECT COALESCE(SUM(FILE_SIZE), 0) FROM information_schema.INNODB_SYS_TABLESPACES WHERE NAME LIKE '${name}/%'`;
  return Number((await runMariadbSql(server, undefined, sql)).trim());
}

/** Exact rows per table. */
export async function rowCounts(server: MariadbServer, name: string): Promise<Record<string, number>> {
  const sql = mariadbBenchmarkTables.map((table) => `SELECT '${table}', COUNT(*) FROM \`${table}\``).join(" UNION ALL ");
  const counts: Record<string, number> = {};
  for (const line of (await runMariadbSql(server, name, sql)).trim().split("\n")) {
    const [table, count] = line.split("\t");
    if (table !== undefined) counts[table] = Number(count);
  }
  return counts;
}

/**
 * Runs SQL with the mariadb client (no option files, batch mode, no column names, stop at the
 * first error) in `database` (none when undefined), the SQL on stdin so DELIMITER works, and returns
 * what it printed. No timeout: a batch on a busy machine may take minutes.
 */
export async function runMariadbSql(server: MariadbServer, database: string | undefined, sql: string): Promise<string> {
  const client = findExecutable("mariadb") ?? findExecutable("mysql");
  if (client === undefined) throw new Error("the mariadb client is not on PATH (install mariadb-client)");
  const child = spawn(
    client,
    [
      "--no-defaults",
      ...server.clientArguments(),
      "--batch",
      "--skip-column-names",
      "--default-character-set=utf8mb4",
      ...(database === undefined ? [] : [`--database=${database}`]),
    ],
    { env: server.clientEnvironment(), stdio: ["pipe", "pipe", "pipe"] },
  );
  const stdout = collectStdout(child);
  const exited = waitForExit("mariadb", child);
  child.stdin.end(sql);
  assertSucceeded([await exited]);
  return stdout();
}

function formatMegabytes(bytes: number): string {
  return (bytes / bytesPerMegabyte).toFixed(0);
}

const vocabulary = `the of and to in is was for on that with as by at from order customer shipping delivery invoice
payment refund package warehouse please thanks call before after monday friday morning evening door left front
back office reception fragile handle care gift wrap note urgent delayed express standard return exchange size
colour blue red green black white large small medium box bag label tracking number address street city country
postal code phone email account balance credit card bank transfer discount coupon loyalty points member since
year month week day today tomorrow yesterday again never always sometimes quick slow good great bad broken
missing damaged replaced received sent opened closed pending review rating stars product item quality price
cheap expensive value`
  .split(/\s+/)
  .filter((word) => word !== "");

/** Tables with primary keys and one secondary index, and a helper the batches use (dropped at the end). */
const schemaSql = `
CREATE TABLE customers (
  id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL, country CHAR(2) NOT NULL,
  balance DECIMAL(12, 2) NOT NULL, created_at DATETIME(6) NOT NULL, active BOOLEAN NOT NULL, score DOUBLE NOT NULL,
  profile JSON NOT NULL) ENGINE=InnoDB;
CREATE TABLE orders (
  id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL,
  status ENUM('pending', 'paid', 'shipped', 'delivered', 'returned') NOT NULL, total DECIMAL(12, 2) NOT NULL,
  quantity INT NOT NULL, priority TINYINT UNSIGNED NOT NULL, flags SET('gift', 'express', 'fragile') NOT NULL,
  delivery_window TIME, ordered_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, shipped_at DATETIME,
  items JSON NOT NULL, note TEXT, KEY orders_customer_id (customer_id)) ENGINE=InnoDB;
CREATE TABLE events (
  id BIGINT PRIMARY KEY, occurred_at DATETIME(3) NOT NULL, kind VARCHAR(20) NOT NULL, session UUID NOT NULL,
  client_ip INET6 NOT NULL, payload JSON NOT NULL) ENGINE=InnoDB;
CREATE TABLE attachments (
  id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL, file_name VARCHAR(100) NOT NULL, content_type VARCHAR(50) NOT NULL,
  content MEDIUMBLOB NOT NULL) ENGINE=InnoDB;

DELIMITER //
CREATE FUNCTION bench_words(word_count INT) RETURNS TEXT NOT DETERMINISTIC NO SQL
BEGIN
  DECLARE result TEXT DEFAULT '';
  DECLARE position INT DEFAULT 0;
  WHILE position < word_count DO
    SET result = CONCAT(result, IF(position = 0, '', ' '),
      ELT(1 + FLOOR(RAND() * ${vocabulary.length}), ${vocabulary.map((word) => `'${word}'`).join(", ")}));
    SET position = position + 1;
  END WHILE;
  RETURN result;
END//
DELIMITER ;
`;

/**
 * One batch of `units` units from unit `first`: per unit one customer, three orders and three
 * events, and per twenty units one attachment of 0.5-4 KiB of random bytes (RANDOM_BYTES gives at
 * most 1024 at a time). Id ranges of consecutive batches follow each other without overlap.
 */
function batchSql(first: number, units: number): string {
  const last = first + units - 1;
  const firstAttachment = Math.floor(first / 20);
  const lastAttachment = Math.floor((first + units) / 20) - 1;
  const attachments =
    lastAttachment >= firstAttachment
      ? `INSERT INTO attachments
SELECT seq, seq * 60, CONCAT('scan-', seq, '.jpg'), 'image/jpeg',
       LEFT(CONCAT(RANDOM_BYTES(1024), RANDOM_BYTES(1024), RANDOM_BYTES(1024), RANDOM_BYTES(1024)), 512 + (seq * 2654435761) % 3584)
FROM seq_${firstAttachment}_to_${lastAttachment};`
      : "";
  return `
SET SESSION unique_checks = 0;
START TRANSACTION;
INSERT INTO customers
SELECT seq, bench_words(2),
       CONCAT('user', seq, '@', ELT(1 + seq % 4, 'example.com', 'mail.test', 'corp.example', 'shop.test')),
       ELT(1 + seq % 10, 'DE', 'FR', 'US', 'GB', 'NL', 'SE', 'JP', 'BR', 'IN', 'ES'),
       ROUND(RAND() * 10000, 2),
       TIMESTAMP '2015-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 315360000) SECOND + INTERVAL FLOOR(RAND() * 1000000) MICROSECOND,
       seq % 3 = 0, RAND() * 1000,
       JSON_OBJECT('plan', ELT(1 + seq % 4, 'free', 'basic', 'pro', 'enterprise'), 'newsletter', seq % 3 = 0,
         'tags', JSON_ARRAY(bench_words(1), bench_words(1), bench_words(1)), 'score', FLOOR(RAND() * 1000),
         'address', JSON_OBJECT('street', CONCAT(bench_words(2), ' ', seq % 200), 'city', bench_words(1)))
FROM seq_${first}_to_${last};

INSERT INTO orders
SELECT seq, 1 + seq DIV 3, 1 + seq % 5, ROUND(RAND() * 500, 2), 1 + seq % 7, seq % 256, seq % 8,
       IF(seq % 3 = 0, NULL, SEC_TO_TIME(28800 + (seq % 40) * 900)),
       TIMESTAMP '2020-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 155520000) SECOND,
       IF(seq % 5 >= 2, TIMESTAMP '2020-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 155520000) SECOND, NULL),
       JSON_ARRAY(
         JSON_OBJECT('sku', CONCAT('SKU-', (seq * 7919) % 100000), 'quantity', 1 + seq % 4, 'price', ROUND(RAND() * 100, 2)),
         JSON_OBJECT('sku', CONCAT('SKU-', (seq * 104729) % 100000), 'quantity', 1, 'price', ROUND(RAND() * 100, 2))),
       IF(seq % 4 = 0, bench_words(8 + seq % 12), NULL)
FROM seq_${first * 3}_to_${(last + 1) * 3 - 1};

INSERT INTO events
SELECT seq, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL FLOOR(RAND() * 31536000000) / 1000 SECOND,
       ELT(1 + seq % 7, 'page_view', 'click', 'search', 'add_to_cart', 'checkout', 'login', 'logout'),
       UUID(),
       IF(seq % 2 = 0, CONCAT('::ffff:10.', seq % 256, '.', (seq DIV 256) % 256, '.', FLOOR(RAND() * 256)),
          CONCAT('2001:db8::', HEX(seq % 65536), ':', HEX(FLOOR(RAND() * 65536)))),
       JSON_OBJECT('path', CONCAT('/', REPLACE(bench_words(2), ' ', '/')),
         'referrer', CONCAT('https://search.example/?q=', REPLACE(bench_words(2), ' ', '+')),
         'duration_ms', FLOOR(RAND() * 5000), 'user_agent', CONCAT('Mozilla/5.0 (X11; Linux x86_64) Firefox/', 100 + seq % 30))
FROM seq_${first * 3}_to_${(last + 1) * 3 - 1};

${attachments}
COMMIT;
`;
}

/** Drops the helper, refreshes the statistics, and writes the size marker last: a generation that stopped halfway has none. */
function finishSql(name: string, marker: string): string {
  return `
DROP FUNCTION bench_words;
ANALYZE TABLE ${mariadbBenchmarkTables.map((table) => `\`${table}\``).join(", ")};
ALTER DATABASE \`${name}\` COMMENT '${marker}';
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
  const server = await startMariadb();
  try {
    const database = await prepareMariadbBenchmarkDatabase({ server, sizeMegabytes, fresh: values.fresh });
    process.stdout.write(`${database.url}\n${JSON.stringify(database.rows)}\n`);
    if (server.origin === "throwaway") process.stderr.write("note: this was a throwaway server; the database is gone when this exits\n");
  } finally {
    await server.stop();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`mariadb-generate: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
