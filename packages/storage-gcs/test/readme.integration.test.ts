import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { createBucket, emulator, objectNames } from "./emulator.ts";

const packageDirectory = fileURLToPath(new URL("..", import.meta.url));

it("runs the README's example against the emulator", async () => {
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  const example = /## In a program\s+```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!example) throw new Error("README.md has no example under 'In a program'");
  const bucket = await createBucket();
  // The example unchanged but for the bucket name, run on the built package the way a user's program would import it;
  // STORAGE_EMULATOR_HOST points it at the emulator.
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--input-type=module", "--eval", example.replace('"my-backups"', `"${bucket}"`)],
    {
      cwd: packageDirectory,
      env: { ...process.env, STORAGE_EMULATOR_HOST: emulator().endpoint },
    },
  );
  expect(stdout).toBe("notes/hello.txt 5\n");
  expect(await objectNames(bucket)).toEqual(["shop/notes/hello.txt"]);
});
