import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, inject, it } from "vitest";
import { accountUrl, createAccount, createDatabase, databaseUrl, randomName, runSql } from "./mariadb.ts";

const run = promisify(execFile);
const packageDirectory = fileURLToPath(new URL("..", import.meta.url));

it("runs the README's programmatic example against a real server", async () => {
  const text = await readFile(join(packageDirectory, "README.md"), "utf8");
  const block = /<!-- The block below is run by [^>]+-->\s*```ts\n([\s\S]*?)```/.exec(text)?.[1];
  expect(block).toContain("createMariadbDriver");
  const server = inject("mariadb");
  const account = await createAccount(server.url);
  const directory = await mkdtemp(join(tmpdir(), "hoard-mariadb-readme-"));
  // Inside the package, so `@hoard/core` and `@hoard/driver-mariadb` resolve as they would for a user.
  const script = join(packageDirectory, `.readme-example-${process.pid}.mts`);
  try {
    const source = accountUrl(
      await createDatabase(server.url, randomName(`${account.databasePrefix}shop`)),
      account.user,
      account.password,
    );
    await runSql(
      source,
      "CREATE TABLE product (id INT PRIMARY KEY, name VARCHAR(20)); INSERT INTO product VALUES (1, 'lamp'), (2, 'desk');",
    );
    const target = databaseUrl(source, randomName(`${account.databasePrefix}copy`));
    await writeFile(script, block as string);
    const { stdout } = await run(process.execPath, ["--import", "tsx", script], {
      cwd: packageDirectory,
      env: { ...process.env, BACKUP_DIRECTORY: directory, SOURCE_URL: source, TARGET_URL: target },
    });
    expect(stdout).toMatch(/^stored shop-\d{14}\.sql\.zst\nrestored\n$/);
    expect(await runSql(target, "SELECT GROUP_CONCAT(name ORDER BY id) FROM product")).toBe("lamp,desk\n");
  } finally {
    await rm(script, { force: true });
    await rm(directory, { recursive: true, force: true });
    await account.drop();
  }
});
