import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./run-cli.ts";

// The SQLite driver, added through the plugin kit and one line of the registry's table, works from
// the command line like the others: backup, list, restore, and the non-empty rule.

let directory: string;

function sqlite(file: string, sql: string): string {
  const result = spawnSync("sqlite3", ["-bail", file], { input: sql, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`sqlite3 failed: ${result.stderr}`);
  return result.stdout.trim();
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-cli-sqlite-"));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("sqlite:// from the command line", () => {
  it("backs up, lists and restores a database file, and refuses a non-empty target without --replace", async () => {
    const source = join(directory, "shop.db");
    sqlite(
      source,
      "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, photo BLOB); INSERT INTO items VALUES (1, 'tea', x'00ff'), (2, 'café', NULL);",
    );
    const storage = join(directory, "backups");

    const stored = await runCli(["backup", `sqlite://${source}`, storage]);
    expect(stored.code, stored.stderr).toBe(0);
    const url = stored.stdout.trim();
    expect(url).toMatch(/backup-\d{14}\.sql\.zst$/);
    const name = url.slice(url.lastIndexOf("/") + 1);
    expect((await readdir(storage)).sort()).toEqual([name, `${name}.manifest.json`]);

    const listed = await runCli(["list", storage, "--json"]);
    expect((JSON.parse(listed.stdout) as Array<{ key: string }>).map((entry) => entry.key)).toEqual([url.slice(url.lastIndexOf("/") + 1)]);

    const target = join(directory, "copy.db");
    const restored = await runCli(["restore", url, `sqlite://${target}`]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(sqlite(target, "SELECT id, name, hex(photo) FROM items ORDER BY id;")).toBe("1|tea|00FF\n2|café|");

    sqlite(target, "INSERT INTO items VALUES (3, 'only in the target', NULL);");
    const refused = await runCli(["restore", url, `sqlite://${target}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("use --replace to restore over it");
    expect(sqlite(target, "SELECT count(*) FROM items;")).toBe("3");

    const replaced = await runCli(["restore", url, `sqlite://${target}`, "--replace"]);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(sqlite(target, "SELECT count(*) FROM items;")).toBe("2");
  });
});
