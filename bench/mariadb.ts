/**
 * hoard against the plain MariaDB tools, backup and restore, on the database of
 * bench/mariadb-generate.ts:
 *
 *   backup:  hoard backup (stream mode, default settings: mariadb-dump -> zstd (level 3, minimum match 6) in Node.js; and
 *            with --compression gzip)
 *            against `mariadb-dump <hoard's flags> db | gzip -6 > file`
 *   restore: hoard restore of its own backup into a fresh empty database
 *            against `gzip -dc dump.sql.gz | mariadb db` of the plain dump, also into a fresh one
 *
 *   pnpm exec tsx bench/mariadb.ts [--size-mb 300] [--repeat 3]
 *
 * Options:
 *   --size-mb N            database size on disk in MiB, the tables' InnoDB files (default 300); made
 *                          once by bench/mariadb-generate.ts and reused by later runs
 *   --repeat N             runs of each variant, interleaved in rotating order (default 3); the table
 *                          shows the median wall time and the highest peak memory
 *   --fresh                rebuild the database
 *   --variants a,b         only these variants (default all): hoard-backup, hoard-backup-gzip,
 *                          mariadb-dump-gzip, hoard-restore, mariadb-restore
 *   --quiet-wait SECONDS   before each run, wait up to this long for the CPUs to be under 20% busy
 *                          with other work (default 60; 0: no wait); the busy share is recorded
 *   --work-directory DIR   where backups and dumps go (default the system's temporary directory)
 *
 * Every restore is compared with the source (CHECKSUM TABLE of each table, and the row counts); a
 * difference fails the run. Memory: hoard's Node.js process reports its own ru_maxrss
 * (bench/rss-reporter.mjs); the tools' VmHWM is sampled from /proc (bench/process-memory.ts).
 * Results: markdown and PASS/FAIL lines on stdout, every sample in bench/.data/mariadb-<time>.json.
 * Needs the built CLI (pnpm build), mariadb-dump, mariadb and gzip on PATH, and Linux.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { findExecutable, type MariadbServer, startMariadb } from "@hoard/test-harness";
import { assertSucceeded, waitForExit } from "./child-process.ts";
import { mariadbBenchmarkTables, prepareMariadbBenchmarkDatabase, rowCounts, runMariadbSql } from "./mariadb-generate.ts";
import {
  type BenchmarkReport,
  describeRun,
  machineDescription,
  markdownRows,
  measureOnce,
  pidsNamed,
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
import { type PipelineStage, runPipeline } from "./plain-pipelines.ts";
import { canSampleProcessMemory } from "./process-memory.ts";

/** What to run. */
export interface MariadbBenchmarkOptions {
  sizeMegabytes: number;
  repeat: number;
  fresh: boolean;
  /** Variant ids; undefined: all. */
  variants?: string[];
  quietWaitSeconds: number;
  workDirectory: string;
  /** Progress lines. @default stderr */
  log?: (line: string) => void;
}

export const mariadbDefaults: MariadbBenchmarkOptions = {
  sizeMegabytes: 300,
  repeat: 3,
  fresh: false,
  quietWaitSeconds: 60,
  workDirectory: tmpdir(),
};

/**
 * The dump flags hoard's driver gives mariadb-dump (packages/driver-mariadb/src/driver.ts
 * `dumpFlags`), which the plain pipeline takes too so both dump the same SQL; hoard adds only
 * `--verbose` (progress on stderr, for its connect guard).
 */
export const hoardDumpFlags = [
  "--single-transaction",
  "--skip-lock-tables",
  "--quick",
  "--routines",
  "--events",
  "--triggers",
  "--hex-blob",
  "--default-character-set=utf8mb4",
  "--max-allowed-packet=1G",
];

/** The plain tools. */
export interface MariadbTools {
  dump: string;
  client: string;
  gzip: string;
}

export function findMariadbTools(): MariadbTools {
  const dump = findExecutable("mariadb-dump") ?? findExecutable("mysqldump");
  const client = findExecutable("mariadb") ?? findExecutable("mysql");
  const gzip = findExecutable("gzip");
  if (dump === undefined || client === undefined || gzip === undefined) {
    throw new Error("mariadb-dump, mariadb and gzip must be on PATH (mariadb-client, gzip)");
  }
  return { dump, client, gzip };
}

/** What every run needs. */
interface Context {
  server: MariadbServer;
  tools: MariadbTools;
  sourceDatabase: string;
  directory: string;
  /** The checksums and row counts of the source, which every restore must reproduce. */
  expected: DatabaseFingerprint;
  /** hoard's backup and the plain dump that the restore variants restore (made once, before the rounds). */
  hoardBackup?: string;
  plainDump?: string;
  runName: string;
}

interface Variant {
  id: string;
  label: string;
  kind: "hoard" | "plain";
  phase: "backup" | "restore";
  run(context: Context): Promise<RunSample>;
}

/** `mariadb-dump <flags> db | gzip -<level> > file`, the plain backup. */
export function plainDumpStages(
  tools: MariadbTools,
  server: MariadbServer,
  database: string,
  extra: string[] = [],
  level = 6,
): PipelineStage[] {
  return [
    { name: "mariadb-dump", executable: tools.dump, arguments: [...server.clientArguments(), ...hoardDumpFlags, ...extra, "--", database] },
    { name: "gzip", executable: tools.gzip, arguments: [`-${level}`, "-c"] },
  ];
}

/** `gzip -dc file | mariadb db`, the plain restore. */
export function plainRestoreStages(tools: MariadbTools, server: MariadbServer, file: string, database: string): PipelineStage[] {
  return [
    { name: "gzip", executable: tools.gzip, arguments: ["-dc", file] },
    { name: "mariadb", executable: tools.client, arguments: [...server.clientArguments(), `--database=${database}`] },
  ];
}

const variants: Variant[] = [
  {
    id: "hoard-backup",
    label: "hoard backup (stream, its default: zstd 3, min match 6)",
    kind: "hoard",
    phase: "backup",
    run: (context) => hoardBackup(context, `${context.runName}-stream`, []),
  },
  {
    id: "hoard-backup-gzip",
    label: "hoard backup --compression gzip",
    kind: "hoard",
    phase: "backup",
    run: (context) => hoardBackup(context, `${context.runName}-gzip`, ["--compression", "gzip"]),
  },
  {
    id: "mariadb-dump-gzip",
    label: "mariadb-dump | gzip -6 > file",
    kind: "plain",
    phase: "backup",
    async run(context) {
      const output = join(context.directory, `${context.runName}-plain.sql.gz`);
      try {
        const measured = await runPipeline(
          plainDumpStages(context.tools, context.server, context.sourceDatabase),
          context.server.clientEnvironment(),
          output,
        );
        return { wallSeconds: measured.wallSeconds, processes: measured.processes, outputBytes: measured.outputBytes };
      } finally {
        await rm(output, { force: true });
      }
    },
  },
  {
    id: "hoard-restore",
    label: "hoard restore (its stream backup)",
    kind: "hoard",
    phase: "restore",
    run: (context) =>
      restoreIntoFreshDatabase(context, async (database) => {
        if (context.hoardBackup === undefined) throw new Error("no hoard backup to restore");
        const measured = await runHoardCommand(["restore", context.hoardBackup, context.server.databaseUrl(database)], {
          label: "hoard restore",
        });
        return {
          wallSeconds: measured.wallSeconds,
          nodePeakKilobytes: measured.nodePeakKilobytes,
          nodeCpuSeconds: measured.nodeCpuSeconds,
          processes: measured.processes,
        };
      }),
  },
  {
    id: "mariadb-restore",
    label: "gzip -dc dump.sql.gz | mariadb db",
    kind: "plain",
    phase: "restore",
    run: (context) =>
      restoreIntoFreshDatabase(context, async (database) => {
        if (context.plainDump === undefined) throw new Error("no plain dump to restore");
        return runPlainRestore(
          plainRestoreStages(context.tools, context.server, context.plainDump, database),
          context.server.clientEnvironment(),
          context.directory,
        );
      }),
  },
];

async function hoardBackup(context: Context, prefix: string, extra: string[]): Promise<RunSample> {
  const storage = await mkdtemp(join(context.directory, "storage-"));
  try {
    const measured = await runHoardCommand(
      ["backup", context.server.databaseUrl(context.sourceDatabase), storage, "--mode", "stream", "--prefix", prefix, ...extra],
      { label: "hoard backup" },
    );
    const stored = await storedBackup(storage, prefix);
    return {
      wallSeconds: measured.wallSeconds,
      nodePeakKilobytes: measured.nodePeakKilobytes,
      nodeCpuSeconds: measured.nodeCpuSeconds,
      processes: measured.processes,
      outputBytes: stored.bytes,
    };
  } finally {
    await rm(storage, { recursive: true, force: true });
  }
}

let restoreCounter = 0;

/**
 * Creates an empty database (utf8mb4, outside the timing: both sides get the same), runs the
 * restore into it, compares it with the source, and drops it whatever happens.
 */
function restoreIntoFreshDatabase(
  context: Context,
  restore: (database: string) => Promise<Omit<RunSample, "busyBefore">>,
): Promise<RunSample> {
  return withFreshDatabase(context.server, context.expected, restore);
}

/**
 * Runs `restore` into a new empty utf8mb4 database (made before, outside the timing), then
 * compares the result with `expected` (a difference throws) and drops the database whatever happens.
 */
export async function withFreshDatabase(
  server: MariadbServer,
  expected: DatabaseFingerprint | undefined,
  restore: (database: string) => Promise<Omit<RunSample, "busyBefore">>,
): Promise<RunSample> {
  restoreCounter += 1;
  const database = `hoard_bench_restore_${process.pid}_${restoreCounter}`;
  await runMariadbSql(server, undefined, `DROP DATABASE IF EXISTS \`${database}\`; CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4;`);
  try {
    const sample = await withServerCpu(pidsNamed("mariadbd"), () => restore(database));
    if (expected === undefined) return sample;
    const difference = compareFingerprints(expected, await fingerprint(server, database));
    if (difference !== undefined) throw new Error(`the restored database differs from the source: ${difference}`);
    return { ...sample, verified: "checksums match" };
  } finally {
    await runMariadbSql(server, undefined, `DROP DATABASE IF EXISTS \`${database}\``);
  }
}

/** CHECKSUM TABLE and exact row count of every table. */
export interface DatabaseFingerprint {
  checksums: Record<string, string>;
  rows: Record<string, number>;
}

export async function fingerprint(server: MariadbServer, database: string): Promise<DatabaseFingerprint> {
  const output = await runMariadbSql(
    server,
    database,
    `CHECKSUM TABLE ${mariadbBenchmarkTables.map((table) => `\`${table}\``).join(", ")} EXTENDED;`,
  );
  const checksums: Record<string, string> = {};
  for (const line of output.trim().split("\n")) {
    const [qualified, checksum] = line.split("\t");
    if (qualified !== undefined) checksums[qualified.slice(qualified.indexOf(".") + 1)] = checksum ?? "";
  }
  return { checksums, rows: await rowCounts(server, database) };
}

export function compareFingerprints(expected: DatabaseFingerprint, found: DatabaseFingerprint): string | undefined {
  const differences: string[] = [];
  for (const table of mariadbBenchmarkTables) {
    if (expected.rows[table] !== found.rows[table])
      differences.push(`${table}: ${found.rows[table]} rows, expected ${expected.rows[table]}`);
    else if (expected.checksums[table] !== found.checksums[table])
      differences.push(`${table}: checksum ${found.checksums[table]}, expected ${expected.checksums[table]}`);
  }
  return differences.length === 0 ? undefined : differences.join("; ");
}

/** One mariadb-dump to nowhere: warms the page cache and counts the uncompressed dump. */
export async function uncompressedDumpBytes(context: {
  tools: MariadbTools;
  server: MariadbServer;
  sourceDatabase: string;
}): Promise<number> {
  const child = spawn(context.tools.dump, [...context.server.clientArguments(), ...hoardDumpFlags, "--", context.sourceDatabase], {
    env: context.server.clientEnvironment(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let bytes = 0;
  child.stdout.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
  });
  assertSucceeded([await waitForExit("mariadb-dump", child)]);
  return bytes;
}

function selectVariants(ids: string[] | undefined): Variant[] {
  if (ids === undefined) return variants;
  const unknown = ids.filter((id) => !variants.some((variant) => variant.id === id));
  if (unknown.length > 0)
    throw new Error(`unknown variants ${unknown.join(", ")}: use ${variants.map((variant) => variant.id).join(", ")}`);
  return variants.filter((variant) => ids.includes(variant.id));
}

/** Runs the MariaDB benchmark and returns its report (markdown, PASS/FAIL, results file). */
export async function runMariadbBenchmark(given: Partial<MariadbBenchmarkOptions> = {}): Promise<BenchmarkReport> {
  const options: MariadbBenchmarkOptions = { ...mariadbDefaults, ...given };
  const log = options.log ?? ((line: string) => process.stderr.write(`[mariadb ${options.sizeMegabytes} MiB] ${line}\n`));
  if (!canSampleProcessMemory()) throw new Error("this benchmark reads /proc/<pid>/status for peak memory: it needs Linux");
  const chosen = selectVariants(options.variants);
  const started = new Date();
  const tools = findMariadbTools();
  const server = await startMariadb();
  const directory = await mkdtemp(join(options.workDirectory, "hoard-bench-mariadb-"));
  try {
    const database = await prepareMariadbBenchmarkDatabase({ server, sizeMegabytes: options.sizeMegabytes, fresh: options.fresh, log });
    const context: Context = {
      server,
      tools,
      sourceDatabase: database.name,
      directory,
      expected: await fingerprint(server, database.name),
      runName: "bench",
    };
    log("warming up: one mariadb-dump to count the uncompressed dump and fill the page cache");
    const dumpBytes = await uncompressedDumpBytes(context);
    const restoring = chosen.filter((variant) => variant.phase === "restore");
    if (restoring.some((variant) => variant.id === "hoard-restore")) {
      log("making the backup that hoard restores (hoard backup, default settings)");
      const storage = join(directory, "restore-source");
      await runHoardCommand(["backup", server.databaseUrl(database.name), storage, "--mode", "stream", "--prefix", "restore-source"], {
        label: "hoard backup",
      });
      context.hoardBackup = (await storedBackup(storage, "restore-source")).path;
    }
    if (restoring.some((variant) => variant.id === "mariadb-restore")) {
      log("making the dump that the plain restore reads (mariadb-dump | gzip -6)");
      context.plainDump = join(directory, "restore-source.sql.gz");
      await runPipeline(plainDumpStages(tools, server, database.name), server.clientEnvironment(), context.plainDump);
    }
    const samples = new Map<string, RunSample[]>(chosen.map((variant) => [variant.id, []]));
    for (let round = 0; round < options.repeat; round++) {
      for (const variant of roundOrder(chosen, round)) {
        const sample = await measureOnce(
          options.quietWaitSeconds,
          () => variant.run({ ...context, runName: `bench-r${round + 1}` }),
          pidsNamed("mariadbd"),
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
      wallTarget(`MariaDB ${size} backup no slower than the plain pipeline`, row("hoard-backup"), row("mariadb-dump-gzip"), 1),
      wallTarget(`MariaDB ${size} restore within 1.1x of the plain tool`, row("hoard-restore"), row("mariadb-restore"), 1.1),
    ].filter((target) => target.status !== "SKIP" || chosen.length === variants.length);
    const versions = await Promise.all([
      programOutput(tools.dump, ["--version"]),
      programOutput("gzip", ["--version"]).then((text) => text.split("\n")[0] ?? text),
      runMariadbSql(server, undefined, "SELECT VERSION()").then((text) => text.trim()),
    ]);
    const markdown = [
      `MariaDB ${versions[2]} (${server.origin}); ${versions[0]}; ${versions[1]}; runs per variant: ${options.repeat}`,
      `database ${database.name}: ${(database.sizeBytes / 1024 / 1024).toFixed(1)} MiB of InnoDB files, rows ${JSON.stringify(database.rows)}; uncompressed dump ${(dumpBytes / 1024 / 1024).toFixed(1)} MiB${database.reused ? "" : ` (generated in ${database.generationSeconds.toFixed(1)} s)`}`,
      ...machineDescription(),
      "",
      "Backup:",
      "",
      markdownRows(
        rows.filter((candidate) => chosen.find((variant) => variant.id === candidate.id)?.phase === "backup"),
        row("mariadb-dump-gzip"),
        dumpBytes,
      ),
      "",
      "Restore (into a fresh empty database, checked against the source with CHECKSUM TABLE):",
      "",
      markdownRows(
        rows.filter((candidate) => chosen.find((variant) => variant.id === candidate.id)?.phase === "restore"),
        row("mariadb-restore"),
      ),
      "",
      targetText(targets),
    ].join("\n");
    const resultsPath = await writeResultsFile("mariadb", started, {
      started: started.toISOString(),
      options: { ...options, log: undefined },
      database,
      uncompressedDumpBytes: dumpBytes,
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

function parseOptions(argv: string[]): MariadbBenchmarkOptions {
  const { values } = parseArgs({
    args: argv[0] === "--" ? argv.slice(1) : argv,
    options: {
      "size-mb": { type: "string", default: String(mariadbDefaults.sizeMegabytes) },
      repeat: { type: "string", default: String(mariadbDefaults.repeat) },
      fresh: { type: "boolean", default: false },
      variants: { type: "string" },
      "quiet-wait": { type: "string", default: String(mariadbDefaults.quietWaitSeconds) },
      "work-directory": { type: "string", default: mariadbDefaults.workDirectory },
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
    quietWaitSeconds: Math.max(0, Number(values["quiet-wait"]) || 0),
    workDirectory: resolve(values["work-directory"]),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runMariadbBenchmark(parseOptions(process.argv.slice(2)))
    .then((report) => {
      process.stdout.write(`${report.markdown}\n`);
      if (report.failed) process.exitCode = 1;
    })
    .catch((error: unknown) => {
      process.stderr.write(`bench/mariadb: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    });
}
