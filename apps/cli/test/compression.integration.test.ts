// Compression choices from the command line against the real servers: zstd (the default), gzip and
// uncompressed backups of PostgreSQL and MariaDB are named for their compression, readable by the
// standard zstd and gzip programs, listed, verified and restored exactly; a level alone is zstd's;
// bad --compression flags fail with one line;
// and a .sql.bz2 made by the bzip2 program restores into PostgreSQL, while a truncated or damaged
// one fails as a damaged archive and leaves the target database as it was.
import { execFile, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { scratchName } from "@hoard/test-harness/vitest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, psql, seedSmall, snapshotSmall } from "./postgres.ts";
import { runCli } from "./run-cli.ts";

const run = promisify(execFile);
const postgres = inject("postgres");
let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-cli-compression-"));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** stdout of a program given `input` on stdin; throws with its stderr when it fails. */
function filter(program: string, args: string[], input: Buffer): Buffer {
  const result = spawnSync(program, args, { input, maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${program} ${args.join(" ")} exited ${result.status}: ${result.stderr?.toString()}`);
  return result.stdout;
}

/** A failure of the command: the exit code and exactly one line, `hoard: ...`, on stderr. */
function expectOneLineFailure(result: { code: number | null; stderr: string }, code: number, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(code);
  const lines = result.stderr.trim().split("\n");
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^hoard: /);
  expect(lines[0]).toMatch(pattern);
}

/** `hoard config check` of a file holding `text`. */
async function configCheck(text: string) {
  const file = join(directory, `hoard-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, text);
  return { file, ...(await runCli(["config", "check", "--config", file])) };
}

const jobs = (defaults: string, fields: string) =>
  `defaults:\n  storage: ./backups\n${defaults}jobs:\n  shop:\n    database: postgresql://app@db/shop\n    schedule: "0 3 * * *"\n${fields}`;

describe("compression in hoard.yaml", () => {
  it.each([
    ["", "    compression: zstd\n    compressionLevel: 19\n"],
    ["  compression: zstd\n", "    compressionLevel: 12\n"],
    // A level alone is the default compression's, zstd's: 12 and 19 are above gzip's 9.
    ["", "    compressionLevel: 12\n"],
    ["  compressionLevel: 19\n", ""],
    ["  compressionLevel: 1\n", "    compression: zstd\n"],
    ["", "    compression: none\n"],
    ["  compressionThreads: 1\n", "    compression: zstd\n    compressionThreads: 2\n"],
  ])("accepts defaults %j with job %j", async (defaults, fields) => {
    const result = await configCheck(jobs(defaults, fields));
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
  });

  it.each([
    ["", "    compression: gzip\n    compressionLevel: 12\n", "jobs.shop.compressionLevel: use 9 or less"],
    ["", "    compressionLevel: 20\n", "jobs.shop.compressionLevel: use 19 or less for zstd"],
    ["", "    compressionLevel: 0\n", "jobs.shop.compressionLevel: use 1 or more for zstd"],
    ["  compressionLevel: 20\n", "", "defaults.compressionLevel: use 19 or less for zstd"],
    ["", "    compression: zstd\n    compressionLevel: 0\n", "jobs.shop.compressionLevel: use 1 or more for zstd"],
    ["", "    compression: zstd\n    compressionLevel: 22\n", "jobs.shop.compressionLevel: use 19 or less for zstd"],
    ["  compressionLevel: 12\n", "    compression: gzip\n", "defaults.compressionLevel: use 9 or less"],
    ["", "    compression: none\n    compressionLevel: 3\n", "jobs.shop.compressionLevel: compression none takes no level"],
    ["", "    compression: brotli\n", "jobs.shop.compression: use one of gzip, zstd, none"],
    ["", "    compressionThreads: 0\n", "jobs.shop.compressionThreads: use 1 or more"],
  ])("refuses defaults %j with job %j: %s", async (defaults, fields, problem) => {
    const result = await configCheck(jobs(defaults, fields));
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toEqual([`hoard: ${result.file}: ${problem}`]);
  });
});

interface Manifest {
  compression: { format: string; level?: number; minMatch?: number };
}

describe("PostgreSQL backups with --compression", () => {
  let source: string;
  let expected: string;

  beforeAll(async () => {
    source = await createDatabase(postgres.url);
    await seedSmall(source);
    expected = await snapshotSmall(source);
  });

  it.each([
    [["--compression", "zstd"], "dump.zst", { format: "zstd", level: 3, minMatch: 6 }],
    [["--compression", "zstd", "--compression-level", "19", "--mode", "file"], "dump.zst", { format: "zstd", level: 19 }],
    [["--compression", "none"], "dump", { format: "none" }],
    [["--compression", "gzip", "--compression-level", "1"], "dump.gz", { format: "gzip", level: 1 }],
    [["--compression", "gzip"], "dump.gz", { format: "gzip", level: 6 }],
    [["--compression", "gzip", "--compression-threads", "1"], "dump.gz", { format: "gzip", level: 6 }],
    // No compression named: zstd at level 3 with a minimum match of 6; a level alone is zstd's own level.
    [[], "dump.zst", { format: "zstd", level: 3, minMatch: 6 }],
    [["--compression-threads", "1"], "dump.zst", { format: "zstd", level: 3, minMatch: 6 }],
    [["--compression-level", "12"], "dump.zst", { format: "zstd", level: 12 }],
    [["--compression-level", "3"], "dump.zst", { format: "zstd", level: 3 }],
    [["--compression", "zstd", "--compression-threads", "2", "--mode", "file"], "dump.zst", { format: "zstd", level: 3, minMatch: 6 }],
  ])("%j: named .%s, recorded in the manifest, listed, verified and restored exactly", async (flags, extension, compression) => {
    const storage = join(directory, `pg-${flags.join("").replaceAll("-", "") || "default"}`);
    const stored = await runCli(["backup", source, storage, "--prefix", "shop", "--quiet", ...flags]);
    expect(stored.stderr).toBe("");
    expect(stored.code).toBe(0);
    const path = stored.stdout.trim();
    expect(path).toMatch(new RegExp(`^${storage}/shop-\\d{14}\\.${extension.replace(".", "\\.")}$`));
    const manifest = JSON.parse(await readFile(`${path}.manifest.json`, "utf8")) as Manifest;
    expect(manifest.compression).toEqual(compression);
    // What the plain tools read: zstd -d gives pg_dump's custom format back.
    const bytes = await readFile(path);
    const dump =
      compression.format === "zstd"
        ? filter("zstd", ["-d", "-c", "-q"], bytes)
        : compression.format === "gzip"
          ? filter("gzip", ["-d", "-c"], bytes)
          : bytes;
    expect(dump.subarray(0, 5).toString("latin1")).toBe("PGDMP");
    const listed = await runCli(["list", storage, "--json"]);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ key: string }>).map((backup) => backup.key)).toEqual([path.slice(storage.length + 1)]);
    const verified = await runCli(["verify", path, "--quiet"]);
    expect(verified.stderr).toBe("");
    expect(verified.code).toBe(0);
    const target = await createDatabase(postgres.url);
    const restored = await runCli(["restore", path, target, "--quiet"]);
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);
    expect(await snapshotSmall(target)).toBe(expected);
  });

  it.each([
    [["--compression", "brotli"], 2, /invalid --compression "brotli": use gzip, zstd or none/],
    [["--compression", "gzip", "--compression-level", "12"], 2, /--compression-level "12" for gzip: use a whole number from 0 to 9/],
    // A level alone is zstd's: 20 is above its range, and 0 (gzip's "stored") is below it.
    [["--compression-level", "20"], 2, /--compression-level "20" for zstd: use a whole number from 1 to 19/],
    [["--compression-level", "0"], 2, /--compression-level "0" for zstd: use a whole number from 1 to 19/],
    [["--compression", "zstd", "--compression-level", "0"], 2, /--compression-level "0" for zstd: use a whole number from 1 to 19/],
    [["--compression", "none", "--compression-level", "3"], 2, /--compression none stores the dump as it is/],
    [["--compression-threads", "0"], 2, /--compression-threads/],
  ])("refuses %j with one line and stores nothing", async (flags, code, pattern) => {
    const storage = join(directory, "refused");
    expectOneLineFailure(await runCli(["backup", source, storage, ...flags]), code, pattern);
    expect(await readdir(storage).catch(() => [])).toEqual([]);
  });
});

describe("PostgreSQL --pg-jobs backups from the command line", () => {
  it("stores pg_dump's own compressed directory as .dump.tar unless a compression is named, and restores it exactly", async () => {
    // The CLI used to name gzip whatever the flags, so the directory's gzipped files were gzipped again (.dump.tar.gz).
    const source = await createDatabase(postgres.url);
    await seedSmall(source);
    const expected = await snapshotSmall(source);
    const storage = join(directory, "pg-jobs");
    const stored = await runCli(["backup", source, storage, "--prefix", "par", "--pg-jobs", "2", "--quiet"]);
    expect(stored.stderr).toBe("");
    expect(stored.code).toBe(0);
    const path = stored.stdout.trim();
    expect(path).toMatch(/\/par-\d{14}\.dump\.tar$/);
    const manifest = JSON.parse(await readFile(`${path}.manifest.json`, "utf8")) as Manifest;
    expect(manifest.compression).toEqual({ format: "none" });
    const target = await createDatabase(postgres.url);
    const restored = await runCli(["restore", path, target, "--pg-jobs", "2", "--quiet"]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(await snapshotSmall(target)).toBe(expected);
    const named = await runCli(["backup", source, storage, "--prefix", "named", "--pg-jobs", "2", "--compression", "zstd", "--quiet"]);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout.trim()).toMatch(/\/named-\d{14}\.dump\.tar\.zst$/);
  });
});

describe("MariaDB backups with --compression", () => {
  const server = new URL(inject("mariadb").url);
  const mariadb = async (sql: string, database?: string) => {
    const args = [
      "--no-defaults",
      "--protocol=TCP",
      `--host=${server.hostname}`,
      `--port=${server.port || "3306"}`,
      `--user=${decodeURIComponent(server.username)}`,
      "--batch",
      "--skip-column-names",
      "--default-character-set=utf8mb4",
    ];
    if (database) args.push(`--database=${database}`);
    const { stdout } = await run("mariadb", [...args, "--execute", sql], {
      env: { ...process.env, MYSQL_PWD: decodeURIComponent(server.password) },
    });
    return stdout.trim();
  };
  const urlOf = (database: string) => {
    const url = new URL(server);
    url.pathname = `/${database}`;
    return url.toString();
  };
  const source = scratchName("hoard_cli");
  const targets: string[] = [];

  beforeAll(async () => {
    await mariadb(
      `CREATE DATABASE ${source}; USE ${source};
       CREATE TABLE item (id int AUTO_INCREMENT PRIMARY KEY, name varchar(50) CHARACTER SET utf8mb4, price decimal(10,2));
       INSERT INTO item (name, price) VALUES ('lamp 💡', 19.99), ('desk', 120.00);`,
    );
  });

  afterAll(async () => {
    await mariadb([source, ...targets].map((name) => `DROP DATABASE IF EXISTS ${name};`).join(" "));
  });

  it.each([
    ["none", "sql"],
    ["zstd", "sql.zst"],
  ])("--compression %s: .%s, verified and restored exactly", async (compression, extension) => {
    const storage = join(directory, `mariadb-${compression}`);
    const stored = await runCli(["backup", urlOf(source), storage, "--prefix", "maria", "--compression", compression, "--quiet"]);
    expect(stored.stderr).toBe("");
    expect(stored.code).toBe(0);
    const path = stored.stdout.trim();
    expect(path).toMatch(new RegExp(`/maria-\\d{14}\\.${extension.replace(".", "\\.")}$`));
    if (compression === "none") expect(await readFile(path, "utf8")).toMatch(/INSERT INTO `item`/);
    const verified = await runCli(["verify", path, "--quiet"]);
    expect(verified.stderr).toBe("");
    expect(verified.code).toBe(0);
    const target = `${source}_${compression}`;
    targets.push(target);
    const restored = await runCli(["restore", path, urlOf(target), "--quiet"]);
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);
    expect(await mariadb("SELECT group_concat(concat(id, ':', name, ':', price) ORDER BY id) FROM item", target)).toBe(
      "1:lamp 💡:19.99,2:desk:120.00",
    );
  });
});

describe("a .sql.bz2 made by the bzip2 program, restored into PostgreSQL", () => {
  let source: string;
  let expected: string;
  let whole: Buffer;
  const storage = () => join(directory, "bz2");

  beforeAll(async () => {
    source = await createDatabase(postgres.url);
    await seedSmall(source);
    // About 2 MB of SQL, so bzip2 -1 writes many 100 kB blocks and the damage comes after good data.
    await psql(source, "CREATE TABLE filler AS SELECT n, md5(n::text) AS a, md5((n * 7)::text) AS b FROM generate_series(1, 25000) n");
    expected = await snapshotSmall(source);
    const sql = filter("pg_dump", ["--format=plain", "--no-owner", `--dbname=${source}`], Buffer.alloc(0));
    whole = filter("bzip2", ["-c", "-1"], sql);
    await mkdir(storage(), { recursive: true });
  });

  it("restores exactly", async () => {
    const path = join(storage(), "shop-20260101000000.sql.bz2");
    await writeFile(path, whole);
    const target = await createDatabase(postgres.url);
    const restored = await runCli(["restore", path, target, "--quiet"]);
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);
    expect(await snapshotSmall(target)).toBe(expected);
  });

  it.each([
    ["truncated", (bytes: Buffer) => bytes.subarray(0, Math.floor(bytes.length * 0.8))],
    [
      "damaged",
      (bytes: Buffer) => {
        const copy = Buffer.from(bytes);
        const middle = Math.floor(copy.length / 2);
        copy[middle] = (copy[middle] as number) ^ 0x10;
        return copy;
      },
    ],
  ])("fails a %s one with one line and leaves the target empty", async (kind, spoil) => {
    const path = join(storage(), `${kind}-20260101000000.sql.bz2`);
    await writeFile(path, spoil(whole));
    const target = await createDatabase(postgres.url);
    const restored = await runCli(["restore", path, target, "--quiet"]);
    expectOneLineFailure(
      restored,
      1,
      // bzip2 tells a cut input from a damaged one; lbzip2 (used when installed) reports a missing block as damage.
      kind === "truncated"
        ? /bzip2: (the compressed data ends unexpectedly \(truncated\)|the compressed data is damaged or cut short)/
        : /bzip2: data integrity error/,
    );
    expect(await psql(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).toBe("0");
  });
});
