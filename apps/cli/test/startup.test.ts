import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliPath, runCli } from "./run-cli.ts";

// What hoard loads at start-up, recorded by a module hook (node --import) that sees every ESM and
// CommonJS module node loads, and writes their URLs to a file when the process exits.
const hook = `
import { writeFileSync } from "node:fs";
import { registerHooks } from "node:module";
const loaded = [];
registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
process.on("exit", () => writeFileSync(process.env.LOADED_MODULES_FILE, loaded.join("\\n")));
`;

let directory: string;
let hookUrl: string;
let count = 0;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-startup-"));
  const hookFile = join(directory, "hook.mjs");
  await writeFile(hookFile, hook);
  hookUrl = pathToFileURL(hookFile).href;
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Runs hoard and returns its result and the URLs of the modules it loaded. */
async function modulesLoadedBy(args: string[]) {
  count += 1;
  const file = join(directory, `loaded-${count}.txt`);
  const result = await runCli(args, { NODE_OPTIONS: `--import=${hookUrl}`, LOADED_MODULES_FILE: file });
  const loaded = (await readFile(file, "utf8")).split("\n");
  const dist = pathToFileURL(dirname(cliPath)).href;
  return { result, loaded, cli: (name: string) => loaded.includes(`${dist}/${name}`) };
}

const commands = ["backup", "restore", "list", "prune", "verify", "run", "config"];

/** A plugin's code beyond its `./settings`, or an SDK, driver or library only a command's work needs. */
const heavy =
  /\/packages\/(storage|driver)-[a-z]+\/dist\/(?!settings\.js$)|\/node_modules\/(@aws-sdk|@smithy|@google-cloud|google-auth-library|mongodb|mariadb|pg|age-encryption|yaml|zod|prom-client)\//;

describe("start-up", () => {
  it("--version loads no command and no plugin beyond its settings", async () => {
    const { result, loaded, cli } = await modulesLoadedBy(["--version"]);
    expect(result).toMatchObject({ code: 0, stdout: "0.1.0\n", stderr: "" });
    // The hook saw hoard start: the modules every command needs.
    expect(cli("main.js") && cli("commands/summaries.js") && cli("plugins.js")).toBe(true);
    expect(commands.filter((command) => cli(`commands/${command}.js`))).toEqual([]);
    expect(loaded.filter((url) => heavy.test(url))).toEqual([]);
  });

  it("--help lists every command, loading none", async () => {
    const { result, cli } = await modulesLoadedBy(["--help"]);
    expect(result.code).toBe(0);
    const commandsPart = result.stdout.slice(result.stdout.indexOf("Commands:"), result.stdout.indexOf("Options:"));
    expect(commandsPart.match(/^ {2}hoard \S+/gm)).toEqual(commands.map((command) => `  hoard ${command}`));
    expect(commandsPart).toContain("  hoard restore <backup-url> [database-url]  Restore a backup into a database\n");
    expect(commands.filter((command) => cli(`commands/${command}.js`))).toEqual([]);
  });

  it("a command loads itself and not the other commands", async () => {
    const { result, loaded, cli } = await modulesLoadedBy(["restore", "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("--replace");
    expect(commands.filter((command) => cli(`commands/${command}.js`))).toEqual(["restore"]);
    expect(loaded.some((url) => url.startsWith(`${pathToFileURL(dirname(cliPath)).href}/service/`))).toBe(false);
    expect(loaded.filter((url) => heavy.test(url))).toEqual([]);
  });

  it("a misspelt command is still recognised from the summaries", async () => {
    const { result } = await modulesLoadedBy(["restor"]);
    expect(result).toMatchObject({ code: 2, stderr: "hoard: Did you mean restore?\n" });
  });

  it("a negative value of another command's number option reads as one argument, as when every command was loaded", async () => {
    // joinDashedValues knows prune's and backup's number options before they are loaded.
    const prune = await runCli(["restore", "x/backup.dump.gz", "--older-than", "-5d"]);
    expect(prune).toMatchObject({ code: 2, stderr: "hoard: Unknown arguments: older-than, olderThan\n" });
    const backup = await runCli(["list", "x", "--notify-retries", "-1"]);
    expect(backup).toMatchObject({ code: 2, stderr: "hoard: Unknown arguments: notify-retries, notifyRetries\n" });
  });

  it("yargs still has the help cache that main.ts skips (skipHelpCache)", async () => {
    // If a yargs upgrade renames it, hoard works as before but renders every command's --help text
    // at each run again (30 ms of CPU for restore): find the new hook point.
    const { default: yargs } = await import("yargs");
    const parser = yargs([]) as unknown as { getInternalMethods: () => { getUsageInstance: () => { cacheHelpMessage?: unknown } } };
    expect(typeof parser.getInternalMethods().getUsageInstance().cacheHelpMessage).toBe("function");
  });
});
