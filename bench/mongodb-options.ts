/**
 * Issue 12's look at MongoDB parallelism, on the database of bench/mongodb-generate.ts:
 *
 *   dump     mongodump --archive --gzip with --numParallelCollections 1, 2 and 4 (4 is its default)
 *            against hoard's built-in engine with parallelCollections 1, 2 and 4 (library runs,
 *            bench/mongodb-library-run.ts)
 *   restore  mongorestore --archive --gzip of mongodump's archive: its defaults, and
 *            --numParallelCollections=1 --numInsertionWorkersPerCollection=1 (what TESTING.md
 *            advises for FerretDB); hoard's built-in engine with insertsInFlight 1, 2 and 4, of its
 *            own sequential archive and of mongodump's interleaved one
 *
 * Every variant runs once per round, rounds interleaved in rotating order; every restore is
 * compared with the source (documents, SHA-256 of their BSON in _id order, and index names except
 * where mongorestore had to skip them on FerretDB).
 *
 *   pnpm exec tsx bench/mongodb-options.ts [--size-mb 100] [--repeat 3] [--parts dump,restore]
 */

import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { assertSucceeded, collectStdout, waitForExit } from "./child-process.ts";
import {
  describeRun,
  machineDescription,
  markdownRows,
  measureOnce,
  type RunSample,
  resultsDirectory,
  roundOrder,
  summarizeRuns,
  type VariantRow,
  withServerCpu,
  writeResultsFile,
} from "./mariadb-mongodb-shared.ts";
import { compareMongoFingerprints, findMongoTools, type MongoFingerprint, mongoFingerprint, plainMongorestore } from "./mongodb.ts";
import { type BenchmarkMongo, prepareMongoBenchmarkDatabase, startBenchmarkMongo } from "./mongodb-generate.ts";
import { runPipeline } from "./plain-pipelines.ts";
import { ProcessMemorySampler } from "./process-memory.ts";

const libraryRunner = fileURLToPath(new URL("./mongodb-library-run.ts", import.meta.url));
const rssReporter = fileURLToPath(new URL("./rss-reporter.mjs", import.meta.url));
const log = (line: string) => process.stderr.write(`[mongodb options] ${line}\n`);

/** Runs bench/mongodb-library-run.ts in a measured Node.js process. */
async function libraryRun(run: Record<string, unknown>): Promise<RunSample & { stdout: string }> {
  // The reporter writes here when the child exits; on a fresh checkout the directory does not exist yet.
  await mkdir(resultsDirectory, { recursive: true });
  const reportFile = join(resultsDirectory, `resources-${process.pid}-${Date.now()}.json`);
  const sampler = new ProcessMemorySampler();
  const started = performance.now();
  const child = spawn(process.execPath, ["--import", pathToFileURL(rssReporter).href, libraryRunner, JSON.stringify(run)], {
    env: { ...process.env, HOARD_BENCH_RSS_FILE: reportFile },
    stdio: ["ignore", "pipe", "pipe"],
  });
  sampler.watch(child.pid, true);
  const stdout = collectStdout(child);
  const exit = await waitForExit("hoard (library)", child);
  const wallSeconds = (performance.now() - started) / 1000;
  const processes = sampler.stop().filter((process) => process.pid !== child.pid);
  assertSucceeded([exit]);
  const report = JSON.parse(await readFile(reportFile, "utf8")) as {
    maxRssKilobytes: number;
    userCpuMicroseconds: number;
    systemCpuMicroseconds: number;
  };
  await rm(reportFile, { force: true });
  return {
    wallSeconds,
    nodePeakKilobytes: report.maxRssKilobytes,
    nodeCpuSeconds: (report.userCpuMicroseconds + report.systemCpuMicroseconds) / 1e6,
    processes,
    stdout: stdout(),
  };
}

interface Setting {
  server: BenchmarkMongo;
  database: string;
  directory: string;
  expected: MongoFingerprint;
  tools: ReturnType<typeof findMongoTools>;
  ferretdb: boolean;
}

interface Item {
  id: string;
  label: string;
  run(setting: Setting, round: number): Promise<RunSample>;
}

let restoreCounter = 0;

async function intoFreshDatabase(
  setting: Setting,
  withIndexes: boolean,
  restore: (database: string) => Promise<RunSample>,
): Promise<RunSample> {
  restoreCounter += 1;
  const database = `hoard_bench_restore_${process.pid}_${restoreCounter}`;
  await setting.server.client.db(database).dropDatabase();
  try {
    const sample = await withServerCpu(setting.server.serverPids, () => restore(database));
    const difference = compareMongoFingerprints(setting.expected, await mongoFingerprint(setting.server, database), withIndexes);
    if (difference !== undefined) throw new Error(`the restored database differs from the source: ${difference}`);
    return { ...sample, verified: withIndexes ? "documents and indexes match" : "documents match (indexes skipped)" };
  } finally {
    await setting.server.client.db(database).dropDatabase();
  }
}

function mongodumpItem(jobs: number): Item {
  return {
    id: `mongodump-j${jobs}`,
    label: `mongodump --archive --gzip --numParallelCollections=${jobs}`,
    async run(setting, round) {
      const output = join(setting.directory, `mongodump-j${jobs}-${round}.archive.gz`);
      try {
        const measured = await runPipeline(
          [
            {
              name: "mongodump",
              executable: setting.tools.mongodump,
              arguments: [
                `--uri=${setting.server.databaseUrl(setting.database)}`,
                "--archive",
                "--gzip",
                "--quiet",
                `--numParallelCollections=${jobs}`,
              ],
            },
          ],
          process.env,
          output,
        );
        return { wallSeconds: measured.wallSeconds, processes: measured.processes, outputBytes: measured.outputBytes };
      } finally {
        await rm(output, { force: true });
      }
    },
  };
}

function hoardDumpItem(parallelCollections: number): Item {
  return {
    id: `hoard-dump-p${parallelCollections}`,
    label: `hoard backup, built-in engine, parallelCollections ${parallelCollections}`,
    async run(setting, round) {
      const directory = await mkdtemp(join(setting.directory, "storage-"));
      try {
        const measured = await libraryRun({
          action: "backup",
          url: setting.server.databaseUrl(setting.database),
          directory,
          prefix: `p${parallelCollections}-${round}`,
          driver: { engine: "builtin", parallelCollections },
        });
        const { size } = JSON.parse(measured.stdout.trim().split("\n").at(-1) ?? "{}") as { size?: number };
        return { ...measured, outputBytes: size };
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
}

function mongorestoreItem(id: string, label: string, extra: string[]): Item {
  return {
    id,
    label,
    run: (setting) =>
      intoFreshDatabase(setting, true, (database) =>
        plainMongorestore(
          { server: setting.server, tools: setting.tools, sourceDatabase: setting.database, directory: setting.directory },
          join(setting.directory, "sources", "mongodump.archive.gz"),
          database,
          extra,
        ),
      ),
  };
}

function hoardRestoreItem(source: "hoard" | "mongodump", insertsInFlight: number): Item {
  return {
    id: `hoard-restore-${source}-f${insertsInFlight}`,
    label: `hoard restore, built-in engine, insertsInFlight ${insertsInFlight}, ${source === "hoard" ? "its own archive (sequential)" : "mongodump's archive (interleaved)"}`,
    run: (setting) =>
      intoFreshDatabase(setting, true, async (database) => {
        const directory = join(setting.directory, "sources", source);
        const key = (await readdir(directory)).find((name) => name.endsWith(".archive.gz") || name.endsWith(".archive.zst"));
        if (key === undefined) throw new Error(`no archive in ${directory}`);
        return libraryRun({
          action: "restore",
          url: setting.server.databaseUrl(database),
          directory,
          key,
          driver: { engine: "builtin", insertsInFlight },
        });
      }),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "size-mb": { type: "string", default: "100" },
      repeat: { type: "string", default: "3" },
      parts: { type: "string", default: "dump,restore" },
      "quiet-wait": { type: "string", default: "60" },
      "work-directory": { type: "string", default: tmpdir() },
    },
    strict: true,
  });
  const sizeMegabytes = Number(values["size-mb"]);
  const repeat = Number(values.repeat);
  const parts = values.parts.split(",");
  const quietWaitSeconds = Math.max(0, Number(values["quiet-wait"]) || 0);
  const started = new Date();
  const tools = findMongoTools();
  const server = await startBenchmarkMongo(log);
  const directory = await mkdtemp(join(resolve(values["work-directory"]), "hoard-bench-mongodb-options-"));
  try {
    const database = await prepareMongoBenchmarkDatabase({ server, sizeMegabytes, log });
    log("fingerprinting the source");
    const setting: Setting = {
      server,
      database: database.name,
      directory,
      expected: await mongoFingerprint(server, database.name),
      tools,
      ferretdb: server.description.startsWith("FerretDB"),
    };
    const groups: Array<{ title: string; items: Item[] }> = [];
    if (parts.includes("dump")) {
      groups.push({
        title: "Dump (gzip 6 everywhere; hoard stores into a local directory)",
        items: [mongodumpItem(1), mongodumpItem(2), mongodumpItem(4), hoardDumpItem(1), hoardDumpItem(2), hoardDumpItem(4)],
      });
    }
    if (parts.includes("restore")) {
      log("making the archives the restores read (hoard built-in, sequential; mongodump, its default 4 collections at once)");
      const sources = join(directory, "sources");
      await libraryRun({
        action: "backup",
        url: server.databaseUrl(database.name),
        directory: join(sources, "hoard"),
        prefix: "source",
        driver: { engine: "builtin" },
      });
      await runPipeline(
        [
          {
            name: "mongodump",
            executable: tools.mongodump,
            arguments: [`--uri=${server.databaseUrl(database.name)}`, "--archive", "--gzip", "--quiet"],
          },
        ],
        process.env,
        join(sources, "mongodump.archive.gz"),
      );
      await mkdir(join(sources, "mongodump"), { recursive: true });
      // hoard restores by key from a storage directory: the same file, under a name hoard reads as a gzip archive.
      await copyFile(join(sources, "mongodump.archive.gz"), join(sources, "mongodump", "source-20260101000000.archive.gz"));
      log(`archives: ${(await stat(join(sources, "mongodump.archive.gz"))).size} bytes from mongodump`);
      groups.push({
        title: `Restore (into a fresh database${setting.ferretdb ? "; mongorestore with --noIndexRestore, FerretDB rejects its index specs, then createIndexes, timed with it" : ""})`,
        items: [
          mongorestoreItem("mongorestore-default", "mongorestore --archive --gzip (defaults: 4 collections, 1 insertion worker each)", []),
          mongorestoreItem("mongorestore-j1", "mongorestore ... --numParallelCollections=1 --numInsertionWorkersPerCollection=1", [
            "--numParallelCollections=1",
            "--numInsertionWorkersPerCollection=1",
          ]),
          hoardRestoreItem("hoard", 1),
          hoardRestoreItem("hoard", 2),
          hoardRestoreItem("hoard", 4),
          hoardRestoreItem("mongodump", 1),
          hoardRestoreItem("mongodump", 2),
        ],
      });
    }
    const document: Record<string, unknown> = {
      started: started.toISOString(),
      sizeMegabytes,
      repeat,
      database,
      server: server.description,
    };
    const sections = [
      `${server.description}; database ${database.name}: ${(database.sizeBytes / 1024 / 1024).toFixed(1)} MiB (storageSize + indexSize), ${JSON.stringify(database.documents)}; runs per row: ${repeat}`,
      ...machineDescription(),
    ];
    for (const group of groups) {
      const samples = new Map<string, RunSample[]>(group.items.map((item) => [item.id, []]));
      for (let round = 0; round < repeat; round++) {
        for (const item of roundOrder(group.items, round)) {
          const sample = await measureOnce(quietWaitSeconds, () => item.run(setting, round), server.serverPids);
          samples.get(item.id)?.push(sample);
          log(`round ${round + 1}/${repeat} ${item.label}: ${describeRun(sample)}`);
        }
      }
      const rows: VariantRow[] = group.items.map((item) => ({
        id: item.id,
        label: item.label,
        kind: item.id.startsWith("hoard") ? "hoard" : "plain",
        samples: samples.get(item.id) ?? [],
        summary: summarizeRuns(samples.get(item.id) ?? []),
      }));
      document[group.title] = rows;
      sections.push("", `${group.title}:`, "", markdownRows(rows, rows[0]));
    }
    const path = await writeResultsFile("mongodb-options", started, document);
    process.stdout.write(`${sections.join("\n")}\n\nresults: ${path}\n`);
  } finally {
    await rm(directory, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/mongodb-options: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
