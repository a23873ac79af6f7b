import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { driverPackages } from "@hoard/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, psql, seedSmall, snapshotSmall } from "./postgres.ts";
import { collect, runCli, startCli } from "./run-cli.ts";

const postgres = inject("postgres");

let workDirectory: string;
let sourceUrl: string;
let expected: string;

beforeAll(async () => {
  workDirectory = await mkdtemp(join(tmpdir(), "hoard-cli-"));
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

describe("the command line", () => {
  it("prints help with examples and exits 0", async () => {
    const result = await runCli(["backup", "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("hoard backup <database-url> <storage-url>");
    expect(result.stdout).toContain("Examples:");
    expect(result.stdout).toContain("--s3-endpoint");
  });

  it("rejects a wrong command line with one line and exit 2", async () => {
    const unknownOption = await runCli(["list", "/tmp", "--no-such-option"]);
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toMatch(/^hoard: Unknown argument/);
    expect(unknownOption.stderr).not.toMatch(/\n\s+at /);

    const noCommand = await runCli([]);
    expect(noCommand.code).toBe(2);

    const badScheme = await runCli(["backup", "redis://localhost/0", workDirectory]);
    expect(badScheme.code).toBe(2);
    // The schemes come from the registry's table, so a new driver is offered without editing this test.
    expect(badScheme.stderr.trim()).toBe(
      `hoard: unsupported database URL redis://localhost/0: use one of ${Object.keys(driverPackages)
        .map((scheme) => `${scheme}://`)
        .join(", ")}`,
    );
    expect(badScheme.stderr).toContain("postgresql://, postgres://, mariadb://, mysql://, mongodb://, mongodb+srv://");

    const badCron = await runCli(["backup", sourceUrl, workDirectory, "--cron", "not a cron"]);
    expect(badCron.code).toBe(2);
    expect(badCron.stderr).toContain('invalid cron expression "not a cron"');
  });

  for (const mode of ["stream", "file"]) {
    it(`backs up, lists and restores PostgreSQL through a local directory in ${mode} mode`, async () => {
      const storage = await freshDirectory(`round-trip-${mode}`);
      const stored = await runCli(["backup", sourceUrl, storage, "--mode", mode, "--prefix", "shop"]);
      expect(stored.stderr).not.toContain("hoard:");
      expect(stored.code).toBe(0);
      expect(stored.stdout.trim()).toMatch(new RegExp(`^${storage}/shop-\\d{14}\\.dump\\.zst$`));

      const listed = await runCli(["list", storage, "--json"]);
      expect(listed.code).toBe(0);
      const backups = JSON.parse(listed.stdout) as Array<{ key: string; size: number; prefix: string }>;
      expect(backups).toHaveLength(1);
      expect(backups[0]?.prefix).toBe("shop");
      expect(backups[0]?.size).toBeGreaterThan(0);

      const target = await createDatabase(postgres.url);
      const restored = await runCli(["restore", storage, target, "--latest", "--prefix", "shop"]);
      expect(restored.stderr).not.toContain("hoard:");
      expect(restored.code).toBe(0);
      expect(await snapshotSmall(target)).toBe(expected);
    });
  }

  it("takes options from HOARD_* environment variables", async () => {
    const storage = await freshDirectory("environment");
    const result = await runCli(["backup", sourceUrl, storage], { HOARD_PREFIX: "from-env", HOARD_MODE: "file" });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("(file mode)");
    expect((await readdir(storage))[0]).toMatch(/^from-env-\d{14}\.dump\.zst$/);
  });

  it("fails a backup of a missing database loudly and stores nothing", async () => {
    const storage = await freshDirectory("missing-database");
    const result = await runCli(["backup", new URL("/no_such_database_here", postgres.url).toString(), storage]);
    expect(result.code).toBe(1);
    // One line: the first question to the server fails the backup, with no warnings before it.
    expect(result.stderr).toBe('hoard: postgresql: cannot ask the server its version: database "no_such_database_here" does not exist\n');
    expect(await readdir(storage).catch(() => [])).toEqual([]);
  });

  it("never prints the password of a database URL", async () => {
    const storage = await freshDirectory("secret");
    const withPassword = new URL(sourceUrl);
    withPassword.password = "hunter2-secret";
    const result = await runCli(["backup", withPassword.toString(), storage, "--debug"]);
    expect(result.stderr + result.stdout).not.toContain("hunter2-secret");
    const missing = new URL(withPassword);
    missing.pathname = "/nope_missing";
    const failed = await runCli(["backup", missing.toString(), storage, "--debug"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr + failed.stdout).not.toContain("hunter2-secret");
  });

  it("refuses a corrupt or truncated backup and leaves the target untouched", async () => {
    const storage = await freshDirectory("corrupt");
    const { readFile } = await import("node:fs/promises");
    const spoiled: string[] = [];
    // The default compression (zstd) and gzip: each backup cut in half, and garbage under its name.
    for (const [flags, extension, stamp] of [
      [[], "dump.zst", "2020010100000"],
      [["--compression", "gzip"], "dump.gz", "2020010200000"],
    ] as const) {
      const stored = await runCli(["backup", sourceUrl, storage, "--prefix", "whole", ...flags]);
      expect(stored.code).toBe(0);
      const backupPath = stored.stdout.trim();
      expect(backupPath).toMatch(new RegExp(`/whole-\\d{14}\\.${extension.replace(".", "\\.")}$`));
      const whole = await readFile(backupPath);
      const truncated = join(storage, `backup-${stamp}0.${extension}`);
      await writeFile(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
      const garbage = join(storage, `backup-${stamp}1.${extension}`);
      await writeFile(garbage, `this is not ${extension} at all`);
      spoiled.push(truncated, garbage);
    }

    for (const path of spoiled) {
      const target = await createDatabase(postgres.url);
      const result = await runCli(["restore", path, target]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/hoard: .*(damaged or truncated|pg_restore failed)/);
      expect(await psql(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).toBe("0");
    }
  });

  it("runs on a cron schedule, at least twice, and stops cleanly on SIGTERM", async () => {
    const storage = await freshDirectory("cron");
    const temporary = await mkdtemp(join(workDirectory, "tmp-"));
    const child = startCli(["backup", sourceUrl, storage, "--cron", "* * * * * *", "--prefix", "cron"], { TMPDIR: temporary });
    const done = collect(child);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const names = await readdir(storage).catch(() => [] as string[]);
      if (names.filter((name) => name.startsWith("cron-") && !name.endsWith(".manifest.json")).length >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    child.kill("SIGTERM");
    const result = await done;
    expect(result.code).toBe(0);
    const stored = (await readdir(storage)).sort();
    // Every backup with its manifest, and nothing else.
    const names = stored.filter((name) => !name.endsWith(".manifest.json"));
    expect(stored).toEqual(names.flatMap((name) => [name, `${name}.manifest.json`]).sort());
    expect(names.length).toBeGreaterThanOrEqual(2);
    for (const name of names) expect(name).toMatch(/^cron-\d{14}\.dump\.zst$/);
    expect(new Set(names).size).toBe(names.length);
    expect(result.stdout.trim().split("\n").length).toBe(names.length);
    expect(await readdir(temporary)).toEqual([]);
  });

  it("prunes real files by policy, with a dry run first", async () => {
    const storage = await freshDirectory("prune");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(storage, { recursive: true });
    const stamps = ["20261101000000", "20261102000000", "20261103000000", "20261103120000", "20261104000000"];
    for (const stamp of stamps) await writeFile(join(storage, `backup-${stamp}.dump.gz`), stamp);
    await writeFile(join(storage, "other-20260101000000.dump.gz"), "another prefix");
    await writeFile(join(storage, "notes.txt"), "not a backup");

    const plan = await runCli(["prune", storage, "--keep-daily", "2", "--dry-run", "--json"]);
    expect(plan.code).toBe(0);
    const parsed = JSON.parse(plan.stdout) as { dryRun: boolean; backups: Array<{ action: string; key: string }> };
    expect(parsed.dryRun).toBe(true);
    const deleted = parsed.backups.filter((entry) => entry.action === "delete").map((entry) => entry.key);
    expect(deleted.sort()).toEqual(["backup-20261101000000.dump.gz", "backup-20261102000000.dump.gz", "backup-20261103000000.dump.gz"]);
    expect(await readdir(storage)).toHaveLength(7);

    const pruned = await runCli(["prune", storage, "--keep-daily", "2"]);
    expect(pruned.code).toBe(0);
    expect((await readdir(storage)).sort()).toEqual([
      "backup-20261103120000.dump.gz",
      "backup-20261104000000.dump.gz",
      "notes.txt",
      "other-20260101000000.dump.gz",
    ]);
  });

  it("prunes a backup together with its companions, never takes a .sha256 for a backup, and names future-dated ones", async () => {
    const storage = await freshDirectory("prune-companions");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(storage, { recursive: true });
    for (const stamp of ["20261101000000", "20261102000000"]) {
      await writeFile(join(storage, `backup-${stamp}.dump.gz`), stamp);
      await writeFile(join(storage, `backup-${stamp}.dump.gz.sha256`), `sum of ${stamp}`);
    }
    // Newer than every backup, but not a backup: must never be listed, restored or counted.
    await writeFile(join(storage, "backup-20261103000000.dump.gz.sha256"), "orphan sum");
    // Dated years ahead: a clock that was wrong.
    await writeFile(join(storage, "backup-20991231000000.dump.gz"), "from the future");

    const listed = await runCli(["list", storage, "--json"]);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ key: string }>).map((entry) => entry.key).sort()).toEqual([
      "backup-20261101000000.dump.gz",
      "backup-20261102000000.dump.gz",
      "backup-20991231000000.dump.gz",
    ]);

    const plan = await runCli(["prune", storage, "--keep-last", "1", "--dry-run", "--json"]);
    expect(plan.code).toBe(0);
    const parsed = JSON.parse(plan.stdout) as { backups: Array<{ action: string; key: string; reasons: string[]; companions: string[] }> };
    const byKey = new Map(parsed.backups.map((entry) => [entry.key, entry]));
    expect(byKey.get("backup-20991231000000.dump.gz")?.reasons).toEqual(["future-dated"]);
    expect(byKey.get("backup-20261102000000.dump.gz")?.action).toBe("keep");
    expect(byKey.get("backup-20261101000000.dump.gz")).toMatchObject({
      action: "delete",
      companions: ["backup-20261101000000.dump.gz.sha256"],
    });

    const pruned = await runCli(["prune", storage, "--keep-last", "1"]);
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toContain("future-dated (kept, check the clock)");
    expect(pruned.stdout).toContain("(with backup-20261101000000.dump.gz)");
    expect((await readdir(storage)).sort()).toEqual([
      "backup-20261102000000.dump.gz",
      "backup-20261102000000.dump.gz.sha256",
      "backup-20261103000000.dump.gz.sha256",
      "backup-20991231000000.dump.gz",
    ]);
  });
});
