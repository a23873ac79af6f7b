import { describeDriverRoundTrip } from "@hoard/core/testing";
import { createSqliteDriver } from "../src/index.ts";
import { seedFixture, snapshotFixture } from "./fixture.ts";
import { newPath, scratchDirectory, urlOf } from "./sqlite.ts";

// Every database is a file in a directory of this test file's own; an "empty database" is a path
// where no file is yet, which is what a restore usually writes to.
const directory = await scratchDirectory("hoard-sqlite-round-trip-");

describeDriverRoundTrip("sqlite", {
  createDatabase: async () => urlOf(newPath(directory)),
  seed: seedFixture,
  snapshot: snapshotFixture,
  driver: (url) => createSqliteDriver({ url }),
});
