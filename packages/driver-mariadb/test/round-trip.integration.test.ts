import { describeDriverRoundTrip } from "@hoard/core/testing";
import { afterAll, beforeAll, inject } from "vitest";
import { createMariadbDriver } from "../src/index.ts";
import { seedFixture, snapshotFixture } from "./fixture.ts";
import { accountUrl, createAccount, createDatabase, randomName, type TestAccount } from "./mariadb.ts";

const server = inject("mariadb");
let account: TestAccount;

beforeAll(async () => {
  account = await createAccount(server.url);
});

afterAll(async () => {
  await account?.drop();
});

// The round trip runs as a non-root account whose password needs escaping in a URL and in an
// option file, so the private option file is what carries it; the fixture's objects belong to it.
describeDriverRoundTrip("mariadb", {
  createDatabase: async () =>
    accountUrl(await createDatabase(server.url, randomName(`${account.databasePrefix}db`)), account.user, account.password),
  seed: seedFixture,
  snapshot: snapshotFixture,
  driver: (url) => createMariadbDriver({ url }),
});
