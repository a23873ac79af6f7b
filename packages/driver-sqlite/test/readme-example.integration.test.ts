import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { newPath, scratchDirectory, sqlite, urlOf } from "./sqlite.ts";

const run = promisify(execFile);
const packageDirectory = fileURLToPath(new URL("..", import.meta.url));
const directory = await scratchDirectory("hoard-sqlite-readme-");

it("runs the README's programmatic example on real files", async () => {
  const text = await readFile(join(packageDirectory, "README.md"), "utf8");
  const block = /<!-- The block below is run by [^>]+-->\s*```ts\n([\s\S]*?)```/.exec(text)?.[1];
  expect(block).toContain("createSqliteDriver");
  // Inside the package, so `@hoard/core` and `@hoard/driver-sqlite` resolve as they would for a user.
  const script = join(packageDirectory, `.readme-example-${process.pid}.mts`);
  const source = newPath(directory, "shop");
  const target = newPath(directory, "shop-copy");
  try {
    await sqlite(source, "CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO product VALUES (1, 'lamp'), (2, 'desk');");
    await writeFile(script, block as string);
    const { stdout } = await run(process.execPath, ["--import", "tsx", script], {
      cwd: packageDirectory,
      env: { ...process.env, BACKUP_DIRECTORY: directory, SOURCE_URL: urlOf(source), TARGET_URL: urlOf(target) },
    });
    expect(stdout).toMatch(/^stored shop-\d{14}\.sql\.zst\nrestored\n$/);
    expect(await sqlite(target, "SELECT group_concat(name, ',') FROM (SELECT name FROM product ORDER BY id)")).toBe("lamp,desk\n");
  } finally {
    await rm(script, { force: true });
  }
});
