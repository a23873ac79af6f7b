/**
 * hoard against the plain MongoDB Database Tools, backup and restore, on the database of
 * bench/mongodb-generate.ts (FerretDB on PostgreSQL unless HOARD_BENCH_MONGODB_URL names a server):
 *
 *   backup:  hoard backup in stream mode with each engine (builtin: hoard's own on the official
 *            driver; tools: mongodump --archive), hoard's default zstd (level 3, min match 6) in Node.js, against
 *            `mongodump --archive --gzip > file`
 *   restore: hoard restore of its own backup (each engine) into a fresh empty database against
 *            `mongorestore --archive=file --gzip` of the plain dump, renamed into a fresh database
 *
 * hoard's default engine is `auto`: the tools when mongodump is on PATH, else builtin. Both are
 * measured; the targets are checked for each.
 *
 *   pnpm exec tsx bench/mongodb.ts [--size-mb 100] [--repeat 3]
 *
 * Options:
 *   --size-mb N            database size in MiB (dbStats storageSize + indexSize; default 100, see
 *                          docs/benchmarks-mariadb-mongodb.md for why not 300 on FerretDB)
 *   --repeat N             runs of each variant, interleaved in rotating order (default 3)
 *   --fresh                rebuild the database
 *   --variants a,b         only these variants (default all): hoard-backup-builtin, hoard-backup-tools,
 *                          mongodump-gzip, hoard-restore-builtin, hoard-restore-tools, mongorestore
 *   --mongodump-arg=ARG    one more argument for the plain mongodump (repeatable), e.g.
 *                          --mongodump-arg=--numParallelCollections=1
 *   --hoard-arg=ARG        one more argument for every hoard backup (repeatable)
 *   --quiet-wait SECONDS   wait up to this long before each run for the CPUs to be under 20% busy (default 60)
 *   --work-directory DIR   where backups and dumps go (default the system's temporary directory)
 *
 * mongodump and mongorestore come from PATH, else from .cache/bin (scripts/install-tools.sh builds
 * them). With FerretDB the plain mongorestore gets --noIndexRestore (FerretDB v1 rejects the `ns`
 * field mongorestore adds to index specs, FerretDB#4638) and the benchmark then creates the
 * source's indexes with createIndexes, timed with it, so both sides do the same work. Every restore is compared with the source: documents per collection and
 * a SHA-256 of every document's BSON in _id order; a difference fails the run.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { findExecutable, hasTool, toolPath } from "@hoard/test-harness";
import {
  type BenchmarkReport,
  describeRun,
  machineDescription,
  markdownRows,
  measureOnce,
  programOutput,
  type RunSample,
  roundOrder,
  runHoardCommand,
  runPlainRestore,
  storedBackup,
  summarizeRuns,
  type TargetLine,
  targetText,
  type VariantRow,
  wallTarget,
  withServerCpu,
  writeResultsFile,
} from "./mariadb-mongodb-shared.ts";
import { type BenchmarkMongo, mongoBenchmarkCollections, prepareMongoBenchmarkDatabase, startBenchmarkMongo } from "./mongodb-generate.ts";
import { runPipeline } from "./plain-pipelines.ts";
import { canSampleProcessMemory } from "./process-memory.ts";

/** What to run. */
export interface MongodbBenchmarkOptions {
  sizeMegabytes: number;
  repeat: number;
  fresh: boolean;
  variants?: string[];
  mongodumpArguments: string[];
  hoardArguments: string[];
  quietWaitSeconds: number;
  workDirectory: string;
  log?: (line: string) => void;
}

export const mongodbDefaults: MongodbBenchmarkOptions = {
  sizeMegabytes: 100,
  repeat: 3,
  fresh: false,
  mongodumpArguments: [],
  hoardArguments: [],
  quietWaitSeconds: 60,
  workDirectory: tmpdir(),
};

/** mongodump and mongorestore, and a PATH on which hoard's `tools` engine finds them. */
export interface MongoTools {
  mongodump: string;
  mongorestore: string;
  /** process.env with the tools' directory first on PATH. */
  environment: NodeJS.ProcessEnv;
}

export function findMongoTools(): MongoTools {
  const fromPath = (name: "mongodump" | "mongorestore") => findExecutable(name) ?? (hasTool(name) ? toolPath(name) : undefined);
  const mongodump = fromPath("mongodump");
  const mongorestore = fromPath("mongorestore");
  if (mongodump === undefined || mongorestore === undefined) {
    throw new Error("mongodump and mongorestore must be on PATH or in .cache/bin (scripts/install-tools.sh builds them)");
  }
  const directory = mongodump.slice(0, mongodump.lastIndexOf("/"));
  return { mongodump, mongorestore, environment: { ...process.env, PATH: `${directory}${delimiter}${process.env.PATH ?? ""}` } };
}

/** Documents per collection and a SHA-256 of all their BSON in _id order. */
export interface MongoFingerprint {
  documents: Record<string, number>;
  hashes: Record<string, string>;
  /** Index names per collection, sorted. */
  indexes: Record<string, string[]>;
}

export async function mongoFingerprint(server: BenchmarkMongo, database: string): Promise<MongoFingerprint> {
  const result: MongoFingerprint = { documents: {}, hashes: {}, indexes: {} };
  for (const name of mongoBenchmarkCollections) {
    const collection = server.client.db(database).collection(name);
    const hash = createHash("sha256");
    let count = 0;
    const cursor = collection.find({}, { raw: true, batchSize: 1000 }).sort({ _id: 1 });
    for await (const document of cursor as AsyncIterable<Uint8Array>) {
      hash.update(document);
      count += 1;
    }
    result.documents[name] = count;
    result.hashes[name] = hash.digest("hex");
    const indexes = await collection.listIndexes().toArray();
    result.indexes[name] = indexes.map((index) => String(index.name)).sort();
  }
  return result;
}

/** What differs, or undefined. `withIndexes: false` for a restore that was told to skip indexes. */
export function compareMongoFingerprints(expected: MongoFingerprint, found: MongoFingerprint, withIndexes = true): string | undefined {
  const differences: string[] = [];
  for (const name of mongoBenchmarkCollections) {
    if (expected.documents[name] !== found.documents[name])
      differences.push(`${name}: ${found.documents[name]} documents, expected ${expected.documents[name]}`);
    else if (expected.hashes[name] !== found.hashes[name]) differences.push(`${name}: the documents differ (SHA-256 of their BSON)`);
    if (withIndexes && expected.indexes[name]?.join(",") !== found.indexes[name]?.join(","))
      differences.push(`${name}: indexes ${found.indexes[name]?.join(",")}, expected ${expected.indexes[name]?.join(",")}`);
  }
  return differences.length === 0 ? undefined : differences.join("; ");
}

interface Context {
  server: BenchmarkMongo;
  tools: MongoTools;
  sourceDatabase: string;
  directory: string;
  expected: MongoFingerprint;
  options: MongodbBenchmarkOptions;
  /** Stored backups the restores read: per engine, and the plain dump. */
  backups: Partial<Record<"builtin" | "tools" | "plain", string>>;
  runName: string;
}

interface Variant {
  id: string;
  label: string;
  kind: "hoard" | "plain";
  phase: "backup" | "restore";
  run(context: Context): Promise<RunSample>;
}

function engineEnvironment(context: Context, engine: "builtin" | "tools"): NodeJS.ProcessEnv {
  // The builtin engine is chosen explicitly, so PATH does not matter to it; the tools engine needs mongodump on PATH.
  return engine === "tools" ? context.tools.environment : process.env;
}

async function hoardBackup(context: Context, engine: "builtin" | "tools", prefix: string, storage: string): Promise<HoardRun> {
  const measured = await runHoardCommand(
    [
      "backup",
      context.server.databaseUrl(context.sourceDatabase),
      storage,
      "--mode",
      "stream",
      "--prefix",
      prefix,
      "--mongodb-engine",
      engine,
      ...context.options.hoardArguments,
    ],
    { label: `hoard backup (${engine})`, environment: engineEnvironment(context, engine) },
  );
  const stored = await storedBackup(storage, prefix);
  return { ...measured, path: stored.path, outputBytes: stored.bytes };
}

type HoardRun = Awaited<ReturnType<typeof runHoardCommand>> & { path: string; outputBytes: number };

function plainDumpArguments(context: Context): string[] {
  return [
    `--uri=${context.server.databaseUrl(context.sourceDatabase)}`,
    "--archive",
    "--gzip",
    "--quiet",
    ...context.options.mongodumpArguments,
  ];
}

function backupVariant(engine: "builtin" | "tools"): Variant {
  return {
    id: `hoard-backup-${engine}`,
    label: `hoard backup --mongodb-engine ${engine} (stream, its default zstd)`,
    kind: "hoard",
    phase: "backup",
    async run(context) {
      const storage = await mkdtemp(join(context.directory, "storage-"));
      try {
        const measured = await hoardBackup(context, engine, `${context.runName}-${engine}`, storage);
        return {
          wallSeconds: measured.wallSeconds,
          nodePeakKilobytes: measured.nodePeakKilobytes,
          nodeCpuSeconds: measured.nodeCpuSeconds,
          processes: measured.processes,
          outputBytes: measured.outputBytes,
        };
      } finally {
        await rm(storage, { recursive: true, force: true });
      }
    },
  };
}

let restoreCounter = 0;

/** Restores into a database name nobody uses yet (made by the restore), compares it with the source, drops it. */
async function withFreshDatabase(
  context: Context,
  withIndexes: boolean,
  restore: (database: string) => Promise<Omit<RunSample, "busyBefore">>,
): Promise<RunSample> {
  restoreCounter += 1;
  const database = `hoard_bench_restore_${process.pid}_${restoreCounter}`;
  await context.server.client.db(database).dropDatabase();
  try {
    const sample = await withServerCpu(context.server.serverPids, () => restore(database));
    const difference = compareMongoFingerprints(context.expected, await mongoFingerprint(context.server, database), withIndexes);
    if (difference !== undefined) throw new Error(`the restored database differs from the source: ${difference}`);
    return { ...sample, verified: withIndexes ? "documents and indexes match" : "documents match (indexes not restored)" };
  } finally {
    await context.server.client.db(database).dropDatabase();
  }
}

function restoreVariant(engine: "builtin" | "tools"): Variant {
  return {
    id: `hoard-restore-${engine}`,
    label: `hoard restore --mongodb-engine ${engine} (its own backup)`,
    kind: "hoard",
    phase: "restore",
    run: (context) =>
      withFreshDatabase(context, true, async (database) => {
        const backup = context.backups[engine];
        if (backup === undefined) throw new Error(`no ${engine} backup to restore`);
        const measured = await runHoardCommand(["restore", backup, context.server.databaseUrl(database), "--mongodb-engine", engine], {
          label: `hoard restore (${engine})`,
          environment: engineEnvironment(context, engine),
        });
        return {
          wallSeconds: measured.wallSeconds,
          nodePeakKilobytes: measured.nodePeakKilobytes,
          nodeCpuSeconds: measured.nodeCpuSeconds,
          processes: measured.processes,
        };
      }),
  };
}

/** True when the server is FerretDB, whose v1 rejects mongorestore's index specs. */
function isFerretdb(context: { server: BenchmarkMongo }): boolean {
  return context.server.description.startsWith("FerretDB");
}

const variants: Variant[] = [
  backupVariant("builtin"),
  backupVariant("tools"),
  {
    id: "mongodump-gzip",
    label: "mongodump --archive --gzip > file",
    kind: "plain",
    phase: "backup",
    async run(context) {
      const output = join(context.directory, `${context.runName}-plain.archive.gz`);
      try {
        const measured = await runPipeline(
          [{ name: "mongodump", executable: context.tools.mongodump, arguments: plainDumpArguments(context) }],
          process.env,
          output,
        );
        return { wallSeconds: measured.wallSeconds, processes: measured.processes, outputBytes: measured.outputBytes };
      } finally {
        await rm(output, { force: true });
      }
    },
  },
  restoreVariant("builtin"),
  restoreVariant("tools"),
  {
    id: "mongorestore",
    label: "mongorestore --archive=file --gzip",
    kind: "plain",
    phase: "restore",
    run: (context) =>
      withFreshDatabase(context, true, async (database) => {
        const backup = context.backups.plain;
        if (backup === undefined) throw new Error("no plain dump to restore");
        return plainMongorestore(context, backup, database, []);
      }),
  },
];

/**
 * `mongorestore --archive=<file> --gzip`, renamed into `database`. On FerretDB, whose v1 rejects the
 * index specs mongorestore sends (FerretDB#4638), with --noIndexRestore and then the source's
 * indexes created with one createIndexes command per collection, timed with it: the same work
 * hoard's restore does, as an operator would have to do it by hand there.
 */
export async function plainMongorestore(
  context: { server: BenchmarkMongo; tools: MongoTools; sourceDatabase: string; directory: string },
  archive: string,
  database: string,
  extra: string[],
): Promise<RunSample> {
  const ferretdb = context.server.description.startsWith("FerretDB");
  const started = performance.now();
  const measured = await runPlainRestore(
    [
      {
        name: "mongorestore",
        executable: context.tools.mongorestore,
        arguments: [
          `--uri=${context.server.url}`,
          `--archive=${archive}`,
          "--gzip",
          "--quiet",
          `--nsFrom=${context.sourceDatabase}.$collection$`,
          `--nsTo=${database}.$collection$`,
          ...(ferretdb ? ["--noIndexRestore"] : []),
          ...extra,
        ],
      },
    ],
    process.env,
    context.directory,
  );
  if (ferretdb) {
    for (const name of mongoBenchmarkCollections) {
      const indexes = (await context.server.client.db(context.sourceDatabase).collection(name).listIndexes().toArray())
        .filter((index) => index.name !== "_id_")
        .map(({ v: _version, ns: _namespace, ...index }) => index);
      if (indexes.length > 0) await context.server.client.db(database).command({ createIndexes: name, indexes });
    }
  }
  return { wallSeconds: (performance.now() - started) / 1000, processes: measured.processes };
}

function selectVariants(ids: string[] | undefined): Variant[] {
  if (ids === undefined) return variants;
  const unknown = ids.filter((id) => !variants.some((variant) => variant.id === id));
  if (unknown.length > 0)
    throw new Error(`unknown variants ${unknown.join(", ")}: use ${variants.map((variant) => variant.id).join(", ")}`);
  return variants.filter((variant) => ids.includes(variant.id));
}

/** One mongodump --archive (no gzip) to nowhere: warms the caches and counts the uncompressed archive. */
async function uncompressedArchiveBytes(context: Context): Promise<number> {
  const sink = join(context.directory, "warm-up.archive");
  try {
    const measured = await runPipeline(
      [
        {
          name: "mongodump",
          executable: context.tools.mongodump,
          arguments: [`--uri=${context.server.databaseUrl(context.sourceDatabase)}`, "--archive", "--quiet"],
        },
      ],
      process.env,
      sink,
    );
    return measured.outputBytes;
  } finally {
    await rm(sink, { force: true });
  }
}

/** Runs the MongoDB benchmark and returns its report (markdown, PASS/FAIL, results file). */
export async function runMongodbBenchmark(given: Partial<MongodbBenchmarkOptions> = {}): Promise<BenchmarkReport> {
  const options: MongodbBenchmarkOptions = { ...mongodbDefaults, ...given };
  const log = options.log ?? ((line: string) => process.stderr.write(`[mongodb ${options.sizeMegabytes} MiB] ${line}\n`));
  if (!canSampleProcessMemory()) throw new Error("this benchmark reads /proc/<pid>/status for peak memory: it needs Linux");
  const chosen = selectVariants(options.variants);
  const started = new Date();
  const tools = findMongoTools();
  const server = await startBenchmarkMongo(log);
  const directory = await mkdtemp(join(options.workDirectory, "hoard-bench-mongodb-"));
  try {
    const database = await prepareMongoBenchmarkDatabase({ server, sizeMegabytes: options.sizeMegabytes, fresh: options.fresh, log });
    log("fingerprinting the source (documents, SHA-256 of their BSON, indexes)");
    const context: Context = {
      server,
      tools,
      sourceDatabase: database.name,
      directory,
      expected: await mongoFingerprint(server, database.name),
      options,
      backups: {},
      runName: "bench",
    };
    log("warming up: one mongodump --archive to count the uncompressed archive");
    const archiveBytes = await uncompressedArchiveBytes(context);
    const restoring = chosen.filter((variant) => variant.phase === "restore");
    for (const engine of ["builtin", "tools"] as const) {
      if (!restoring.some((variant) => variant.id === `hoard-restore-${engine}`)) continue;
      log(`making the backup that hoard restores (engine ${engine})`);
      context.backups[engine] = (
        await hoardBackup(context, engine, `restore-source-${engine}`, join(directory, `restore-source-${engine}`))
      ).path;
    }
    if (restoring.some((variant) => variant.id === "mongorestore")) {
      log("making the dump that the plain restore reads (mongodump --archive --gzip)");
      context.backups.plain = join(directory, "restore-source.archive.gz");
      await runPipeline(
        [{ name: "mongodump", executable: tools.mongodump, arguments: plainDumpArguments(context) }],
        process.env,
        context.backups.plain,
      );
    }
    const samples = new Map<string, RunSample[]>(chosen.map((variant) => [variant.id, []]));
    for (let round = 0; round < options.repeat; round++) {
      for (const variant of roundOrder(chosen, round)) {
        const sample = await measureOnce(
          options.quietWaitSeconds,
          () => variant.run({ ...context, runName: `bench-r${round + 1}` }),
          server.serverPids,
        );
        samples.get(variant.id)?.push(sample);
        log(`round ${round + 1}/${options.repeat} ${variant.label}: ${describeRun(sample)}`);
      }
    }
    const rows: VariantRow[] = chosen.map((variant) => ({
      id: variant.id,
      label: variant.label,
      kind: variant.kind,
      samples: samples.get(variant.id) ?? [],
      summary: summarizeRuns(samples.get(variant.id) ?? []),
    }));
    const row = (id: string) => rows.find((candidate) => candidate.id === id);
    const size = `${options.sizeMegabytes} MiB`;
    const targets: TargetLine[] = [
      wallTarget(
        `MongoDB ${size} backup (builtin engine) no slower than the plain tool`,
        row("hoard-backup-builtin"),
        row("mongodump-gzip"),
        1,
      ),
      wallTarget(
        `MongoDB ${size} backup (tools engine) no slower than the plain tool`,
        row("hoard-backup-tools"),
        row("mongodump-gzip"),
        1,
      ),
      wallTarget(
        `MongoDB ${size} restore (builtin engine) within 1.1x of the plain tool`,
        row("hoard-restore-builtin"),
        row("mongorestore"),
        1.1,
      ),
      wallTarget(
        `MongoDB ${size} restore (tools engine) within 1.1x of the plain tool`,
        row("hoard-restore-tools"),
        row("mongorestore"),
        1.1,
      ),
    ].filter((target) => target.status !== "SKIP" || chosen.length === variants.length);
    const versions = await Promise.all([programOutput(tools.mongodump, ["--version"]).then((text) => text.split("\n")[0] ?? text)]);
    const phaseRows = (phase: Variant["phase"]) =>
      rows.filter((candidate) => chosen.find((variant) => variant.id === candidate.id)?.phase === phase);
    const markdown = [
      `${server.description}; ${versions[0]}; runs per variant: ${options.repeat}${options.mongodumpArguments.length > 0 ? `; mongodump arguments: ${options.mongodumpArguments.join(" ")}` : ""}${options.hoardArguments.length > 0 ? `; hoard arguments: ${options.hoardArguments.join(" ")}` : ""}`,
      `database ${database.name}: ${(database.sizeBytes / 1024 / 1024).toFixed(1)} MiB (dbStats storageSize + indexSize), ${(database.dataBytes / 1024 / 1024).toFixed(1)} MiB of documents (dataSize), documents ${JSON.stringify(database.documents)}; uncompressed archive ${(archiveBytes / 1024 / 1024).toFixed(1)} MiB${database.reused ? "" : ` (generated in ${database.generationSeconds.toFixed(1)} s)`}`,
      ...machineDescription(),
      "",
      "Backup:",
      "",
      markdownRows(phaseRows("backup"), row("mongodump-gzip"), archiveBytes),
      "",
      `Restore (into a fresh database, checked against the source: documents per collection, SHA-256 of their BSON in _id order, index names${isFerretdb(context) ? "; on FerretDB the plain mongorestore runs with --noIndexRestore and the bench then creates the indexes, timed with it" : ""}):`,
      "",
      markdownRows(phaseRows("restore"), row("mongorestore")),
      "",
      targetText(targets),
    ].join("\n");
    const resultsPath = await writeResultsFile("mongodb", started, {
      started: started.toISOString(),
      options: { ...options, log: undefined },
      server: server.description,
      database,
      uncompressedArchiveBytes: archiveBytes,
      versions,
      rows,
      targets,
    });
    const failed = targets.some((target) => target.status === "FAIL") || rows.some((candidate) => candidate.summary.failures > 0);
    return { markdown: `${markdown}\n\nresults: ${resultsPath}`, targets, failed, resultsPath };
  } finally {
    await rm(directory, { recursive: true, force: true });
    await server.stop();
  }
}

function parseOptions(argv: string[]): MongodbBenchmarkOptions {
  const { values } = parseArgs({
    args: argv[0] === "--" ? argv.slice(1) : argv,
    options: {
      "size-mb": { type: "string", default: String(mongodbDefaults.sizeMegabytes) },
      repeat: { type: "string", default: String(mongodbDefaults.repeat) },
      fresh: { type: "boolean", default: false },
      variants: { type: "string" },
      "mongodump-arg": { type: "string", multiple: true, default: [] },
      "hoard-arg": { type: "string", multiple: true, default: [] },
      "quiet-wait": { type: "string", default: String(mongodbDefaults.quietWaitSeconds) },
      "work-directory": { type: "string", default: mongodbDefaults.workDirectory },
    },
    strict: true,
  });
  const sizeMegabytes = Number(values["size-mb"]);
  if (!Number.isInteger(sizeMegabytes) || sizeMegabytes < 10) throw new Error("--size-mb takes whole MiB, at least 10");
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error("--repeat takes a whole number of at least 1");
  return {
    sizeMegabytes,
    repeat,
    fresh: values.fresh,
    variants: values.variants?.split(",").map((id) => id.trim()),
    mongodumpArguments: values["mongodump-arg"],
    hoardArguments: values["hoard-arg"],
    quietWaitSeconds: Math.max(0, Number(values["quiet-wait"]) || 0),
    workDirectory: resolve(values["work-directory"]),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runMongodbBenchmark(parseOptions(process.argv.slice(2)))
    .then((report) => {
      process.stdout.write(`${report.markdown}\n`);
      if (report.failed) process.exitCode = 1;
    })
    .catch((error: unknown) => {
      process.stderr.write(`bench/mongodb: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    });
}
