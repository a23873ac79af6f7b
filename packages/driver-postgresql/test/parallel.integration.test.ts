import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backup, createLocalStorage, type HoardEvent, type Logger, restore } from "@hoard/core";
import { describeDriverRoundTrip } from "@hoard/core/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDriverFromUrl, createPostgresDriver } from "../src/index.ts";
import { seedFixture, snapshotFixture } from "./fixture.ts";
import { createDatabase, failureOf, pgTool, psql } from "./postgres.ts";

const server = inject("postgres");
const schemaOf = (url: string) => pgTool("pg_dump", ["--schema-only", `--dbname=${url}`], url);

// The shared round trip (stream and file mode) with parallel dumps and restores.
describeDriverRoundTrip("postgresql with pgJobs", {
  createDatabase: () => createDatabase(server.url),
  seed: seedFixture,
  snapshot: (url) => snapshotFixture(url, schemaOf),
  driver: (url) => createPostgresDriver({ url, jobs: 3 }),
});

function recordingLogger(): Logger & { messages: string[] } {
  const messages: string[] = [];
  return {
    messages,
    event(event: HoardEvent) {
      if (event.type === "log") messages.push(event.message);
    },
  };
}

describe("parallel dumps and restores", () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "hoard-pg-jobs-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("stores a directory dump as .dump.tar.gz; restores it with --jobs (saying it is not one transaction) and without", async () => {
    const source = await createDatabase(server.url);
    await seedFixture(source);
    const expected = await snapshotFixture(source, schemaOf);
    const storage = createLocalStorage({ directory });
    const dumpLogger = recordingLogger();
    const { key } = await backup({ driver: createDriverFromUrl(source, { pgJobs: 3 }), storage, prefix: "jobs", logger: dumpLogger });
    expect(key).toMatch(/^jobs-\d{14}\.dump\.tar\.gz$/);
    expect(dumpLogger.messages.join("\n")).toMatch(/--format=directory --jobs=3 .*the whole dump is on local disk before it is stored/);
    const parallel = await createDatabase(server.url);
    const logger = recordingLogger();
    await restore({ driver: createPostgresDriver({ url: parallel, jobs: 3, logger }), storage, key, logger });
    expect(await snapshotFixture(parallel, schemaOf)).toEqual(expected);
    expect(logger.messages).toContain(
      `postgresql: pg_restore --jobs=3: not in one transaction (pg_restore cannot run parallel jobs in one); a failure leaves ${new URL(parallel).pathname.slice(1)} partially restored`,
    );
    const single = await createDatabase(server.url);
    await restore({ driver: createPostgresDriver({ url: single }), storage, key });
    expect(await snapshotFixture(single, schemaOf)).toEqual(expected);
  });

  it("a failed parallel restore says the database may be partially restored", async () => {
    const source = await createDatabase(server.url);
    await seedFixture(source);
    const storage = createLocalStorage({ directory });
    const { key } = await backup({ driver: createPostgresDriver({ url: source, jobs: 2 }), storage, prefix: "jobs-fail" });
    const target = await createDatabase(server.url);
    // A view outside the backup on a table in it: --clean cannot drop the table.
    await psql(target, "CREATE TABLE child (id int); CREATE VIEW keeps_child AS SELECT id FROM child");
    const name = new URL(target).pathname.slice(1);
    const failure = await failureOf(restore({ driver: createPostgresDriver({ url: target, jobs: 2 }), storage, key, replace: true }));
    expect(failure.code).toBe("TOOL_FAILED");
    expect(failure.message).toMatch(
      new RegExp(`^pg_restore failed .*; pg_restore --jobs does not run in one transaction, so ${name} may be partially restored$`),
    );
  });

  it("pgJobs is a whole number from 2", () => {
    expect(() => createDriverFromUrl(`${server.url}`, { pgJobs: 1 })).toThrow(/pg-jobs|pgJobs/);
  });
});
