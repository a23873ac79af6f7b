import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentServerOfSuite } from "@hoard/test-harness/vitest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, psql, seedSmall, snapshotSmall } from "./postgres.ts";
import { type CliResult, collect, runCli, startCli } from "./run-cli.ts";

const postgres = inject("postgres");
const gcs = inject("gcs");

let workDirectory: string;
let sourceUrl: string;
let expected: string;
const silentServer = silentServerOfSuite();

beforeAll(async () => {
  workDirectory = await mkdtemp(join(tmpdir(), "hoard-cli-faults-"));
  sourceUrl = await createDatabase(postgres.url);
  await seedSmall(sourceUrl);
  expected = await snapshotSmall(sourceUrl);
});

afterAll(async () => {
  await rm(workDirectory, { recursive: true, force: true });
});

async function freshDirectory(name: string): Promise<string> {
  const directory = join(workDirectory, name);
  await rm(directory, { recursive: true, force: true });
  return directory;
}

/** Backup objects in a local storage directory (an absent directory holds none). */
async function storedFiles(directory: string): Promise<string[]> {
  return (await readdir(directory).catch(() => [] as string[])).filter((name) => !name.startsWith("."));
}

function lines(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}

/** A failure is one line `hoard: ...` on stderr and no stack trace. */
function expectOneLine(result: CliResult, pattern: RegExp | string): void {
  expect(result.stderr).not.toMatch(/\n\s+at /);
  const errorLines = lines(result.stderr).filter((line) => line.startsWith("hoard:"));
  expect(errorLines).toHaveLength(1);
  if (typeof pattern === "string") expect(errorLines[0]).toContain(pattern);
  else expect(errorLines[0]).toMatch(pattern);
}

const silentS3 = () => ["--s3-endpoint", silentServer().url, "--s3-force-path-style", "--s3-region", "us-east-1"];
const dummyAws = { AWS_ACCESS_KEY_ID: "AKIDUMMY", AWS_SECRET_ACCESS_KEY: "dummy-secret-key" };

describe("HOARD_* environment variables", () => {
  it("ignores a HOARD_* variable that names no option", async () => {
    const storage = await freshDirectory("env-stray");
    await mkdir(storage);
    const result = await runCli(["list", storage, "--json"], { HOARD_SOMETHING_ELSE: "1" });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([]);
    // An option of another command (backup's --mode) is no error for list either; --debug names what was ignored.
    const debug = await runCli(["list", storage, "--json", "--debug"], { HOARD_SOMETHING_ELSE: "1", HOARD_MODE: "file" });
    expect(debug.code).toBe(0);
    expect(debug.stderr).toContain("ignoring HOARD_SOMETHING_ELSE");
    expect(debug.stderr).toContain("ignoring HOARD_MODE");
  });

  it("uses HOARD_GCS_CLIENT_EMAIL and HOARD_GCS_PRIVATE_KEY", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const credentials = {
      HOARD_GCS_CLIENT_EMAIL: "hoard-test@example.iam.gserviceaccount.com",
      HOARD_GCS_PRIVATE_KEY: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    };
    const local = await freshDirectory("env-gcs");
    await mkdir(local);
    const listedLocally = await runCli(["list", local, "--json"], { HOARD_GCS_CLIENT_EMAIL: credentials.HOARD_GCS_CLIENT_EMAIL });
    expect(listedLocally.stderr).toBe("");
    expect(listedLocally.code).toBe(0);

    const storageUrl = `gs://${gcs.bucket}/hoard-cli-env/${randomBytes(4).toString("hex")}`;
    const gcsArgs = ["--gcs-endpoint", gcs.endpoint, "--gcs-project", gcs.projectId];
    const stored = await runCli(["backup", sourceUrl, storageUrl, ...gcsArgs], credentials);
    expect(stored.stderr).not.toContain("hoard:");
    expect(stored.code).toBe(0);
    const listed = await runCli(["list", storageUrl, "--json", ...gcsArgs], credentials);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toHaveLength(1);
    // Only one of the pair is a mistake the GCS plugin names.
    const half = await runCli(["list", storageUrl, ...gcsArgs], { HOARD_GCS_CLIENT_EMAIL: credentials.HOARD_GCS_CLIENT_EMAIL });
    expect(half.code).toBe(2);
    expectOneLine(half, "HOARD_GCS_PRIVATE_KEY");
  });

  it("still takes options from HOARD_<OPTION>, and the command line wins", async () => {
    const storage = await freshDirectory("env-prefix");
    await mkdir(storage);
    await writeFile(join(storage, "one-20260101000000.dump.gz"), "1");
    await writeFile(join(storage, "two-20260102000000.dump.gz"), "2");
    const fromEnvironment = await runCli(["list", storage, "--json"], { HOARD_PREFIX: "one", HOARD_MONGODB_ENGINE: "builtin" });
    expect(fromEnvironment.code).toBe(0);
    expect((JSON.parse(fromEnvironment.stdout) as Array<{ key: string }>).map((entry) => entry.key)).toEqual([
      "one-20260101000000.dump.gz",
    ]);
    const overridden = await runCli(["list", storage, "--json", "--prefix", "two"], { HOARD_PREFIX: "one" });
    expect((JSON.parse(overridden.stdout) as Array<{ key: string }>).map((entry) => entry.key)).toEqual(["two-20260102000000.dump.gz"]);
    // Values from the environment are checked like flags.
    const badLevel = await runCli(["backup", sourceUrl, storage], { HOARD_COMPRESSION_LEVEL: "42" });
    expect(badLevel.code).toBe(2);
    expectOneLine(badLevel, 'invalid --compression-level "42"');
  });

  it("still rejects an unknown flag with exit 2", async () => {
    const result = await runCli(["list", workDirectory, "--no-such-flag"], { HOARD_SOMETHING_ELSE: "1" });
    expect(result.code).toBe(2);
    expectOneLine(result, /^hoard: Unknown argument/);
  });
});

describe("numbers, sizes and durations are checked before any work", () => {
  const cases: Array<[string, string[], string]> = [
    [
      "a compression level above 19 (a level alone is zstd's)",
      ["--compression-level", "20"],
      'invalid --compression-level "20" for zstd: use a whole number from 1 to 19',
    ],
    [
      "a gzip compression level above 9",
      ["--compression", "gzip", "--compression-level", "10"],
      'invalid --compression-level "10" for gzip: use a whole number from 0 to 9',
    ],
    ["a compression level that is no number", ["--compression-level", "abc"], 'invalid --compression-level "abc"'],
    ["a negative compression level", ["--compression-level", "-1"], 'invalid --compression-level "-1"'],
    ["a fractional compression level", ["--compression-level", "1.5"], 'invalid --compression-level "1.5"'],
    ["an empty compression level", ["--compression-level", ""], 'invalid --compression-level ""'],
    ["a queue size of 0", ["--s3-queue-size", "0"], 'invalid --s3-queue-size "0": use a whole number of 1 or more'],
    ["a queue size that is no number", ["--s3-queue-size", "many"], 'invalid --s3-queue-size "many"'],
    ["a part size that is no size", ["--s3-part-size", "big"], 'invalid --s3-part-size "big"'],
    ["a chunk size with a fraction", ["--gcs-chunk-size", "1.5MiB"], 'invalid --gcs-chunk-size "1.5MiB"'],
    ["a timeout that is no duration", ["--timeout", "soon"], 'invalid duration "soon"'],
    ["a negative timeout", ["--timeout", "-5s"], 'invalid duration "-5s"'],
  ];
  for (const [name, flags, message] of cases) {
    it(`refuses ${name} with exit 2 before dumping`, async () => {
      const storage = await freshDirectory("numbers");
      const result = await runCli(["backup", sourceUrl, storage, ...flags]);
      expect(result.code).toBe(2);
      expectOneLine(result, message);
      expect(lines(result.stderr)).toHaveLength(1);
      expect(await storedFiles(storage)).toEqual([]);
    });
  }

  for (const flag of ["--keep-last", "--keep-hourly", "--keep-daily", "--keep-weekly", "--keep-monthly", "--keep-yearly"]) {
    it(`refuses ${flag} that is not a positive whole number`, async () => {
      const storage = await freshDirectory("keep");
      await mkdir(storage);
      await writeFile(join(storage, "backup-20200101000000.dump.gz"), "old");
      for (const value of ["0", "-1", "1.5", "abc", ""]) {
        const result = await runCli(["prune", storage, flag, value]);
        expect(result.code).toBe(2);
        expectOneLine(result, `invalid ${flag} "${value}": use a whole number of 1 or more`);
      }
      expect(await storedFiles(storage)).toEqual(["backup-20200101000000.dump.gz"]);
    });
  }

  it("says a negative --older-than is an invalid duration", async () => {
    const storage = await freshDirectory("older-than");
    await mkdir(storage);
    const negative = await runCli(["prune", storage, "--older-than", "-5d"]);
    expect(negative.code).toBe(2);
    expectOneLine(negative, 'hoard: --older-than: invalid duration "-5d"');
    expect(negative.stderr).not.toContain("Unknown argument");
    const words = await runCli(["prune", storage, "--older-than", "a while"]);
    expect(words.code).toBe(2);
    expectOneLine(words, 'invalid duration "a while"');
    const good = await runCli(["prune", storage, "--older-than", "1w2d", "--dry-run", "--json"]);
    expect(good.code).toBe(0);
  });
});

describe("writing results to stdout", () => {
  async function withDevFull<T>(run: (fd: number) => Promise<T>): Promise<T> {
    const full = await open("/dev/full", "w");
    try {
      return await run(full.fd);
    } finally {
      await full.close();
    }
  }

  it("reports a full disk on stdout for list in one line, exit 1", async () => {
    const storage = await freshDirectory("dev-full-list");
    await mkdir(storage);
    await writeFile(join(storage, "backup-20260101000000.dump.gz"), "x");
    const result = await withDevFull((fd) => collect(startCli(["list", storage], {}, ["ignore", fd, "pipe"])));
    expect(result.code).toBe(1);
    expectOneLine(result, "hoard: could not write to stdout: no space left on device");
    expect(lines(result.stderr)).toHaveLength(1);
  });

  it("still says that a backup was stored when stdout is full", async () => {
    const storage = await freshDirectory("dev-full-backup");
    const result = await withDevFull((fd) => collect(startCli(["backup", sourceUrl, storage, "--quiet"], {}, ["ignore", fd, "pipe"])));
    const stored = await storedFiles(storage);
    // The backup and its manifest: the backup is complete, only stdout failed.
    expect(stored).toEqual([expect.stringMatching(/^backup-\d{14}\.dump\.zst$/), `${stored[0]}.manifest.json`]);
    expect(result.code).toBe(1);
    expectOneLine(result, `hoard: stored ${storage}/${stored[0]}, but could not write it to stdout: no space left on device`);
  });

  it("ends quietly with exit 0 when the reader of a list closes the pipe (hoard list | head -1)", async () => {
    const storage = await freshDirectory("closed-pipe");
    await mkdir(storage);
    // Enough rows (about 1 MB) that the table does not fit in the pipe's buffer.
    const start = Date.UTC(2000, 0, 1);
    for (let batch = 0; batch < 40; batch += 1) {
      await Promise.all(
        Array.from({ length: 500 }, (_, index) => {
          const stamp = new Date(start + (batch * 500 + index) * 3_600_000).toISOString().replace(/\D/g, "").slice(0, 14);
          return writeFile(join(storage, `backup-${stamp}.dump.gz`), "x");
        }),
      );
    }
    const child = startCli(["list", storage]);
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const closed = new Promise<number | null>((resolve) => child.once("close", (status) => resolve(status)));
    const firstLine = await new Promise<string>((resolve) => {
      let text = "";
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        text += chunk;
        if (text.includes("\n")) {
          child.stdout?.destroy();
          resolve(text.split("\n")[0] as string);
        }
      });
      void closed.then(() => resolve(text));
    });
    const code = await closed;
    expect(firstLine).toMatch(/^KEY\s+SIZE/);
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });
});

describe("SIGINT and SIGTERM", () => {
  /** Sends SIGTERM once hoard waits on the silent storage (it connected) and at least `delayMs` went by. */
  async function interruptAfter(args: string[], env: NodeJS.ProcessEnv, delayMs: number) {
    const connectionsBefore = silentServer().connections();
    const child = startCli(args, env);
    const done = collect(child);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const deadline = Date.now() + 30_000;
    while (silentServer().connections() === connectionsBefore && child.exitCode === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(silentServer().connections()).toBeGreaterThan(connectionsBefore);
    const signalled = Date.now();
    child.kill("SIGTERM");
    const result = await done;
    return { ...result, afterSignalMs: Date.now() - signalled };
  }

  it("stops a list stuck on a silent storage at once, with one line and exit 143", async () => {
    const result = await interruptAfter(["list", "s3://bucket/stuck", ...silentS3()], dummyAws, 500);
    expect(result.afterSignalMs).toBeLessThan(3_000);
    expect(result.code).toBe(143);
    expect(lines(result.stderr)).toEqual(["hoard: interrupted by SIGTERM; nothing was changed"]);
    expect(result.stdout).toBe("");
  });

  it("stops a prune stuck on a silent storage at once, with one line and exit 143", async () => {
    const result = await interruptAfter(["prune", "s3://bucket/stuck", "--keep-last", "1", ...silentS3()], dummyAws, 500);
    expect(result.afterSignalMs).toBeLessThan(3_000);
    expect(result.code).toBe(143);
    expect(lines(result.stderr)).toEqual(["hoard: interrupted by SIGTERM; nothing was deleted"]);
  });

  it("cleans up a file-mode backup interrupted by Ctrl-C twice, and stores nothing", async () => {
    const bigUrl = await createDatabase(postgres.url);
    try {
      await psql(
        bigUrl,
        "CREATE TABLE big AS SELECT n, md5(n::text) || md5((n * 7)::text) || repeat(md5((n * 13)::text), 6) AS body FROM generate_series(1, 600000) n",
      );
      const storage = await freshDirectory("interrupted-backup");
      const temporary = await mkdtemp(join(workDirectory, "tmp-"));
      const child = startCli(["backup", bigUrl, storage, "--mode", "file", "--compression-level", "9"], { TMPDIR: temporary });
      const done = collect(child);
      // Mid-dump: the temporary dump file exists and is growing.
      const deadline = Date.now() + 60_000;
      let dumping = false;
      while (!dumping && Date.now() < deadline && child.exitCode === null) {
        dumping = (await filesUnder(temporary)).some((file) => file.size > 0);
        if (!dumping) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(dumping).toBe(true);
      child.kill("SIGINT");
      await new Promise((resolve) => setTimeout(resolve, 5));
      child.kill("SIGINT");
      const result = await done;
      expect(result.code).toBe(130);
      const hoardLines = lines(result.stderr).filter((line) => line.startsWith("hoard:"));
      expect(hoardLines).toEqual(["hoard: interrupted by SIGINT; nothing was stored"]);
      expect(lines(result.stderr).at(-1)).toBe(hoardLines[0]);
      expect(await readdir(temporary)).toEqual([]);
      expect(await storedFiles(storage)).toEqual([]);
    } finally {
      await psql(postgres.url, `DROP DATABASE IF EXISTS ${new URL(bigUrl).pathname.slice(1)}`);
    }
  });
});

/** Every regular file under a directory, with its size. */
async function filesUnder(directory: string): Promise<Array<{ path: string; size: number }>> {
  const found: Array<{ path: string; size: number }> = [];
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const size = await stat(path).then(
      (info) => info.size,
      () => 0,
    );
    found.push({ path, size });
  }
  return found;
}

describe("--timeout and --replace", () => {
  it("fails a backup to a silent S3 endpoint with --timeout 2s in one line naming the endpoint", async () => {
    const started = Date.now();
    const result = await runCli(["backup", sourceUrl, "s3://bucket/silent", ...silentS3(), "--timeout", "2s"], dummyAws);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(result.code).toBe(1);
    expectOneLine(result, silentServer().url);
    expect(result.stdout).toBe("");
  });

  it("refuses to restore into a database that holds data unless --replace is given", async () => {
    const storage = await freshDirectory("replace");
    const stored = await runCli(["backup", sourceUrl, storage]);
    expect(stored.code).toBe(0);
    const target = await createDatabase(postgres.url);
    await psql(target, "CREATE TABLE item (id int PRIMARY KEY, name text); INSERT INTO item VALUES (1, 'already here')");

    const refused = await runCli(["restore", storage, target, "--latest"]);
    expect(refused.code).toBe(1);
    expectOneLine(refused, "use --replace to restore over it");
    expect(await psql(target, "SELECT name FROM item")).toBe("already here");

    const replaced = await runCli(["restore", storage, target, "--latest", "--replace"]);
    expect(replaced.stderr).not.toContain("hoard:");
    expect(replaced.code).toBe(0);
    expect(await snapshotSmall(target)).toBe(expected);
  });
});

describe("the database URL outside the command line", () => {
  const password = `pw-${randomBytes(6).toString("hex")}`;
  const withPassword = () => {
    const url = new URL(sourceUrl);
    url.password = password;
    return url.toString();
  };

  /** Runs the CLI while watching every process's command line for the password. */
  async function runWatched(args: string[], env: NodeJS.ProcessEnv): Promise<{ result: CliResult; leaked: string[]; looks: number }> {
    const child = startCli(args, env);
    const done = collect(child);
    let finished = false;
    void done.finally(() => {
      finished = true;
    });
    const leaked: string[] = [];
    let looks = 0;
    while (!finished) {
      for (const pid of await readdir("/proc")) {
        if (!/^\d+$/.test(pid)) continue;
        const text = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
        if (text.includes(password)) leaked.push(text.replaceAll("\0", " "));
      }
      looks += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return { result: await done, leaked, looks };
  }

  it("backs up with HOARD_DATABASE_URL and keeps the password out of every command line", async () => {
    const storage = await freshDirectory("url-from-env");
    const { result, leaked, looks } = await runWatched(["backup", storage, "--prefix", "env"], { HOARD_DATABASE_URL: withPassword() });
    expect(result.stderr).not.toContain("hoard:");
    expect(result.code).toBe(0);
    expect(result.stderr + result.stdout).not.toContain(password);
    expect(looks).toBeGreaterThan(1);
    expect(leaked).toEqual([]);
    const stored = await storedFiles(storage);
    expect(stored).toEqual([expect.stringMatching(/^env-\d{14}\.dump\.zst$/), `${stored[0]}.manifest.json`]);
  });

  it("backs up with --database-url-file and restores with it, the password in no command line", async () => {
    const storage = await freshDirectory("url-from-file");
    const secrets = await mkdtemp(join(workDirectory, "secrets-"));
    const file = join(secrets, "db");
    await writeFile(file, `  ${withPassword()}\n\n`, { mode: 0o600 });
    const backedUp = await runWatched(["backup", storage, "--database-url-file", file], {});
    expect(backedUp.result.stderr).not.toContain("hoard:");
    expect(backedUp.result.code).toBe(0);
    expect(backedUp.leaked).toEqual([]);

    const target = new URL(await createDatabase(postgres.url));
    target.password = password;
    await writeFile(file, target.toString());
    const restored = await runWatched(["restore", storage, "--latest"], { HOARD_DATABASE_URL_FILE: file });
    expect(restored.result.stderr).not.toContain("hoard:");
    expect(restored.result.code).toBe(0);
    expect(restored.leaked).toEqual([]);
    expect(await snapshotSmall(target.toString())).toBe(expected);
  });

  it("refuses a database URL given twice, or not at all, with exit 2", async () => {
    const storage = await freshDirectory("url-twice");
    const twice = await runCli(["backup", sourceUrl, storage], { HOARD_DATABASE_URL: withPassword() });
    expect(twice.code).toBe(2);
    expectOneLine(twice, "the database URL is given twice");
    expect(twice.stderr).not.toContain(password);
    const secrets = await mkdtemp(join(workDirectory, "secrets-"));
    await writeFile(join(secrets, "db"), withPassword());
    const both = await runCli(["restore", storage, "--latest", "--database-url-file", join(secrets, "db")], {
      HOARD_DATABASE_URL: withPassword(),
    });
    expect(both.code).toBe(2);
    expectOneLine(both, "the database URL is given twice");
    const none = await runCli(["backup", storage]);
    expect(none.code).toBe(2);
    expectOneLine(none, "name the database");
    const missingFile = await runCli(["backup", storage, "--database-url-file", join(secrets, "absent")]);
    expect(missingFile.code).toBe(2);
    expectOneLine(missingFile, "--database-url-file");
    expect(await storedFiles(storage)).toEqual([]);
  });
});

describe("URLs that do not open", () => {
  const cases: Array<[string, string[], string]> = [
    ["bad percent-encoding in a PostgreSQL password", ["backup", "postgresql://app:se%ZZcret-1@127.0.0.1/shop", "STORAGE"], "se%ZZcret-1"],
    ["a PostgreSQL URL that does not parse", ["backup", "postgresql://app:secret-2@[bad/shop", "STORAGE"], "secret-2"],
    ["bad percent-encoding in a MongoDB password", ["backup", "mongodb://app:se%ZZcret-3@127.0.0.1/shop", "STORAGE"], "se%ZZcret-3"],
    ["bad percent-encoding in a MariaDB password", ["backup", "mysql://app:se%ZZcret-4@127.0.0.1/shop", "STORAGE"], "se%ZZcret-4"],
    ["bad percent-encoding in a storage URL", ["list", "gs://bucket/pre%ZZfix"], "%ZZ-never"],
  ];
  for (const [name, args, secret] of cases) {
    it(`answers ${name} with exit 2, one line and no secret`, async () => {
      const storage = await freshDirectory("bad-urls");
      const result = await runCli(args.map((arg) => (arg === "STORAGE" ? storage : arg)));
      expect(result.code).toBe(2);
      expectOneLine(result, /^hoard: /);
      expect(lines(result.stderr)).toHaveLength(1);
      expect(result.stderr).not.toContain(secret);
      expect(result.stderr).not.toMatch(/se%ZZcret|secret-\d/);
      expect(await storedFiles(storage)).toEqual([]);
    });
  }
});
