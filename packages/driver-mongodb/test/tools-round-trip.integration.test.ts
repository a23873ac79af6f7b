import { describeDriverRoundTrip } from "@hoard/core/testing";
import { inject } from "vitest";
import { createMongoDriver } from "../src/index.ts";
import { newDatabaseUrl, seedFixture, snapshotFixture } from "./fixture.ts";

const server = inject("mongo");
const tools = inject("mongoTools");

// The tools engine: the real mongodump and mongorestore (built by scripts/install-tools.sh from
// ../shared/third_party), given by path so that the test does not depend on PATH. On FerretDB the
// restore also goes through hoard's index workaround (mongorestore's index specs carry `ns`, which
// FerretDB v1.24 rejects), so "exactly" includes the indexes; tools.integration.test.ts shows it.
describeDriverRoundTrip("mongodb (mongodump/mongorestore)", {
  createDatabase: async () => newDatabaseUrl(server.url),
  seed: seedFixture,
  snapshot: snapshotFixture,
  driver: (url) => createMongoDriver({ url, engine: "tools", mongodumpPath: tools.mongodump, mongorestorePath: tools.mongorestore }),
});
