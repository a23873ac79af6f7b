/**
 * One hoard backup or restore of MongoDB through the library (packages/core/dist and
 * packages/driver-mongodb/dist), with driver options the CLI has no flags for (the built-in
 * engine's parallelCollections and insertsInFlight). bench/mongodb-options.ts runs it as
 * `node --import bench/rss-reporter.mjs bench/mongodb-library-run.ts '<json>'`: Node.js 24 (and
 * 22.18+) strips the types itself, so no loader sits in the measured process. Needs `pnpm build`.
 *
 * The JSON: { "action": "backup", "url": "mongodb://.../db", "directory": "/tmp/store",
 * "prefix": "p", "driver": { "engine": "builtin", "parallelCollections": 2 } } or
 * { "action": "restore", "url": "...", "directory": "...", "key": "p-2026....archive.gz", "driver": { ... } }.
 */
import { backup, createLocalStorage, restore } from "../packages/core/dist/index.js";
import { createMongoDriver, type MongoDriverOptions } from "../packages/driver-mongodb/dist/index.js";

interface Run {
  action: "backup" | "restore";
  url: string;
  directory: string;
  prefix?: string;
  key?: string;
  driver?: Omit<MongoDriverOptions, "url">;
}

async function main(): Promise<void> {
  const run = JSON.parse(process.argv[2] ?? "{}") as Run;
  const storage = createLocalStorage({ directory: run.directory });
  const driver = createMongoDriver({ ...run.driver, url: run.url });
  if (run.action === "backup") {
    const result = await backup({ driver, storage, mode: "stream", prefix: run.prefix ?? "bench" });
    process.stdout.write(`${JSON.stringify({ key: result.key, size: result.size })}\n`);
  } else {
    if (run.key === undefined) throw new Error("a restore needs key");
    const result = await restore({ driver, storage, key: run.key });
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`mongodb-library-run: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
