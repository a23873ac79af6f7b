import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileCacheDirectory } from "../src/compile-cache.ts";
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

describe("the compile cache", () => {
  // Node.js' own settings would move or disable it: the tests choose.
  const clean = { NODE_COMPILE_CACHE: undefined, NODE_DISABLE_COMPILE_CACHE: undefined };

  /** The files of every Node.js version's cache under `directory`, by name. */
  async function cachedFiles(directory: string): Promise<string[]> {
    const versions = await readdir(directory).catch(() => [] as string[]);
    const files = await Promise.all(versions.map((version) => readdir(join(directory, version))));
    return files.flat();
  }

  it("keeps the compiled modules in the user's own cache directory, and the next run reads them", async () => {
    const cacheHome = await mkdtemp(join(tmpdir(), "hoard-xdg-cache-"));
    try {
      const hookFile = join(cacheHome, "report.mjs");
      // Reports where the running hoard keeps its compile cache.
      await writeFile(
        hookFile,
        `import { getCompileCacheDir } from "node:module";
import { writeFileSync } from "node:fs";
process.on("exit", () => writeFileSync(process.env.CACHE_REPORT_FILE, String(getCompileCacheDir())));
`,
      );
      const environment = {
        ...clean,
        XDG_CACHE_HOME: cacheHome,
        NODE_OPTIONS: `--import=${pathToFileURL(hookFile).href}`,
        CACHE_REPORT_FILE: join(cacheHome, "report.txt"),
      };
      expect(await runCli(["restore", "--help"], environment)).toMatchObject({ code: 0, stderr: "" });
      const directory = join(cacheHome, "hoard", "compile-cache");
      expect(dirname(await readFile(join(cacheHome, "report.txt"), "utf8"))).toBe(directory);
      const first = await cachedFiles(directory);
      // main.js, yargs, core: dozens of modules.
      expect(first.length).toBeGreaterThan(20);
      expect(await runCli(["restore", "--help"], environment)).toMatchObject({ code: 0, stderr: "" });
      expect(dirname(await readFile(join(cacheHome, "report.txt"), "utf8"))).toBe(directory);
      expect((await cachedFiles(directory)).sort()).toEqual(first.sort());
    } finally {
      await rm(cacheHome, { recursive: true, force: true });
    }
  });

  it("is off with NODE_DISABLE_COMPILE_CACHE=1, and hoard runs as before", async () => {
    const cacheHome = await mkdtemp(join(tmpdir(), "hoard-xdg-cache-"));
    try {
      const result = await runCli(["--version"], { ...clean, XDG_CACHE_HOME: cacheHome, NODE_DISABLE_COMPILE_CACHE: "1" });
      expect(result).toMatchObject({ code: 0, stdout: "0.1.0\n", stderr: "" });
      expect(await readdir(cacheHome)).toEqual([]);
    } finally {
      await rm(cacheHome, { recursive: true, force: true });
    }
  });

  it("where the directory cannot be made, hoard runs as before and says nothing", async () => {
    const cacheHome = await mkdtemp(join(tmpdir(), "hoard-xdg-cache-"));
    try {
      // A file where the cache directory's parent would be.
      await writeFile(join(cacheHome, "hoard"), "not a directory");
      const result = await runCli(["--version"], { ...clean, XDG_CACHE_HOME: cacheHome });
      expect(result).toMatchObject({ code: 0, stdout: "0.1.0\n", stderr: "" });
      expect(await readFile(join(cacheHome, "hoard"), "utf8")).toBe("not a directory");
    } finally {
      await rm(cacheHome, { recursive: true, force: true });
    }
  });

  it("is XDG_CACHE_HOME's when that is absolute, else under the home directory", () => {
    expect(compileCacheDirectory({ XDG_CACHE_HOME: "/var/cache/me", HOME: "/home/me" })).toBe("/var/cache/me/hoard/compile-cache");
    expect(compileCacheDirectory({ XDG_CACHE_HOME: "relative", HOME: "/home/me" })).toBe("/home/me/.cache/hoard/compile-cache");
    expect(compileCacheDirectory({ HOME: "/home/me" })).toBe("/home/me/.cache/hoard/compile-cache");
    expect(compileCacheDirectory({ HOME: "relative" })).toBeUndefined();
  });
});
