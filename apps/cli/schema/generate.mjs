#!/usr/bin/env node
// Writes hoard.schema.json, the JSON Schema of hoard run's config file, from the zod schema the
// validation uses (through the built CLI's `hoard config schema`, with every plugin of the
// workspace installed). Build first: pnpm exec turbo run build, then node apps/cli/schema/generate.mjs.
// A test (apps/cli/test/config.test.ts) fails when the file is not current.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../dist/cli.js", import.meta.url));
const target = fileURLToPath(new URL("./hoard.schema.json", import.meta.url));
const schema = execFileSync(process.execPath, [cli, "config", "schema"], { encoding: "utf8" });
writeFileSync(target, schema);
// In the repository's format, so that lint passes (the test compares the parsed JSON).
const biome = fileURLToPath(new URL("../../../node_modules/.bin/biome", import.meta.url));
execFileSync(biome, ["format", "--write", target], { stdio: "ignore" });
process.stdout.write(`wrote ${target}\n`);
