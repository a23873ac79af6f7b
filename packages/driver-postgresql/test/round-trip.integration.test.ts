import { describeDriverRoundTrip } from "@hoard/core/testing";
import { inject } from "vitest";
import { createPostgresDriver } from "../src/index.ts";
import { seedFixture, snapshotFixture } from "./fixture.ts";
import { createDatabase, pgTool } from "./postgres.ts";

const server = inject("postgres");

const schemaOf = (url: string) => pgTool("pg_dump", ["--schema-only", `--dbname=${url}`], url);

describeDriverRoundTrip("postgresql", {
  createDatabase: () => createDatabase(server.url),
  seed: seedFixture,
  snapshot: (url) => snapshotFixture(url, schemaOf),
  driver: (url) => createPostgresDriver({ url }),
});
