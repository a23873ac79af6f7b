/**
 * A MongoDB-compatible server for the MongoDB benchmark, and a database on it of about a given
 * size with the shape of the other generators: customers (strings, Int32, Int64 ids, doubles,
 * dates, booleans, a nested profile with an array of tags), orders (line items as an array of
 * subdocuments, optional notes, a secondary index on customerId), events (ObjectId ids, UUID
 * sessions as BSON binary subtype 4, nested payloads) and attachments (0.5-4 KiB of random bytes as
 * BSON binary, which no compressor can shrink). Documents are made in this process and inserted with
 * the official driver in unordered batches of 1000.
 *
 * The server: HOARD_BENCH_MONGODB_URL when set (a real MongoDB, say); else FerretDB v1
 * (`.cache/bin/ferretdb`, built by scripts/install-tools.sh) on the PostgreSQL backend, in the
 * PostgreSQL database `hoard_bench_ferretdb` of the machine's server, which outlives the run so
 * the generated data is reused (the test harness's startFerretdb drops its database on stop, so
 * this file starts FerretDB itself, with the harness's flags).
 *
 * Size: the database's `dbStats` storageSize + indexSize (on FerretDB, the PostgreSQL tables behind
 * the collections). The database is named `hoard_bench_<size>mb`; a marker document in
 * `hoard_bench_markers.generated` (not in the dumped database) names the generator's version, so
 * a later run reuses it (`--fresh` rebuilds it).
 *
 *   pnpm exec tsx bench/mongodb-generate.ts [--size-mb 100] [--fresh]
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { freePort, loopbackHost, mongoCommand, requireTool, startPostgres } from "@hoard/test-harness";
import { runPsql } from "./generate-postgres.ts";

/** Bump when the data changes, so databases made by an older generator are rebuilt. */
const generatorVersion = 1;
const bytesPerMegabyte = 1024 * 1024;
const documentsPerInsert = 1000;
/** The PostgreSQL database FerretDB keeps its data in between benchmark runs. */
export const ferretdbBackingDatabase = "hoard_bench_ferretdb";
const markerDatabase = "hoard_bench_markers";

/** The collections the generator makes. */
export const mongoBenchmarkCollections = ["attachments", "customers", "events", "orders"] as const;

// The official driver is a dependency of the test harness, not of the workspace root: load it from there.
const harnessRequire = createRequire(fileURLToPath(import.meta.resolve("@hoard/test-harness/package.json")));

/** The parts of the `mongodb` package the benchmark uses (its types are not resolvable from bench/). */
export interface MongoPackage {
  MongoClient: new (url: string, options?: Record<string, unknown>) => MongoClientLike;
  Long: { fromNumber(value: number): unknown };
  Int32: new (value: number) => unknown;
  Double: new (value: number) => unknown;
  Binary: new (buffer: Uint8Array, subType?: number) => unknown;
  ObjectId: new () => unknown;
}

export interface CursorLike {
  toArray(): Promise<Record<string, unknown>[]>;
  [Symbol.asyncIterator](): AsyncIterator<unknown>;
  close(): Promise<void>;
}

export interface CollectionLike {
  insertMany(documents: Record<string, unknown>[], options?: Record<string, unknown>): Promise<unknown>;
  insertOne(document: Record<string, unknown>): Promise<unknown>;
  createIndex(keys: Record<string, number>, options?: Record<string, unknown>): Promise<string>;
  findOne(filter: Record<string, unknown>): Promise<Record<string, unknown> | null>;
  countDocuments(filter?: Record<string, unknown>): Promise<number>;
  find(filter: Record<string, unknown>, options?: Record<string, unknown>): CursorLike & { sort(sort: Record<string, number>): CursorLike };
  listIndexes(): CursorLike;
}

export interface DatabaseLike {
  collection(name: string): CollectionLike;
  command(command: Record<string, unknown>): Promise<Record<string, unknown>>;
  dropDatabase(): Promise<unknown>;
  listCollections(filter?: Record<string, unknown>, options?: Record<string, unknown>): CursorLike;
}

export interface MongoClientLike {
  connect(): Promise<unknown>;
  db(name: string): DatabaseLike;
  close(): Promise<void>;
}

/** The official driver, loaded from the test harness's dependencies. */
export const mongo = harnessRequire("mongodb") as MongoPackage;

/** A MongoDB-compatible server the benchmark talks to. */
export interface BenchmarkMongo {
  /** mongodb://host:port/ */
  url: string;
  /** What it is, for the report: `FerretDB 1.24.2 on PostgreSQL (hoard_bench_ferretdb)` or the URL's server. */
  description: string;
  /** The server's own buildInfo version. */
  version: string;
  /** URL of one database. */
  databaseUrl(database: string): string;
  /** A connected client (closed by stop). */
  client: MongoClientLike;
  /** The server's own processes whose CPU time is counted (FerretDB's, when this file started it; its PostgreSQL is shared). */
  serverPids: number[];
  stop(): Promise<void>;
}

/** HOARD_BENCH_MONGODB_URL, or FerretDB on the machine's PostgreSQL with a database that outlives the run. */
export async function startBenchmarkMongo(log: (line: string) => void = () => {}): Promise<BenchmarkMongo> {
  const configured = process.env.HOARD_BENCH_MONGODB_URL;
  if (configured !== undefined && configured !== "") {
    const url = configured.endsWith("/") ? configured : `${configured}/`;
    return connectBenchmarkMongo(url, "HOARD_BENCH_MONGODB_URL", [], async () => {});
  }
  const ferretdb = requireTool("ferretdb");
  const postgres = await startPostgres();
  const exists = (await runPsql(postgres, undefined, `SELECT 1 FROM pg_database WHERE datname = '${ferretdbBackingDatabase}'`)).trim();
  if (exists !== "1") {
    log(`creating the PostgreSQL database ${ferretdbBackingDatabase} for FerretDB`);
    await runPsql(postgres, undefined, `CREATE DATABASE ${ferretdbBackingDatabase};`);
  }
  const stateDirectory = await mkdtemp(join(tmpdir(), "hoard-bench-ferretdb-"));
  const port = await freePort();
  const child = spawn(
    ferretdb,
    [
      "--handler=postgresql",
      `--listen-addr=${loopbackHost}:${port}`,
      `--state-dir=${stateDirectory}`,
      "--debug-addr=-",
      "--telemetry=disable",
      "--log-level=warn",
    ],
    {
      env: { ...process.env, FERRETDB_POSTGRESQL_URL: postgres.databaseUrl(ferretdbBackingDatabase) },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(stateDirectory, { recursive: true, force: true });
    await postgres.stop();
  };
  const url = `mongodb://${loopbackHost}:${port}/`;
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`ferretdb exited with ${child.exitCode}: ${stderr.trim()}`);
      try {
        await mongoCommand(url, { listDatabases: 1, nameOnly: true }, { timeoutMs: 1_000 });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
    return await connectBenchmarkMongo(
      url,
      `FerretDB on PostgreSQL (${ferretdbBackingDatabase})`,
      child.pid === undefined ? [] : [child.pid],
      stop,
    );
  } catch (error) {
    await stop();
    throw error;
  }
}

async function connectBenchmarkMongo(
  url: string,
  origin: string,
  serverPids: number[],
  stopServer: () => Promise<void>,
): Promise<BenchmarkMongo> {
  const client = new mongo.MongoClient(url, { directConnection: true, serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  const info = await client.db("admin").command({ buildInfo: 1 });
  // FerretDB answers with the MongoDB version it imitates and adds ferretdbVersion (as the driver's inspect.ts reads it).
  const ferretdbVersion = typeof info.ferretdbVersion === "string" ? info.ferretdbVersion.replace(/^v/, "") : undefined;
  const version = String(info.version ?? "unknown");
  return {
    url,
    description: ferretdbVersion ? `FerretDB ${ferretdbVersion} (reports MongoDB ${version}), ${origin}` : `MongoDB ${version}, ${origin}`,
    version,
    databaseUrl: (database) => `${url}${database}`,
    client,
    serverPids,
    stop: async () => {
      await client.close().catch(() => {});
      await stopServer();
    },
  };
}

/** A MongoDB database ready to be dumped. */
export interface MongoBenchmarkDatabase {
  name: string;
  url: string;
  /** dbStats storageSize + indexSize, bytes. */
  sizeBytes: number;
  /** dbStats dataSize, bytes (the documents' BSON size as the server counts it). */
  dataBytes: number;
  reused: boolean;
  generationSeconds: number;
  /** Documents per collection. */
  documents: Record<string, number>;
}

/** The database name for a size, e.g. `hoard_bench_100mb`. */
export function mongoBenchmarkDatabaseName(sizeMegabytes: number): string {
  return `hoard_bench_${sizeMegabytes}mb`;
}

function sizeMarker(sizeMegabytes: number): string {
  return `hoard-bench mongodb generator=${generatorVersion} size-mb=${sizeMegabytes}`;
}

/** storageSize + indexSize and dataSize of a database, from dbStats. */
export async function mongoDatabaseSize(server: BenchmarkMongo, name: string): Promise<{ sizeBytes: number; dataBytes: number }> {
  const stats = await server.client.db(name).command({ dbStats: 1, scale: 1 });
  return {
    sizeBytes: Number(stats.storageSize ?? 0) + Number(stats.indexSize ?? 0),
    dataBytes: Number(stats.dataSize ?? 0),
  };
}

/** Exact documents per collection. */
export async function mongoDocumentCounts(server: BenchmarkMongo, name: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const collection of mongoBenchmarkCollections)
    counts[collection] = await server.client.db(name).collection(collection).countDocuments({});
  return counts;
}

/** Returns the benchmark database of the given size, generating it unless an identical one exists. */
export async function prepareMongoBenchmarkDatabase(options: {
  server: BenchmarkMongo;
  sizeMegabytes: number;
  fresh?: boolean;
  log?: (line: string) => void;
}): Promise<MongoBenchmarkDatabase> {
  const { server, sizeMegabytes } = options;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const name = mongoBenchmarkDatabaseName(sizeMegabytes);
  const markers = server.client.db(markerDatabase).collection("generated");
  const marker = await markers.findOne({ _id: name });
  if (!options.fresh && marker?.marker === sizeMarker(sizeMegabytes)) {
    const size = await mongoDatabaseSize(server, name);
    log(`reusing ${name} (${(size.sizeBytes / bytesPerMegabyte).toFixed(0)} MiB; --fresh rebuilds it)`);
    return {
      name,
      url: server.databaseUrl(name),
      ...size,
      reused: true,
      generationSeconds: 0,
      documents: await mongoDocumentCounts(server, name),
    };
  }
  const started = performance.now();
  await server.client.db(markerDatabase).command({ delete: "generated", deletes: [{ q: { _id: name }, limit: 1 }] });
  await server.client.db(name).dropDatabase();
  const database = server.client.db(name);
  await database.collection("orders").createIndex({ customerId: 1 }, { name: "orders_customer_id" });
  const targetBytes = sizeMegabytes * bytesPerMegabyte;
  let unit = 1;
  let size = await mongoDatabaseSize(server, name);
  let lastLogged = 0;
  while (size.sizeBytes < targetBytes * 0.99) {
    // 1000 units (about 8 MiB on FerretDB) between two size checks.
    await insertUnits(database, unit, documentsPerInsert);
    unit += documentsPerInsert;
    size = await mongoDatabaseSize(server, name);
    if (performance.now() - lastLogged > 5_000) {
      lastLogged = performance.now();
      log(`  ${name}: ${(size.sizeBytes / bytesPerMegabyte).toFixed(0)} / ${sizeMegabytes} MiB`);
    }
  }
  await markers.insertOne({ _id: name, marker: sizeMarker(sizeMegabytes), at: new Date() });
  const generationSeconds = (performance.now() - started) / 1000;
  log(`generated ${name}: ${(size.sizeBytes / bytesPerMegabyte).toFixed(0)} MiB in ${generationSeconds.toFixed(1)} s`);
  return {
    name,
    url: server.databaseUrl(name),
    ...(await mongoDatabaseSize(server, name)),
    reused: false,
    generationSeconds,
    documents: await mongoDocumentCounts(server, name),
  };
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

function words(count: number): string {
  const chosen: string[] = [];
  for (let index = 0; index < count; index++) chosen.push(vocabulary[Math.floor(Math.random() * vocabulary.length)] as string);
  return chosen.join(" ");
}

const day = 24 * 60 * 60 * 1000;
const randomDate = (from: string, days: number) => new Date(Date.parse(from) + Math.floor(Math.random() * days * day));
const money = (limit: number) => new mongo.Double(Math.round(Math.random() * limit * 100) / 100);

/**
 * Inserts `count` units from unit `first`: per unit one customer, three orders and three events,
 * and per twenty units one attachment, as in the other generators. Ids follow each other.
 */
async function insertUnits(database: DatabaseLike, first: number, count: number): Promise<void> {
  const customers: Record<string, unknown>[] = [];
  const orders: Record<string, unknown>[] = [];
  const events: Record<string, unknown>[] = [];
  const attachments: Record<string, unknown>[] = [];
  for (let n = first; n < first + count; n++) {
    customers.push({
      _id: mongo.Long.fromNumber(n),
      name: words(2),
      email: `user${n}@${["example.com", "mail.test", "corp.example", "shop.test"][n % 4]}`,
      country: ["DE", "FR", "US", "GB", "NL", "SE", "JP", "BR", "IN", "ES"][n % 10],
      balance: money(10000),
      createdAt: randomDate("2015-01-01", 3650),
      active: n % 3 === 0,
      score: new mongo.Int32(Math.floor(Math.random() * 1000)),
      profile: {
        plan: ["free", "basic", "pro", "enterprise"][n % 4],
        newsletter: n % 3 === 0,
        tags: [words(1), words(1), words(1)],
        address: { street: `${words(2)} ${n % 200}`, city: words(1) },
      },
    });
    for (let order = n * 3; order < n * 3 + 3; order++) {
      orders.push({
        _id: mongo.Long.fromNumber(order),
        customerId: mongo.Long.fromNumber(1 + Math.floor(order / 3)),
        status: ["pending", "paid", "shipped", "delivered", "returned"][order % 5],
        total: money(500),
        quantity: new mongo.Int32(1 + (order % 7)),
        orderedAt: randomDate("2020-01-01", 1800),
        shippedAt: order % 5 >= 2 ? randomDate("2020-01-01", 1800) : null,
        items: [
          { sku: `SKU-${(order * 7919) % 100000}`, quantity: new mongo.Int32(1 + (order % 4)), price: money(100) },
          { sku: `SKU-${(order * 104729) % 100000}`, quantity: new mongo.Int32(1), price: money(100) },
        ],
        ...(order % 4 === 0 ? { note: words(8 + (order % 12)) } : {}),
      });
      events.push({
        _id: new mongo.ObjectId(),
        occurredAt: randomDate("2024-01-01", 365),
        kind: ["page_view", "click", "search", "add_to_cart", "checkout", "login", "logout"][order % 7],
        session: new mongo.Binary(randomBytes(16), 4),
        payload: {
          path: `/${words(2).replace(" ", "/")}`,
          referrer: `https://search.example/?q=${words(2).replace(" ", "+")}`,
          durationMs: new mongo.Int32(Math.floor(Math.random() * 5000)),
          userAgent: `Mozilla/5.0 (X11; Linux x86_64) Firefox/${100 + (order % 30)}`,
        },
      });
    }
    if (n % 20 === 0) {
      const id = n / 20;
      attachments.push({
        _id: mongo.Long.fromNumber(id),
        orderId: mongo.Long.fromNumber(id * 60),
        fileName: `scan-${id}.jpg`,
        contentType: "image/jpeg",
        content: new mongo.Binary(randomBytes(512 + ((id * 2654435761) % 3584))),
      });
    }
  }
  const inserts: Array<[string, Record<string, unknown>[]]> = [
    ["customers", customers],
    ["orders", orders],
    ["events", events],
    ["attachments", attachments],
  ];
  for (const [collection, documents] of inserts) {
    for (let start = 0; start < documents.length; start += documentsPerInsert) {
      await database.collection(collection).insertMany(documents.slice(start, start + documentsPerInsert), { ordered: false });
    }
  }
}

/** Command-line entry: prepares one database and prints its URL and counts. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { "size-mb": { type: "string", default: "100" }, fresh: { type: "boolean", default: false } },
    strict: true,
  });
  const sizeMegabytes = Number(values["size-mb"]);
  if (!Number.isInteger(sizeMegabytes) || sizeMegabytes < 10) throw new Error("--size-mb must be a whole number of MiB, at least 10");
  const server = await startBenchmarkMongo((line) => process.stderr.write(`${line}\n`));
  try {
    const database = await prepareMongoBenchmarkDatabase({ server, sizeMegabytes, fresh: values.fresh });
    process.stdout.write(`${server.description}\n${JSON.stringify(database)}\n`);
  } finally {
    await server.stop();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`mongodb-generate: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
