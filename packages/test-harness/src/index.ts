/**
 * Test harness: real servers on loopback for tests and benchmarks, each with throwaway data
 * directories and free ports. Servers come from environment variables (HOARD_TEST_*_URL), the
 * machine's own PostgreSQL and MariaDB, or are started here; the Go-built ones (versitygw,
 * fake-gcs-server, FerretDB) come from `.cache/bin`, built by scripts/install-tools.sh.
 * Every child process logs to a file in its temporary directory, is stopped by stop(), and is
 * killed with SIGKILL if Node exits first. Talks to the servers with their own clients (psql,
 * mariadb) or the official libraries (the mongodb driver, the AWS SDK).
 *
 * Global setups use `setupServers` from `@hoard/test-harness/setup`; tests get clients that know the
 * run from `@hoard/test-harness/vitest`.
 */

export type { GcsServer } from "./gcs.ts";
export { startGcs } from "./gcs.ts";
export type { MariadbClient, MariadbServer } from "./mariadb.ts";
export { connectMariadb, startMariadb } from "./mariadb.ts";
export type { FerretdbServer, MongoClientOfTests, MongoServer } from "./mongo.ts";
export { connectMongo, mongoCommand, runMongoCommand, startFerretdb, startMongo } from "./mongo.ts";
export type { SilentServer } from "./network.ts";
export { freePort, loopbackHost, startSilentServer } from "./network.ts";
export type { MongoTools, ToolName } from "./paths.ts";
export { findExecutable, hasTool, repoRoot, requireMongoTools, requireTool, toolPath } from "./paths.ts";
export type { PostgresClient, PostgresServer, ThrowawayPostgresOptions } from "./postgres.ts";
export { connectPostgres, otherPostgresMajorDirectory, startPostgres, startThrowawayPostgres } from "./postgres.ts";
export type { ProxyAnswer, RecordedRequest, RecordingProxy } from "./recording-proxy.ts";
export { jsonErrorAnswer, s3ErrorAnswer, startRecordingProxy } from "./recording-proxy.ts";
export type { S3Connection, S3Server } from "./s3.ts";
export { createS3Bucket, s3Client, startS3 } from "./s3.ts";
export { isTestName, madeByRun, newRunTag, scratchName } from "./scratch.ts";
export type { RunningServer, ServerOrigin } from "./server.ts";
export type { TcpProxy, TcpProxyOptions } from "./tcp-proxy.ts";
export { startTcpProxy } from "./tcp-proxy.ts";
