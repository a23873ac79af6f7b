/**
 * Issue 12's look at MariaDB: mariadb-dump is single-threaded, so what do its options, the
 * compression and a parallel restore do to backup time, size and restore time? On the database of
 * bench/mariadb-generate.ts:
 *
 *   dump         mariadb-dump with hoard's flags plus one option (none, --skip-quick,
 *                --skip-extended-insert, --net-buffer-length=16384, --net-buffer-length=16777216,
 *                --no-autocommit) into an uncompressed file: wall time, peak RSS, size; then
 *                `mariadb db < file` into a fresh database, compared with the source (the
 *                --skip-extended-insert restore only with --slow: one commit per row, over an hour here)
 *   compression  `mariadb-dump | gzip -1/-6/-9, pigz -6, zstd -1/-3` and hoard backup with gzip 1, 6
 *                (default), 9 and zstd (its default level 3): wall time, CPU, size
 *   parallel     the dump split by table (one mariadb-dump per table, hoard's flags), restored by one
 *                client after another, then by two and by four clients at once: what a parallel
 *                restore would gain on this machine
 *
 *   pnpm exec tsx bench/mariadb-options.ts [--size-mb 300] [--repeat 1] [--parts dump,compression,parallel] [--slow]
 *
 * Prints markdown tables; every sample goes to bench/.data/mariadb-options-<time>.json.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { findExecutable, type MariadbServer, startMariadb } from "@hoard/test-harness";
import {
  type DatabaseFingerprint,
  findMariadbTools,
  fingerprint,
  hoardDumpFlags,
  type MariadbTools,
  uncompressedDumpBytes,
  withFreshDatabase,
} from "./mariadb.ts";
import { mariadbBenchmarkTables, prepareMariadbBenchmarkDatabase, runMariadbSql } from "./mariadb-generate.ts";
import {
  describeRun,
  machineDescription,
  markdownRows,
  measureOnce,
  pidsNamed,
  type RunSample,
  roundOrder,
  runHoardCommand,
  runPlainRestore,
  storedBackup,
  summarizeRuns,
  type VariantRow,
  writeResultsFile,
} from "./mariadb-mongodb-shared.ts";
import { type PipelineStage, runPipeline } from "./plain-pipelines.ts";

interface Options {
  sizeMegabytes: number;
  repeat: number;
  parts: string[];
  slow: boolean;
  quietWaitSeconds: number;
  workDirectory: string;
}

interface Setting {
  server: MariadbServer;
  tools: MariadbTools;
  database: string;
  directory: string;
  expected: DatabaseFingerprint;
  log: (line: string) => void;
  options: Options;
}

const log = (line: string) => process.stderr.write(`[mariadb options] ${line}\n`);

function dumpStage(setting: Setting, extra: string[], tables: string[] = []): PipelineStage {
  return {
    name: "mariadb-dump",
    executable: setting.tools.dump,
    arguments: [...setting.server.clientArguments(), ...hoardDumpFlags, ...extra, "--", setting.database, ...tables],
  };
}

function restoreStages(setting: Setting, file: string, database: string): PipelineStage[] {
  return [
    { name: "cat", executable: findExecutable("cat") ?? "/bin/cat", arguments: [file] },
    { name: "mariadb", executable: setting.tools.client, arguments: [...setting.server.clientArguments(), `--database=${database}`] },
  ];
}

/** One measured thing: a label and a run; `followedBy` runs right after it, on what it made (a dump, then its restore). */
interface Item {
  id: string;
  label: string;
  run(round: number): Promise<RunSample>;
  followedBy?: Item;
}

/**
 * Runs every item once per round, rounds in rotating order (so no item always runs first or after
 * the same one), waiting for a quiet machine before each run, and folds each item's samples into a row.
 */
async function measureItems(setting: Setting, items: Item[]): Promise<VariantRow[]> {
  const all = items.flatMap((item) => (item.followedBy ? [item, item.followedBy] : [item]));
  const samples = new Map<string, RunSample[]>(all.map((item) => [item.id, []]));
  const measureOne = async (item: Item, round: number) => {
    const sample = await measureOnce(setting.options.quietWaitSeconds, () => item.run(round), pidsNamed("mariadbd"));
    samples.get(item.id)?.push(sample);
    setting.log(`round ${round + 1}/${setting.options.repeat} ${item.label}: ${describeRun(sample)}`);
  };
  for (let round = 0; round < setting.options.repeat; round++) {
    for (const item of roundOrder(items, round)) {
      await measureOne(item, round);
      if (item.followedBy) await measureOne(item.followedBy, round);
    }
  }
  return all.map((item) => ({
    id: item.id,
    label: item.label,
    kind: item.id.startsWith("hoard") ? "hoard" : "plain",
    samples: samples.get(item.id) ?? [],
    summary: summarizeRuns(samples.get(item.id) ?? []),
  }));
}

const dumpOptions: Array<{ id: string; extra: string[]; slowRestore?: boolean }> = [
  { id: "default", extra: [] },
  { id: "skip-quick", extra: ["--skip-quick"] },
  { id: "skip-extended-insert", extra: ["--skip-extended-insert"], slowRestore: true },
  { id: "net-buffer-16k", extra: ["--net-buffer-length=16384"] },
  { id: "net-buffer-16m", extra: ["--net-buffer-length=16777216"] },
  { id: "no-autocommit", extra: ["--no-autocommit"] },
];

/** Dump options: dump time, memory and size, and the restore time of what each wrote. */
async function dumpPart(setting: Setting): Promise<{ dumps: VariantRow[]; restores: VariantRow[] }> {
  const items: Item[] = dumpOptions.map((option) => {
    const file = join(setting.directory, `dump-${option.id}.sql`);
    const restore: Item | undefined =
      option.slowRestore && !setting.options.slow
        ? undefined
        : {
            id: `restore-${option.id}`,
            label: `mariadb db < dump (${option.extra.join(" ") || "hoard's flags"})`,
            run: async () => {
              try {
                return await withFreshDatabase(setting.server, setting.expected, (database) =>
                  runPlainRestore(restoreStages(setting, file, database), setting.server.clientEnvironment(), setting.directory),
                );
              } finally {
                await rm(file, { force: true });
              }
            },
          };
    return {
      id: `dump-${option.id}`,
      label: `mariadb-dump ${["(hoard's flags)", ...option.extra].join(" ")} > file`,
      run: async () => {
        try {
          const measured = await runPipeline([dumpStage(setting, option.extra)], setting.server.clientEnvironment(), file);
          return { wallSeconds: measured.wallSeconds, processes: measured.processes, outputBytes: measured.outputBytes };
        } finally {
          if (restore === undefined) await rm(file, { force: true });
        }
      },
      followedBy: restore,
    };
  });
  if (!setting.options.slow)
    setting.log("the --skip-extended-insert dump is not restored (one commit per row: pass --slow to wait for it)");
  const rows = await measureItems(setting, items);
  return { dumps: rows.filter((row) => row.id.startsWith("dump-")), restores: rows.filter((row) => row.id.startsWith("restore-")) };
}

/** Compressors behind the same dump, and hoard's own compression settings. */
async function compressionPart(setting: Setting): Promise<VariantRow[]> {
  const items: Item[] = [];
  const compressors: Array<{ id: string; name: string; arguments: string[] }> = [
    { id: "gzip-1", name: "gzip", arguments: ["-1", "-c"] },
    { id: "gzip-6", name: "gzip", arguments: ["-6", "-c"] },
    { id: "gzip-9", name: "gzip", arguments: ["-9", "-c"] },
    { id: "pigz-6", name: "pigz", arguments: ["-6", "-c"] },
    { id: "zstd-1", name: "zstd", arguments: ["-1", "-c", "-q"] },
    { id: "zstd-3", name: "zstd", arguments: ["-3", "-c", "-q"] },
  ];
  for (const compressor of compressors) {
    const executable = findExecutable(compressor.name);
    if (executable === undefined) {
      setting.log(`${compressor.name} is not on PATH: skipped`);
      continue;
    }
    items.push({
      id: `plain-${compressor.id}`,
      label: `mariadb-dump | ${compressor.name} ${compressor.arguments[0]}`,
      run: async (round) => {
        const output = join(setting.directory, `compressed-${compressor.id}-${round}`);
        try {
          const measured = await runPipeline(
            [dumpStage(setting, []), { name: compressor.name, executable, arguments: compressor.arguments }],
            setting.server.clientEnvironment(),
            output,
          );
          return { wallSeconds: measured.wallSeconds, processes: measured.processes, outputBytes: measured.outputBytes };
        } finally {
          await rm(output, { force: true });
        }
      },
    });
  }
  const hoardSettings: Array<{ id: string; arguments: string[] }> = [
    { id: "gzip-1", arguments: ["--compression-level", "1"] },
    { id: "gzip-6", arguments: [] },
    { id: "gzip-9", arguments: ["--compression-level", "9"] },
    { id: "zstd-3", arguments: ["--compression", "zstd"] },
  ];
  for (const hoard of hoardSettings) {
    items.push({
      id: `hoard-${hoard.id}`,
      label: `hoard backup ${hoard.arguments.join(" ") || "(default: gzip 6)"}`,
      run: async (round) => {
        const storage = await mkdtemp(join(setting.directory, "storage-"));
        const prefix = `options-${hoard.id}-${round}`;
        try {
          const measured = await runHoardCommand(
            ["backup", setting.server.databaseUrl(setting.database), storage, "--mode", "stream", "--prefix", prefix, ...hoard.arguments],
            { label: "hoard backup" },
          );
          return {
            wallSeconds: measured.wallSeconds,
            nodePeakKilobytes: measured.nodePeakKilobytes,
            nodeCpuSeconds: measured.nodeCpuSeconds,
            processes: measured.processes,
            outputBytes: (await storedBackup(storage, prefix)).bytes,
          };
        } finally {
          await rm(storage, { recursive: true, force: true });
        }
      },
    });
  }
  return measureItems(setting, items);
}

/** The dump split by table, restored with 1, 2 and 4 clients at once. */
async function parallelPart(setting: Setting): Promise<VariantRow[]> {
  const files: string[] = [];
  for (const table of mariadbBenchmarkTables) {
    const file = join(setting.directory, `table-${table}.sql`);
    await runPipeline([dumpStage(setting, [], [table])], setting.server.clientEnvironment(), file);
    files.push(file);
  }
  // Largest first, so the clients that run at once share the work as evenly as the tables allow.
  const sizes = await Promise.all(files.map(async (file) => ({ file, bytes: (await stat(file)).size })));
  const ordered = sizes.sort((left, right) => right.bytes - left.bytes).map((entry) => entry.file);
  const items: Item[] = [1, 2, 4].map((clients) => ({
    id: `parallel-${clients}`,
    label: `per-table dumps, ${clients} mariadb client(s) at once`,
    run: () =>
      withFreshDatabase(setting.server, setting.expected, async (database) => {
        const started = performance.now();
        const queue = [...ordered];
        const processes: RunSample["processes"] = [];
        const worker = async () => {
          for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
            const measured = await runPlainRestore(
              restoreStages(setting, file, database),
              setting.server.clientEnvironment(),
              setting.directory,
            );
            processes.push(...measured.processes);
          }
        };
        await Promise.all(Array.from({ length: clients }, worker));
        return { wallSeconds: (performance.now() - started) / 1000, processes };
      }),
  }));
  try {
    return await measureItems(setting, items);
  } finally {
    for (const file of files) await rm(file, { force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "size-mb": { type: "string", default: "300" },
      repeat: { type: "string", default: "1" },
      parts: { type: "string", default: "dump,compression,parallel" },
      slow: { type: "boolean", default: false },
      "quiet-wait": { type: "string", default: "60" },
      "work-directory": { type: "string", default: tmpdir() },
    },
    strict: true,
  });
  const options: Options = {
    sizeMegabytes: Number(values["size-mb"]),
    repeat: Number(values.repeat),
    parts: values.parts.split(",").map((part) => part.trim()),
    slow: values.slow,
    quietWaitSeconds: Math.max(0, Number(values["quiet-wait"]) || 0),
    workDirectory: resolve(values["work-directory"]),
  };
  const started = new Date();
  const server = await startMariadb();
  const directory = await mkdtemp(join(options.workDirectory, "hoard-bench-mariadb-options-"));
  try {
    const database = await prepareMariadbBenchmarkDatabase({ server, sizeMegabytes: options.sizeMegabytes, log });
    const setting: Setting = {
      server,
      tools: findMariadbTools(),
      database: database.name,
      directory,
      expected: await fingerprint(server, database.name),
      log,
      options,
    };
    log("warming up: one mariadb-dump to nowhere");
    const dumpBytes = await uncompressedDumpBytes({ tools: setting.tools, server, sourceDatabase: database.name });
    const sections: string[] = [
      `MariaDB ${(await runMariadbSql(server, undefined, "SELECT VERSION()")).trim()}; database ${database.name}: ${(database.sizeBytes / 1024 / 1024).toFixed(1)} MiB of InnoDB files, uncompressed dump ${(dumpBytes / 1024 / 1024).toFixed(1)} MiB; runs per row: ${options.repeat}`,
      ...machineDescription(),
    ];
    const document: Record<string, unknown> = { started: started.toISOString(), options, database, uncompressedDumpBytes: dumpBytes };
    if (options.parts.includes("dump")) {
      const { dumps, restores } = await dumpPart(setting);
      document.dumps = dumps;
      document.restores = restores;
      sections.push("", "Dump options (uncompressed output):", "", markdownRows(dumps, dumps[0], dumpBytes));
      sections.push(
        "",
        "Restoring each dump (`cat dump | mariadb db`, fresh database, checksums compared):",
        "",
        markdownRows(restores, restores[0]),
      );
    }
    if (options.parts.includes("compression")) {
      const rows = await compressionPart(setting);
      document.compression = rows;
      sections.push(
        "",
        "Compression (same dump flags):",
        "",
        markdownRows(
          rows,
          rows.find((candidate) => candidate.id === "plain-gzip-6"),
          dumpBytes,
        ),
      );
    }
    if (options.parts.includes("parallel")) {
      const rows = await parallelPart(setting);
      document.parallel = rows;
      sections.push("", "Parallel restore of the dump split by table:", "", markdownRows(rows, rows[0]));
    }
    const path = await writeResultsFile("mariadb-options", started, document);
    process.stdout.write(`${sections.join("\n")}\n\nresults: ${path}\n`);
  } finally {
    await rm(directory, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/mariadb-options: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
