import type { TestProject } from "vitest/node";
import { startMariadb } from "../../../scripts/harness/index.ts";

/** How tests reach the MariaDB server: plain data, so it can cross into the test workers. */
export interface ProvidedMariadb {
  host: string;
  port: number;
  /** An account that may create databases and users (root on the machine's server). */
  user: string;
  password: string;
  /** Server URL without a database. */
  url: string;
}

declare module "vitest" {
  interface ProvidedContext {
    mariadb: ProvidedMariadb;
  }
}

/** Starts (or finds) the MariaDB server the tests use; each test file creates its own databases. */
export default async function setup(project: TestProject) {
  const server = await startMariadb();
  project.provide("mariadb", { host: server.host, port: server.port, user: server.user, password: server.password, url: server.url });
  return () => server.stop();
}
