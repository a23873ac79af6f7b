/**
 * Starts every test server, does one real operation against each, prints "OK <server>" per
 * server and stops them all. Exits with 1 on the first failure.
 *
 *   pnpm --filter @hoard/test-harness smoke
 *   HOARD_TEST_POSTGRES=throwaway HOARD_TEST_MARIADB=throwaway pnpm --filter @hoard/test-harness smoke
 */

import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import type { GcsServer, MariadbServer, MongoServer, PostgresServer, RunningServer, S3Server } from "./index.ts";
import { hasTool, startGcs, startMariadb, startMongo, startPostgres, startS3, toolPath } from "./index.ts";
import { findExecutable } from "./paths.ts";
import { runCommandOrThrow } from "./process.ts";

const running: RunningServer[] = [];

/** Starts a server, remembering it for the final stop, and reports how long the start took. */
async function start<Server extends RunningServer>(name: string, begin: () => Promise<Server>): Promise<Server> {
  const started = performance.now();
  const server = await begin();
  running.push(server);
  console.log(`started ${name} in ${Math.round(performance.now() - started)} ms`);
  return server;
}

function ok(name: string, detail: string): void {
  console.log(`OK ${name}: ${detail}`);
}

/** Throws with the described failure unless the condition holds (the description is built lazily). */
function expect(condition: boolean, describeFailure: () => string): void {
  if (!condition) {
    throw new Error(describeFailure());
  }
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => (typeof item === "bigint" ? item.toString() : item));
}

async function checkPostgres(postgres: PostgresServer): Promise<void> {
  const url = await postgres.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const output = await runCommandOrThrow("psql", ["-X", "-A", "-t", "-c", "select 1"], {
    env: postgres.clientEnvironment(database),
  });
  expect(output.trim() === "1", () => `psql select 1 printed ${JSON.stringify(output)}`);
  await postgres.dropDatabase(database);
  ok("postgres", `${postgres.origin} ${postgres.url}: created ${database}, select 1, dropped it`);
}

async function checkMariadb(mariadb: MariadbServer): Promise<void> {
  const url = await mariadb.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const client = findExecutable("mariadb") ?? "mysql";
  const output = await runCommandOrThrow(
    client,
    ["--no-defaults", ...mariadb.clientArguments(), "--batch", "--skip-column-names", `--database=${database}`, "--execute", "select 1"],
    { env: mariadb.clientEnvironment() },
  );
  expect(output.trim() === "1", () => `mariadb select 1 printed ${JSON.stringify(output)}`);
  await mariadb.dropDatabase(database);
  ok("mariadb", `${mariadb.origin} ${mariadb.url}: created ${database}, select 1, dropped it`);
}

async function checkS3(s3: S3Server): Promise<void> {
  const bucket = await s3.createBucket();
  const key = "smoke/hello.txt";
  const client = s3.client();
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "hello from hoard" }));
  const body = await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body?.transformToString();
  expect(body === "hello from hoard", () => `GetObject returned ${JSON.stringify(body)}`);
  const listing = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  expect(listing.Contents?.some((object) => object.Key === key) === true, () => `ListObjectsV2 returned ${toJson(listing.Contents)}`);
  const unsigned = await fetch(`${s3.endpoint}/${bucket}/${key}`);
  await unsigned.arrayBuffer();
  expect(unsigned.status === 403, () => `an unsigned GET should be refused, got HTTP ${unsigned.status}`);
  ok("s3", `${s3.endpoint}: CreateBucket ${bucket}, PutObject, GetObject, ListObjectsV2 through the AWS SDK; unsigned GET refused`);
}

async function checkGcs(gcs: GcsServer): Promise<void> {
  const bucket = await gcs.createBucket();
  const response = await fetch(`${gcs.endpoint}/storage/v1/b?project=${gcs.projectId}`);
  const listing = (await response.json()) as { items?: { name: string }[] };
  const names = (listing.items ?? []).map((item) => item.name);
  expect(response.ok && names.includes(bucket), () => `bucket list ${toJson(listing)} lacks ${bucket}`);
  ok("gcs", `${gcs.endpoint}: created bucket ${bucket}, listed it`);
}

async function checkMongo(mongo: MongoServer): Promise<void> {
  const hello = await mongo.command({ hello: 1 });
  await mongo.command({ insert: "smoke", documents: [{ greeting: "hello" }] }, "hoard_smoke");
  const found = await mongo.command({ find: "smoke", filter: {} }, "hoard_smoke");
  const cursor = found.cursor as { firstBatch: { greeting: string }[] };
  expect(cursor.firstBatch[0]?.greeting === "hello", () => `find returned ${toJson(cursor)}`);
  let dump = "mongodump not built (see scripts/install-tools.sh), skipped";
  if (hasTool("mongodump")) {
    await runCommandOrThrow(toolPath("mongodump"), [`--uri=${mongo.url}`, "--archive=/dev/null", "--quiet"]);
    dump = "mongodump --archive ran";
  }
  ok("mongo", `${mongo.origin} ${mongo.url}: hello (maxWireVersion ${String(hello.maxWireVersion)}), insert, find; ${dump}`);
}

async function main(): Promise<void> {
  const postgres = await start("postgres", startPostgres);
  const [mariadb, s3, gcs, mongo] = await Promise.all([
    start("mariadb", startMariadb),
    start("s3 (versitygw)", startS3),
    start("gcs (fake-gcs-server)", startGcs),
    start("mongo (ferretdb)", () => startMongo(postgres)),
  ]);
  await checkPostgres(postgres);
  await checkMariadb(mariadb);
  await checkS3(s3);
  await checkGcs(gcs);
  await checkMongo(mongo);
}

async function stopAll(): Promise<void> {
  // Reverse order: FerretDB stops before the PostgreSQL server it uses.
  for (const server of running.reverse()) {
    await server.stop();
  }
}

main()
  .then(stopAll)
  .then(() => console.log("smoke: all servers OK"))
  .catch(async (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    await stopAll().catch((stopError: unknown) => console.error("while stopping:", stopError));
    process.exitCode = 1;
  });
