import { describeDriverRoundTrip } from "@hoard/core/testing";
import { inject } from "vitest";
import { createMongoDriver } from "../src/index.ts";
import { newDatabaseUrl, seedFixture, snapshotFixture } from "./fixture.ts";

const server = inject("mongo");

// The built-in engine, whatever is on PATH: mongodump cannot be built on this machine, and a
// developer who has it still gets this engine tested.
describeDriverRoundTrip("mongodb (built-in)", {
  createDatabase: async () => newDatabaseUrl(server.url),
  seed: seedFixture,
  snapshot: snapshotFixture,
  driver: (url) => createMongoDriver({ url, engine: "builtin" }),
});
