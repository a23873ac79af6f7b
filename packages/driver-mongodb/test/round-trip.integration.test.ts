import { describeDriverRoundTrip } from "@hoard/core/testing";
import { inject } from "vitest";
import { createMongoDriver } from "../src/index.ts";
import { newDatabaseUrl, seedFixture, snapshotFixture } from "./fixture.ts";

const server = inject("mongo");

// The built-in engine, whatever is on PATH (the tools engine has its own round trip in
// tools-round-trip.integration.test.ts).
describeDriverRoundTrip("mongodb (built-in)", {
  createDatabase: async () => newDatabaseUrl(server.url),
  seed: seedFixture,
  snapshot: snapshotFixture,
  driver: (url) => createMongoDriver({ url, engine: "builtin" }),
});
