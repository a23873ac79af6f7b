import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { type Driver, isHoardError } from "@hoard/core";
import { type SilentServer, startSilentServer } from "@hoard/test-harness";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { encodeNamespaceHeader, encodePrelude, encodeTerminator } from "../src/archive-writer.ts";
import { parseMongoUrl } from "../src/connection-string.ts";
import { createDriverFromUrl, createMongoDriver } from "../src/index.ts";
import { insert, newDatabaseUrl, withClient } from "./fixture.ts";
import { dumpToBuffer, failureOf } from "./helpers.ts";

const server = inject("mongo");
const connectTimeoutMs = 2000;
/** What "within the timeout" allows on top of it: client start, the failing attempt, a slow machine. */
const slackMs = 8000;

/** Runs `work`, returning how it failed and how long it took to. */
async function timedFailure(work: () => Promise<unknown>): Promise<{ error: unknown; elapsedMs: number }> {
  const started = performance.now();
  const error = await failureOf(work());
  return { error, elapsedMs: performance.now() - started };
}

/**
 * A database host that accepts TCP connections and never answers: every operation must give up
 * after connectTimeoutMs (plus slack) with UNREACHABLE naming host:port, instead of the MongoDB
 * driver's 30 s server selection or the tools' own defaults.
 */
describe("mongodb against a host that never answers", () => {
  let silent: SilentServer;
  let silentUrl: string;
  let workDirectory: string;
  let archive: Buffer;
  let source: string;

  beforeAll(async () => {
    silent = await startSilentServer();
    silentUrl = `mongodb://backup:Sup3rS3cret@${silent.host}:${silent.port}/shop`;
    source = newDatabaseUrl(server.url);
    await withClient(source, (client) => insert(client.db(), "orders", [{ _id: 1, item: "book" }]));
    archive = await dumpToBuffer(createMongoDriver({ url: source, engine: "builtin" }));
  });
  afterAll(async () => {
    await silent?.close();
    await withClient(server.url, (client) => client.db(parseMongoUrl(source).database).dropDatabase());
  });
  beforeEach(async () => {
    workDirectory = await mkdtemp(join(tmpdir(), "hoard-mongodb-silent-"));
  });
  afterEach(async () => {
    await rm(workDirectory, { recursive: true, force: true });
  });

  function expectUnreachable(error: unknown, elapsedMs: number): void {
    expect(isHoardError(error, "UNREACHABLE"), String(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain(`${silent.host}:${silent.port}`);
    expect(message).toContain("within 2 s");
    expect(message).not.toContain("Sup3rS3cret");
    expect(elapsedMs).toBeLessThan(connectTimeoutMs + slackMs);
    expect(silent.connections()).toBeGreaterThan(0);
  }

  it("fails a built-in dump with UNREACHABLE within the timeout", async () => {
    const driver = createMongoDriver({ url: silentUrl, engine: "builtin", connectTimeoutMs });
    const { error, elapsedMs } = await timedFailure(() => driver.dump({ workDirectory }));
    expectUnreachable(error, elapsedMs);
    expect((error as Error).message).toMatch(/^mongodb: dump: cannot reach /);
  });

  it("fails a built-in restore with UNREACHABLE within the timeout (settings from the registry's entry point)", async () => {
    const driver: Driver = createDriverFromUrl(silentUrl, { engine: "builtin", connectTimeoutMs });
    const { error, elapsedMs } = await timedFailure(() =>
      driver.restore({ kind: "stream", stream: Readable.from([archive]) }, { workDirectory }),
    );
    expectUnreachable(error, elapsedMs);
  });

  it("fails a built-in restore with replace (no target check) with UNREACHABLE within the timeout", async () => {
    const driver = createMongoDriver({ url: silentUrl, engine: "builtin", connectTimeoutMs });
    const { error, elapsedMs } = await timedFailure(() =>
      driver.restore({ kind: "stream", stream: Readable.from([archive]) }, { workDirectory, replace: true }),
    );
    expectUnreachable(error, elapsedMs);
  });

  it("fails describe, inventory, prepareScratch and a drill's exact inventory with UNREACHABLE within the timeout", async () => {
    const driver = createMongoDriver({ url: silentUrl, engine: "builtin", connectTimeoutMs });
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["describe", () => driver.describe?.({ workDirectory }) ?? Promise.resolve()],
      ["inventory", () => driver.inventory?.({ workDirectory }) ?? Promise.resolve()],
      ["exact inventory", () => driver.inventory?.({ workDirectory, exactCounts: true }) ?? Promise.resolve()],
      ["prepareScratch", () => driver.prepareScratch?.({ workDirectory }) ?? Promise.resolve()],
    ];
    for (const [what, call] of calls) {
      const { error, elapsedMs } = await timedFailure(call);
      expectUnreachable(error, elapsedMs);
      expect((error as Error).message, what).toMatch(/^mongodb: (describe|inventory|preparing the scratch database): cannot reach /);
    }
  });

  describe("tools engine (stand-in tools)", () => {
    let directory: string;

    beforeAll(async () => {
      directory = await mkdtemp(join(tmpdir(), "hoard-mongodb-silent-tools-"));
      await mkdir(join(directory, "records"));
      // What the stand-in mongodump writes: an archive of shop (hoard reads its prelude to check that shop was dumped).
      await writeFile(
        join(directory, "shop.archive"),
        Buffer.concat([
          encodePrelude({ concurrentCollections: 1, formatVersion: "0.1", serverVersion: "7.0.0", toolVersion: "stand-in" }, [
            { database: "shop", collection: "orders", metadata: "", size: 0, type: "collection" },
          ]),
          encodeNamespaceHeader({ database: "shop", collection: "orders" }, 0n),
          encodeTerminator(),
        ]),
      );
      for (const name of ["mongodump", "mongorestore"]) {
        // Records the URI it was given; never reached in the target-check test.
        await writeFile(
          join(directory, name),
          `#!/bin/sh\nfor a in "$@"; do case "$a" in --config=*) cp "\${a#--config=}" "${directory}/records/${name}.config";; esac; done\ncat > /dev/null 2>&1 || true\ncat "${directory}/shop.archive"\n`,
        );
        await chmod(join(directory, name), 0o755);
      }
    });
    afterAll(async () => {
      await rm(directory, { recursive: true, force: true });
    });

    it("fails the restore's target check with UNREACHABLE within the timeout, before mongorestore runs", async () => {
      const driver = createMongoDriver({
        url: silentUrl,
        engine: "tools",
        mongorestorePath: join(directory, "mongorestore"),
        connectTimeoutMs,
      });
      const { error, elapsedMs } = await timedFailure(() =>
        driver.restore({ kind: "stream", stream: Readable.from([archive]) }, { workDirectory }),
      );
      expectUnreachable(error, elapsedMs);
      await expect(stat(join(directory, "records", "mongorestore.config"))).rejects.toMatchObject({ code: "ENOENT" });
    });

    it("gives mongodump and mongorestore the timeout in the URI of their configuration file", async () => {
      const options = {
        url: silentUrl,
        engine: "tools" as const,
        mongodumpPath: join(directory, "mongodump"),
        mongorestorePath: join(directory, "mongorestore"),
        connectTimeoutMs,
      };
      await dumpToBuffer(createMongoDriver(options));
      await createMongoDriver(options).restore({ kind: "stream", stream: Readable.from([archive]) }, { workDirectory, replace: true });
      for (const name of ["mongodump", "mongorestore"]) {
        const uri = JSON.parse((await readFile(join(directory, "records", `${name}.config`), "utf8")).slice("uri: ".length)) as string;
        expect(new URLSearchParams(uri.slice(uri.indexOf("?") + 1)).get("serverSelectionTimeoutMS"), name).toBe("2000");
        expect(new URLSearchParams(uri.slice(uri.indexOf("?") + 1)).get("connectTimeoutMS"), name).toBe("2000");
      }
    });

    it("leaves the timeouts to the URL when it sets them", async () => {
      await dumpToBuffer(
        createMongoDriver({
          url: `${silentUrl}?serverSelectionTimeoutMS=1234`,
          engine: "tools",
          mongodumpPath: join(directory, "mongodump"),
          connectTimeoutMs,
        }),
      );
      const uri = JSON.parse((await readFile(join(directory, "records", "mongodump.config"), "utf8")).slice("uri: ".length)) as string;
      const options = new URLSearchParams(uri.slice(uri.indexOf("?") + 1));
      expect(options.getAll("serverSelectionTimeoutMS")).toEqual(["1234"]);
      expect(options.get("connectTimeoutMS")).toBe("2000");
    });
  });
});
