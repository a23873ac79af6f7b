/**
 * Test harness: real servers on loopback for tests and benchmarks, each with throwaway data
 * directories and free ports. Servers come from environment variables (HOARD_TEST_*_URL), the
 * machine's own PostgreSQL and MariaDB, or are started here; the Go-built ones (versitygw,
 * fake-gcs-server, FerretDB) come from `.cache/bin`, built by scripts/install-tools.sh.
 * Every child process logs to a file in its temporary directory, is stopped by stop(), and is
 * killed with SIGKILL if Node exits first.
 */

export type { SignableRequest, SigningCredentials } from "./aws-signature.ts";
export { signedFetch, signRequest } from "./aws-signature.ts";
export type { GcsServer } from "./gcs.ts";
export { startGcs } from "./gcs.ts";
export type { MariadbServer } from "./mariadb.ts";
export { startMariadb } from "./mariadb.ts";
export type { FerretdbServer, MongoServer } from "./mongo.ts";
export { startFerretdb, startMongo } from "./mongo.ts";
export type { BsonDocument, BsonValue } from "./mongo-wire.ts";
export { runMongoCommand } from "./mongo-wire.ts";
export type { SilentServer } from "./network.ts";
export { freePort, startSilentServer } from "./network.ts";
export type { MongoTools, ToolName } from "./paths.ts";
export { hasTool, repoRoot, requireMongoTools, requireTool, toolPath } from "./paths.ts";
export type { PostgresServer, ThrowawayPostgresOptions } from "./postgres.ts";
export { startPostgres, startThrowawayPostgres } from "./postgres.ts";
export type { S3Server } from "./s3.ts";
export { startS3 } from "./s3.ts";
export type { RunningServer, ServerOrigin } from "./server.ts";
