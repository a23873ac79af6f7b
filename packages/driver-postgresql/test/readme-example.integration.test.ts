import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, inject, it } from "vitest";
import { createDatabase, psql } from "./postgres.ts";

const run = promisify(execFile);
const packageDirectory = fileURLToPath(new URL("..", import.meta.url));
const readme = fileURLToPath(new URL("../../../README.md", import.meta.url));

it("runs the README's programmatic example against a real server", async () => {
  const text = await readFile(readme, "utf8");
  const block = /<!-- The block below is run by [^>]+-->\s*```ts\n([\s\S]*?)```/.exec(text)?.[1];
  expect(block).toContain("createPostgresDriver");
  const server = inject("postgres").url;
  const source = await createDatabase(server);
  const target = await createDatabase(server);
  await psql(source, "CREATE TABLE product (id int PRIMARY KEY, name text); INSERT INTO product VALUES (1, 'lamp'), (2, 'desk')");
  const directory = await mkdtemp(join(tmpdir(), "hoard-readme-"));
  try {
    // Inside the package, so `@hoard/core` and `@hoard/driver-postgresql` resolve as they would for a user.
    const script = join(packageDirectory, `.readme-example-${process.pid}.mts`);
    await writeFile(script, block as string);
    try {
      const { stdout } = await run(process.execPath, ["--import", "tsx", script], {
        cwd: packageDirectory,
        env: { ...process.env, BACKUP_DIRECTORY: directory, SOURCE_URL: source, TARGET_URL: target },
      });
      expect(stdout).toMatch(/^stored shop-\d{14}\.dump\.zst\nshop-\d{14}\.dump\.zst \d+ \d{4}-/);
    } finally {
      await rm(script, { force: true });
    }
    expect(await psql(target, "SELECT string_agg(name, ',' ORDER BY id) FROM product")).toBe("lamp,desk\n");
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
