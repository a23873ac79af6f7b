import type { TestProject } from "vitest/node";
import { startGcs, startMariadb, startMongo, startPostgres, startS3 } from "../../../scripts/harness/index.ts";

declare module "vitest" {
  interface ProvidedContext {
    postgres: { url: string };
    s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; bucket: string };
    gcs: { endpoint: string; projectId: string; bucket: string };
    mariadb: { url: string };
    mongo: { host: string; port: number; url: string };
  }
}

/** The CLI's end-to-end tests run against real PostgreSQL, MariaDB, FerretDB, versitygw (S3) and fake-gcs-server. */
export default async function setup(project: TestProject) {
  const [postgres, s3, gcs, mariadb] = await Promise.all([startPostgres(), startS3(), startGcs(), startMariadb()]);
  const mongo = await startMongo(postgres);
  project.provide("mariadb", { url: mariadb.url });
  project.provide("mongo", { host: mongo.host, port: mongo.port, url: mongo.url });
  project.provide("postgres", { url: postgres.url });
  project.provide("s3", {
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    bucket: await s3.createBucket(),
  });
  project.provide("gcs", { endpoint: gcs.endpoint, projectId: gcs.projectId, bucket: await gcs.createBucket() });
  return async () => {
    await mongo.stop();
    await Promise.all([postgres.stop(), s3.stop(), gcs.stop(), mariadb.stop()]);
  };
}
