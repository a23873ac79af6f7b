/**
 * The one declaration of what a global setup hands to the tests (vitest `provide` / `inject`):
 * plain data, so it can cross into the test workers. {@link setupServers} provides the keys of the
 * servers a package asks for; a test reads them with `inject("postgres")`, or gets a client with
 * `testPostgres()` from `@hoard/test-harness/vitest`.
 */
import type { MongoTools } from "./paths.ts";
import type { S3Connection } from "./s3.ts";

/** The run: its tag is in the name of every scratch database and account, so teardown finds them. */
export interface ProvidedRun {
  tag: string;
}

export interface ProvidedPostgres {
  /** URL of the maintenance database, e.g. postgresql://postgres@127.0.0.1:5432/postgres. */
  url: string;
}

export interface ProvidedMariadb {
  host: string;
  port: number;
  /** An account that may create databases and users (root on the machine's server). */
  user: string;
  password: string;
  /** Server URL without a database. */
  url: string;
}

export interface ProvidedMongo {
  host: string;
  port: number;
  /** mongodb://127.0.0.1:PORT/ */
  url: string;
}

/** A running versitygw, its root credentials, and a bucket made for the run. */
export interface ProvidedS3 extends S3Connection {
  bucket: string;
}

/** A running fake-gcs-server and a bucket made for the run. */
export interface ProvidedGcs {
  endpoint: string;
  projectId: string;
  bucket: string;
}

declare module "vitest" {
  interface ProvidedContext {
    hoardRun: ProvidedRun;
    postgres: ProvidedPostgres;
    mariadb: ProvidedMariadb;
    mongo: ProvidedMongo;
    /** mongodump and mongorestore built by scripts/install-tools.sh, given to the driver as mongodumpPath/mongorestorePath. */
    mongoTools: MongoTools;
    s3: ProvidedS3;
    gcs: ProvidedGcs;
  }
}
