/**
 * The restore half of `pnpm bench`: hoard restoring its own backups beside the plain tools
 * restoring theirs, made from the same benchmark database, each into a fresh empty database.
 *
 * The inputs are made once per database size, untimed, in a local directory (restores always
 * read from local disk, whatever `--storage` the backups use):
 *
 * | input | made by |
 * | --- | --- |
 * | hoard's stream backup | `hoard backup <db> <dir> --mode stream` with hoard's defaults |
 * | custom-format dump | `pg_dump --format=custom` (pg_dump's default compression) |
 * | hoard's directory backup | `hoard backup <db> <dir> --pg-jobs N` |
 * | directory dump | `pg_dump --format=directory --jobs=N` |
 * | `.sql.bz2` | `pg_dump` (plain SQL) piped into `lbzip2 -9` (`bzip2 -9` without lbzip2): the same format awesome-database-backup writes |
 *
 * Each hoard restore is compared with its plain counterpart (the target: within 1.1x of it):
 * `hoard restore` of the stream backup with `pg_restore --single-transaction` of the custom dump;
 * `hoard restore --pg-jobs N` of the directory backup with `pg_restore --jobs N` of the directory
 * dump; `hoard restore` of the `.sql.bz2` with `bzip2 -dc | psql --single-transaction` (two
 * processes joined by a pipe, no shell). The plain tools get the arguments hoard gives them
 * (`--exit-on-error`, `ON_ERROR_STOP`, no psqlrc).
 *
 * Before every run the target database is dropped and created empty and the server checkpoints
 * (so no run pays for the previous one's dirty pages); after it, the row counts of the four
 * tables must equal the source's, then the database is dropped. None of that is timed.
 */
import { spawn } from "node:child_process";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { PostgresServer } from "@hoard/test-harness";
import { assertSucceeded, waitForExit } from "./child-process.ts";
import type { DirectoryUsage } from "./disk-usage.ts";
import { cliScript, runHoardRestore } from "./hoard-runner.ts";
import type { PipelineStage, PlainTools } from "./plain-pipelines.ts";
import { requireTool, runStages } from "./plain-pipelines.ts";
import type { ProcessPeak } from "./process-memory.ts";

/** The database every restore run goes into (dropped before and after each run). */
export const restoreDatabaseName = "hoard_bench_restore";

/** The tables of bench/generate-postgres.ts, whose row counts check each restore. */
const checkedTables = ["customers", "orders", "events", "attachments"];

/** The inputs a restore can read; each is made on first use. */
export type RestoreInputKind = "hoard-stream" | "pg-custom" | "hoard-jobs" | "pg-directory" | "sql-bz2";

/** What a restore run needs from the benchmark. */
export interface RestoreContext {
  server: PostgresServer;
  tools: PlainTools;
  inputs: RestoreInputs;
  /** Parallel jobs of the `--jobs` variants. */
  jobs: number;
  /** Where hoard's TMPDIR is made for each run. */
  temporaryDirectory: string;
  /** Unique among all runs, e.g. `bench-300mb-r2`. */
  runName: string;
}

/** What one restore run took. */
export interface RestoreMeasurement {
  wallSeconds: number;
  processes: ProcessPeak[];
  nodePeakKilobytes?: number;
  nodeCpuSeconds?: number;
  /** Seconds from hoard's start until the process that restores (pg_restore, or the last psql) was first seen (0.1 s resolution). */
  toolStartSeconds?: number;
  /** Seconds from the last sample that found that process alive until hoard exited (20 ms resolution). */
  afterToolSeconds?: number;
  temporaryDisk?: DirectoryUsage;
  /** Bytes of the file or directory the restore reads. */
  inputBytes: number;
}

/** One restore to measure. */
export interface RestoreVariant {
  id: string;
  label: string;
  kind: "hoard" | "plain";
  /** For a hoard restore: the id of the plain restore it is held against. */
  comparedWith?: string;
  /** Informational only: no target uses it. */
  reference?: boolean;
  run(context: RestoreContext): Promise<RestoreMeasurement>;
}

/** One prepared input: where it is and how large. */
interface PreparedInput {
  path: string;
  bytes: number;
  seconds: number;
}

/**
 * Makes each restore input once per database size, when the first variant needs it, and
 * remembers what making it took (for the results file).
 */
export class RestoreInputs {
  readonly #directory: string;
  readonly #server: PostgresServer;
  readonly #sourceDatabase: string;
  readonly #tools: PlainTools;
  readonly #jobs: number;
  readonly #made = new Map<RestoreInputKind, Promise<PreparedInput>>();
  readonly #log: (line: string) => void;
  #counts: Promise<Map<string, string>> | undefined;

  constructor(options: {
    directory: string;
    server: PostgresServer;
    sourceDatabase: string;
    tools: PlainTools;
    jobs: number;
    log: (line: string) => void;
  }) {
    this.#directory = options.directory;
    this.#server = options.server;
    this.#sourceDatabase = options.sourceDatabase;
    this.#tools = options.tools;
    this.#jobs = options.jobs;
    this.#log = options.log;
  }

  /** The input of a kind, made now if it was not yet. */
  get(kind: RestoreInputKind): Promise<PreparedInput> {
    let made = this.#made.get(kind);
    if (made === undefined) {
      made = this.#make(kind);
      this.#made.set(kind, made);
      // A failed input is made again by the next run that needs it.
      made.catch(() => this.#made.delete(kind));
    }
    return made;
  }

  /** What each input was, for the results file. */
  async describe(): Promise<Record<string, PreparedInput>> {
    const described: Record<string, PreparedInput> = {};
    for (const [kind, made] of this.#made) {
      try {
        described[kind] = await made;
      } catch {}
    }
    return described;
  }

  /** Row counts of the source's tables, asked once. */
  sourceCounts(): Promise<Map<string, string>> {
    this.#counts ??= tableCounts(this.#server, this.#sourceDatabase);
    return this.#counts;
  }

  /** Removes every input. */
  async remove(): Promise<void> {
    await rm(this.#directory, { recursive: true, force: true });
  }

  async #make(kind: RestoreInputKind): Promise<PreparedInput> {
    const directory = join(this.#directory, kind);
    await rm(directory, { recursive: true, force: true });
    await mkdir(directory, { recursive: true });
    const started = performance.now();
    this.#log(`making the restore input ${kind} (untimed)`);
    const path = await this.#write(kind, directory);
    const seconds = (performance.now() - started) / 1000;
    const bytes = await sizeOf(path);
    this.#log(`  ${kind}: ${(bytes / 1024 / 1024).toFixed(1)} MiB in ${seconds.toFixed(1)} s`);
    return { path, bytes, seconds };
  }

  async #write(kind: RestoreInputKind, directory: string): Promise<string> {
    const environment = this.#server.clientEnvironment(this.#sourceDatabase);
    const databaseUrl = this.#server.databaseUrl(this.#sourceDatabase);
    switch (kind) {
      case "hoard-stream":
        return hoardBackupInto(databaseUrl, directory, ["--mode", "stream"]);
      case "hoard-jobs":
        return hoardBackupInto(databaseUrl, directory, ["--pg-jobs", String(this.#jobs)]);
      case "pg-custom": {
        const path = join(directory, "dump.custom");
        await runStages(
          [{ name: "pg_dump", executable: this.#tools.pgDump, arguments: ["--format=custom", "--no-password"] }],
          environment,
          {
            outputPath: path,
          },
        );
        return path;
      }
      case "pg-directory": {
        const path = join(directory, "dump.directory");
        const args = ["--format=directory", `--jobs=${this.#jobs}`, `--file=${path}`, "--no-password"];
        await runStages([{ name: "pg_dump", executable: this.#tools.pgDump, arguments: args }], environment, {});
        return path;
      }
      case "sql-bz2": {
        const path = join(directory, `${this.#sourceDatabase}.sql.bz2`);
        // lbzip2 writes the same bzip2 format as bzip2 -9 (900 kB blocks), on every core: only the making is faster.
        const compressor = this.#tools.lbzip2 ?? requireTool(this.#tools.bzip2, "bzip2", "bzip2");
        const stages: PipelineStage[] = [
          { name: "pg_dump", executable: this.#tools.pgDump, arguments: ["--no-password"] },
          { name: "bzip2", executable: compressor, arguments: ["-9", "-c"] },
        ];
        await runStages(stages, environment, { outputPath: path });
        return path;
      }
    }
  }
}

/** Backs the database up with the built CLI into a new local storage directory and returns the backup's path. */
async function hoardBackupInto(databaseUrl: string, directory: string, extraArguments: string[]): Promise<string> {
  const prefix = "restore-input";
  const child = spawn(process.execPath, [cliScript, "backup", databaseUrl, directory, "--prefix", prefix, ...extraArguments], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, TMPDIR: directory },
  });
  assertSucceeded([await waitForExit("hoard backup (restore input)", child)]);
  const stored = (await readdir(directory)).filter((name) => name.startsWith(`${prefix}-`) && !name.endsWith(".manifest.json"));
  if (stored.length !== 1) throw new Error(`expected one backup named ${prefix}-* in ${directory}, found ${stored.join(", ") || "none"}`);
  return join(directory, stored[0] as string);
}

/** Bytes of a file, or of every file under a directory. */
async function sizeOf(path: string): Promise<number> {
  const stats = await stat(path);
  if (!stats.isDirectory()) return stats.size;
  let total = 0;
  for (const entry of await readdir(path)) total += await sizeOf(join(path, entry));
  return total;
}

/** `count(*)` of each checked table. */
async function tableCounts(server: PostgresServer, database: string): Promise<Map<string, string>> {
  const sql = checkedTables.map((table) => `SELECT '${table}', count(*) FROM ${table}`).join(" UNION ALL ");
  const rows = (await server.query(sql, database)).trim().split("\n");
  return new Map(rows.map((row) => row.split("|") as [string, string]));
}

/** Drops and creates the restore database, then checkpoints: every run starts from the same empty database and clean buffers. */
export async function freshDatabase(server: PostgresServer): Promise<void> {
  await server.query(`DROP DATABASE IF EXISTS ${restoreDatabaseName} WITH (FORCE)`);
  await server.query(`CREATE DATABASE ${restoreDatabaseName}`);
  await server.query("CHECKPOINT");
}

/** Drops the restore database. */
export async function dropRestoreDatabase(server: PostgresServer): Promise<void> {
  await server.query(`DROP DATABASE IF EXISTS ${restoreDatabaseName} WITH (FORCE)`);
}

/** Checks that the restore brought every row back; throws when a table's count differs from the source's. */
export async function checkRestored(context: Pick<RestoreContext, "server" | "inputs">): Promise<void> {
  const expected = await context.inputs.sourceCounts();
  const actual = await tableCounts(context.server, restoreDatabaseName);
  for (const [table, count] of expected) {
    if (actual.get(table) !== count) throw new Error(`the restored ${table} has ${actual.get(table) ?? "no"} rows, the source ${count}`);
  }
}

/** Runs one restore between a fresh database and the row check, dropping the database afterwards whatever happened. */
async function inFreshDatabase(context: RestoreContext, restore: () => Promise<RestoreMeasurement>): Promise<RestoreMeasurement> {
  await freshDatabase(context.server);
  try {
    const measured = await restore();
    await checkRestored(context);
    return measured;
  } finally {
    await dropRestoreDatabase(context.server);
  }
}

/**
 * When the process that restores ran, in seconds from hoard's start: pg_restore (with --jobs, its
 * workers too) when there is one, else the last psql hoard started (the first ones ask the
 * server's version and whether the database is empty).
 */
function restoringToolSpan(processes: readonly ProcessPeak[]): { start: number; end: number } | undefined {
  const pgRestore = processes.filter((peak) => peak.name === "pg_restore");
  const psqls = processes.filter((peak) => peak.name === "psql").sort((left, right) => left.firstSeenSeconds - right.firstSeenSeconds);
  const tools = pgRestore.length > 0 ? pgRestore : psqls.slice(-1);
  if (tools.length === 0) return undefined;
  return { start: Math.min(...tools.map((peak) => peak.firstSeenSeconds)), end: Math.max(...tools.map((peak) => peak.lastSeenSeconds)) };
}

function hoardRestore(id: string, label: string, input: RestoreInputKind, comparedWith: string, jobs: boolean): RestoreVariant {
  return {
    id,
    label,
    kind: "hoard",
    comparedWith,
    run: async (context) => {
      const prepared = await context.inputs.get(input);
      return inFreshDatabase(context, async () => {
        const measured = await runHoardRestore({
          backupUrl: prepared.path,
          databaseUrl: context.server.databaseUrl(restoreDatabaseName),
          extraArguments: jobs ? ["--pg-jobs", String(context.jobs)] : [],
          name: `${context.runName}-${id}`,
          temporaryDirectory: context.temporaryDirectory,
        });
        const span = restoringToolSpan(measured.processes);
        return {
          wallSeconds: measured.wallSeconds,
          processes: measured.processes,
          nodePeakKilobytes: measured.nodePeakKilobytes,
          nodeCpuSeconds: measured.nodeCpuSeconds,
          toolStartSeconds: span?.start,
          afterToolSeconds: span === undefined ? undefined : Math.max(0, measured.wallSeconds - span.end),
          temporaryDisk: measured.temporaryDisk,
          inputBytes: prepared.bytes,
        };
      });
    },
  };
}

function plainRestore(
  id: string,
  label: string,
  input: RestoreInputKind,
  stages: (tools: PlainTools, path: string, jobs: number) => PipelineStage[],
  reference = false,
): RestoreVariant {
  return {
    id,
    label,
    kind: "plain",
    reference,
    run: async (context) => {
      const prepared = await context.inputs.get(input);
      const pipeline = stages(context.tools, prepared.path, context.jobs);
      return inFreshDatabase(context, async () => {
        const measured = await runStages(pipeline, context.server.clientEnvironment(restoreDatabaseName), {});
        return { wallSeconds: measured.wallSeconds, processes: measured.processes, inputBytes: prepared.bytes };
      });
    },
  };
}

/** psql as hoard runs a script: no psqlrc, quiet, stop at the first error, one transaction. */
const psqlArguments = [
  "--no-password",
  "--no-psqlrc",
  "--quiet",
  "--set=ON_ERROR_STOP=1",
  "--single-transaction",
  `--dbname=${restoreDatabaseName}`,
];

function pgRestore(tools: PlainTools): string {
  return requireTool(tools.pgRestore, "pg_restore", "postgresql-client");
}

function psql(tools: PlainTools): string {
  return requireTool(tools.psql, "psql", "postgresql-client");
}

/** Every restore variant, in the order of the table; `jobs` is the N of the --jobs variants (named in their labels). */
export function restoreVariants(jobs: number): RestoreVariant[] {
  return [
    hoardRestore("restore-hoard", "hoard restore (stream backup, hoard's defaults)", "hoard-stream", "restore-pg-restore", false),
    plainRestore("restore-pg-restore", "pg_restore --single-transaction (pg_dump -Fc file)", "pg-custom", (tools, path) => [
      {
        name: "pg_restore",
        executable: pgRestore(tools),
        arguments: ["--no-password", "--exit-on-error", "--single-transaction", `--dbname=${restoreDatabaseName}`, path],
      },
    ]),
    hoardRestore(
      "restore-hoard-jobs",
      `hoard restore --pg-jobs ${jobs} (--pg-jobs ${jobs} backup)`,
      "hoard-jobs",
      "restore-pg-restore-jobs",
      true,
    ),
    plainRestore(
      "restore-pg-restore-jobs",
      `pg_restore --jobs ${jobs} (pg_dump -Fd -j ${jobs} directory)`,
      "pg-directory",
      (tools, path, jobs) => [
        {
          name: "pg_restore",
          executable: pgRestore(tools),
          arguments: ["--no-password", "--exit-on-error", `--jobs=${jobs}`, "--format=directory", `--dbname=${restoreDatabaseName}`, path],
        },
      ],
    ),
    hoardRestore("restore-hoard-bz2", "hoard restore (.sql.bz2)", "sql-bz2", "restore-bzip2-psql", false),
    plainRestore("restore-bzip2-psql", "bzip2 -dc file | psql --single-transaction", "sql-bz2", (tools, path) => [
      { name: "bzip2", executable: requireTool(tools.bzip2, "bzip2", "bzip2"), arguments: ["-dc", path] },
      { name: "psql", executable: psql(tools), arguments: psqlArguments },
    ]),
    plainRestore(
      "restore-lbzip2-psql",
      "lbzip2 -dc file | psql --single-transaction (reference)",
      "sql-bz2",
      (tools, path) => [
        { name: "lbzip2", executable: requireTool(tools.lbzip2, "lbzip2", "lbzip2"), arguments: ["-dc", path] },
        { name: "psql", executable: psql(tools), arguments: psqlArguments },
      ],
      true,
    ),
  ];
}
