/**
 * The packages as users meet them: every publishable package packed with `pnpm pack` (which rewrites
 * `workspace:` ranges), installed with plain npm into an empty directory outside the workspace, and
 * run from there against the real PostgreSQL and S3 servers of the run.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, psql, seedSmall, snapshotSmall } from "./postgres.ts";
import type { CliResult } from "./run-cli.ts";

const run = promisify(execFile);
const workspace = fileURLToPath(new URL("../../../", import.meta.url));
const postgres = inject("postgres");
const s3 = inject("s3");

/** npm install takes the registry's third-party packages; the first run on a machine downloads them. */
const installTimeoutMs = 600_000;

interface PackageJson {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  repository?: { url?: string; directory?: string };
  engines?: { node?: string };
  files?: string[];
  bin?: Record<string, string>;
  exports?: Record<string, string | Record<string, string>>;
  publishConfig?: { access?: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface Packed {
  /** The workspace directory it was packed from, relative to the workspace (`packages/core`). */
  directory: string;
  tarball: string;
  /** Paths inside the tarball, without the leading `package/`. */
  files: string[];
  /** Where the tarball was unpacked, to read what it holds. */
  unpacked: string;
  manifest: PackageJson;
}

let scratch: string;
const packed = new Map<string, Packed>();

/** Every package of the workspace that is not private, by name. */
async function publishablePackages(): Promise<Array<{ directory: string; manifest: PackageJson }>> {
  const found: Array<{ directory: string; manifest: PackageJson }> = [];
  for (const group of ["packages", "apps"]) {
    for (const entry of await readdir(join(workspace, group), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const directory = `${group}/${entry.name}`;
      const manifest = JSON.parse(await readFile(join(workspace, directory, "package.json"), "utf8")) as PackageJson;
      if (!manifest.private) found.push({ directory, manifest });
    }
  }
  return found;
}

async function filesUnder(root: string, base = root): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(path, base)));
    else files.push(relative(base, path).split("\\").join("/"));
  }
  return files.sort();
}

/** The environment for npm: without the `npm_*`/`pnpm_*` settings pnpm passes to the processes it starts. */
function plainEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm|pnpm)_/i.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

/** `npm install` of the given specs into an empty project directory (no workspace, no pnpm). */
async function npmInstall(project: string, manifest: object, specs: string[]): Promise<void> {
  await mkdir(project, { recursive: true });
  await writeFile(join(project, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  try {
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--no-package-lock", ...specs], {
      cwd: project,
      env: plainEnvironment(),
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    throw new Error(`npm install failed in ${project}:\n${failed.stdout ?? ""}\n${failed.stderr ?? ""}`, { cause: error });
  }
}

function tarballOf(name: string): string {
  const found = packed.get(name);
  if (found === undefined) throw new Error(`${name} was not packed (packed: ${[...packed.keys()].join(", ")})`);
  return found.tarball;
}

/** Runs an executable with an argument array (no shell) and collects its output. */
function runProgram(program: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  const child = spawn(program, args, { cwd: options.cwd, env: plainEnvironment(options.env), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function describeResult(result: CliResult): string {
  return `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "hoard-packaging-"));
  const destination = join(scratch, "tarballs");
  // The same script packs the tarballs the Dockerfile installs.
  const { stdout } = await run("bash", [join(workspace, "scripts", "pack-packages.sh"), destination], { env: plainEnvironment() });
  const tarballs = stdout.trim().split("\n");
  const directories = new Map((await publishablePackages()).map(({ directory, manifest }) => [manifest.name, directory]));
  for (const tarball of tarballs) {
    const unpacked = join(scratch, "unpacked", basename(tarball, ".tgz"));
    await mkdir(unpacked, { recursive: true });
    await run("tar", ["-xzf", tarball, "-C", unpacked]);
    const root = join(unpacked, "package");
    const manifest = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as PackageJson;
    const directory = directories.get(manifest.name);
    expect(directory, `${tarball} is a public package of the workspace`).toBeDefined();
    packed.set(manifest.name, { directory: directory as string, tarball, files: await filesUnder(root), unpacked: root, manifest });
  }
  expect(packed.size, "one tarball per public package").toBe(tarballs.length);
}, 120_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe("the packed tarballs", () => {
  it("hold every publishable package and never the private test harness", () => {
    expect([...packed.keys()].sort()).toEqual([
      "@hoard/cli",
      "@hoard/core",
      "@hoard/driver-mariadb",
      "@hoard/driver-mongodb",
      "@hoard/driver-postgresql",
      "@hoard/driver-sqlite",
      "@hoard/storage-gcs",
      "@hoard/storage-s3",
    ]);
  });

  it("ship no tests, test source maps or fixtures", () => {
    for (const [name, { files }] of packed) {
      const offending = files.filter(
        (file) =>
          /(^|\/)(test|tests|__tests__|fixtures?|__fixtures__|bench)\//.test(file) ||
          /\.(test|spec)\.[cm]?[jt]s(\.map)?$/.test(file) ||
          /\.test\.d\.[cm]?ts/.test(file),
      );
      expect(offending, `${name} ships ${offending.join(", ")}`).toEqual([]);
      expect(files, name).toContain("README.md");
      expect(files, `${name} ships the license its manifest names`).toContain("LICENSE");
      if (name === "@hoard/cli") expect(files, "the config file's JSON Schema is published").toContain("schema/hoard.schema.json");
      expect(
        files.some((file) => file.startsWith("dist/")),
        `${name} ships its build`,
      ).toBe(true);
    }
  });

  it("carry the metadata a registry needs, with versions instead of workspace ranges", async () => {
    for (const [name, { manifest, unpacked, directory }] of packed) {
      const text = await readFile(join(unpacked, "package.json"), "utf8");
      expect(text, `${name}: pnpm pack rewrites workspace: ranges`).not.toContain("workspace:");
      expect(manifest.license, name).toBe("MIT");
      expect(manifest.repository?.url, name).toMatch(/^git\+https:\/\/.+\.git$/);
      expect(manifest.repository?.directory, name).toBe(directory);
      expect(manifest.engines?.node, name).toMatch(/^>=\d+/);
      expect(manifest.files, name).toContain("dist");
      expect(manifest.publishConfig?.access, `${name}: a scoped package is published public`).toBe("public");
      const installed = { ...manifest.dependencies, ...manifest.peerDependencies, ...manifest.optionalDependencies };
      expect(Object.keys(installed), `${name}: the private harness is never installed with it`).not.toContain("@hoard/test-harness");
    }
  });

  it("export types and code that exist for every entry point, and a runnable bin", async () => {
    for (const [name, { manifest, files, unpacked }] of packed) {
      for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
        if (subpath === "./package.json") continue;
        expect(typeof target, `${name} exports ${subpath} as conditions`).toBe("object");
        const conditions = target as Record<string, string>;
        // `types` must come first: resolvers take the first condition that matches.
        expect(Object.keys(conditions), `${name} ${subpath}`).toEqual(["types", "default"]);
        for (const path of Object.values(conditions)) {
          expect(files, `${name} ${subpath} -> ${path}`).toContain(posix.normalize(path));
        }
      }
      for (const [command, path] of Object.entries(manifest.bin ?? {})) {
        expect(files, `${name} bin ${command}`).toContain(posix.normalize(path));
        expect((await readFile(join(unpacked, path), "utf8")).startsWith("#!/usr/bin/env node\n"), `${name} bin ${command} shebang`).toBe(
          true,
        );
      }
    }
    expect(packed.get("@hoard/cli")?.manifest.bin).toEqual({ hoard: "./dist/cli.js" });
  });

  it("ship the sources their source maps and declaration maps point to", async () => {
    for (const [name, { files, unpacked }] of packed) {
      const maps = files.filter((file) => file.endsWith(".map"));
      expect(maps.length, name).toBeGreaterThan(0);
      for (const map of maps) {
        const { sources } = JSON.parse(await readFile(join(unpacked, map), "utf8")) as { sources: string[] };
        for (const source of sources) {
          const path = posix.normalize(posix.join(posix.dirname(map), source));
          expect(files, `${name}: ${map} points to ${source}`).toContain(path);
        }
      }
    }
  });
});

describe("@hoard/cli installed with npm from the tarballs", () => {
  let project: string;
  let hoard: string;

  beforeAll(async () => {
    project = join(scratch, "cli-project");
    await npmInstall(project, { name: "hoard-packaging-cli", private: true }, [
      tarballOf("@hoard/cli"),
      tarballOf("@hoard/core"),
      tarballOf("@hoard/driver-postgresql"),
      tarballOf("@hoard/storage-s3"),
    ]);
    hoard = join(project, "node_modules", ".bin", "hoard");
  }, installTimeoutMs);

  it("is installed as copies, outside the workspace, with only the plugins asked for", async () => {
    expect(relative(workspace, project).startsWith("..")).toBe(true);
    for (const name of ["cli", "core", "driver-postgresql", "storage-s3"]) {
      const stat = await lstat(join(project, "node_modules", "@hoard", name));
      expect(stat.isDirectory() && !stat.isSymbolicLink(), `@hoard/${name} is a real directory`).toBe(true);
    }
    expect((await readdir(join(project, "node_modules", "@hoard"))).sort()).toEqual(["cli", "core", "driver-postgresql", "storage-s3"]);
  });

  it("backs up, lists and restores PostgreSQL through a local directory", async () => {
    const source = await createDatabase(postgres.url);
    await seedSmall(source);
    const expected = await snapshotSmall(source);
    const target = await createDatabase(postgres.url);
    const storage = join(scratch, `cli-backups-${randomBytes(4).toString("hex")}`);

    const backedUp = await runProgram(hoard, ["backup", source, storage, "--prefix", "shop"], { cwd: project });
    expect(backedUp.code, describeResult(backedUp)).toBe(0);
    const backupUrl = backedUp.stdout.trim();
    expect(backupUrl).toMatch(/\/shop-\d{14}\.dump\.zst$/);

    const listed = await runProgram(hoard, ["list", storage, "--prefix", "shop", "--json"], { cwd: project });
    expect(listed.code, describeResult(listed)).toBe(0);
    const entries = JSON.parse(listed.stdout) as Array<{ key: string; size: number }>;
    expect(entries.map((entry) => entry.key)).toEqual([backupUrl.slice(backupUrl.lastIndexOf("/") + 1)]);
    expect(entries[0]?.size).toBeGreaterThan(0);

    const restored = await runProgram(hoard, ["restore", backupUrl, target], { cwd: project });
    expect(restored.code, describeResult(restored)).toBe(0);
    expect(await snapshotSmall(target)).toBe(expected);
  });

  it("backs up, lists and restores the latest through S3 with the installed S3 plugin", async () => {
    const source = await createDatabase(postgres.url);
    await seedSmall(source);
    const expected = await snapshotSmall(source);
    const target = await createDatabase(postgres.url);
    const storage = `s3://${s3.bucket}/hoard-packaging/${randomBytes(4).toString("hex")}`;
    const flags = ["--s3-endpoint", s3.endpoint, "--s3-force-path-style", "--s3-region", s3.region];
    const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };

    const backedUp = await runProgram(hoard, ["backup", source, storage, ...flags], { cwd: project, env });
    expect(backedUp.code, describeResult(backedUp)).toBe(0);
    const listed = await runProgram(hoard, ["list", storage, "--json", ...flags], { cwd: project, env });
    expect(listed.code, describeResult(listed)).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ key: string }>).map((entry) => `${storage}/${entry.key}`)).toEqual([
      backedUp.stdout.trim(),
    ]);
    const restored = await runProgram(hoard, ["restore", storage, "--latest", target, ...flags], { cwd: project, env });
    expect(restored.code, describeResult(restored)).toBe(0);
    expect(await snapshotSmall(target)).toBe(expected);
  });

  it("ends a cron schedule cleanly on SIGTERM, the signal tini forwards in the container image", async () => {
    const source = await createDatabase(postgres.url);
    await seedSmall(source);
    const storage = join(scratch, `cli-cron-${randomBytes(4).toString("hex")}`);
    const child = spawn(hoard, ["backup", source, storage, "--cron", "* * * * * *", "--prefix", "cron"], {
      cwd: project,
      env: plainEnvironment(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !stdout.includes("\n")) await new Promise((resolve) => setTimeout(resolve, 100));
    child.kill("SIGTERM");
    const code = await exited;
    expect(code, `stdout: ${stdout}\nstderr: ${stderr}`).toBe(0);
    const stored = stdout.trim().split("\n");
    expect(stored.length).toBeGreaterThanOrEqual(1);
    for (const url of stored) expect(url).toMatch(/\/cron-\d{14}\.dump\.zst$/);
    // Every backup it printed is listed whole, and no partial upload is left in the directory.
    const listed = await runProgram(hoard, ["list", storage, "--prefix", "cron", "--json"], { cwd: project });
    expect(listed.code, describeResult(listed)).toBe(0);
    const keys = (JSON.parse(listed.stdout) as Array<{ key: string }>).map((entry) => entry.key);
    expect(keys.sort()).toEqual(stored.map((url) => url.slice(url.lastIndexOf("/") + 1)).sort());
    expect((await readdir(storage)).filter((name) => name.startsWith(".hoard-partial"))).toEqual([]);
  });

  it("names the package to install for a database or store whose plugin is missing", async () => {
    const storage = join(scratch, "never-written");
    const mariadb = await runProgram(hoard, ["backup", "mariadb://root@127.0.0.1:3306/shop", storage], { cwd: project });
    expect(mariadb.code, describeResult(mariadb)).toBe(1);
    expect(mariadb.stderr).toBe(
      "hoard: mariadb:// databases need @hoard/driver-mariadb: install it with `npm install @hoard/driver-mariadb`\n",
    );
    expect(mariadb.stdout).toBe("");

    const gcs = await runProgram(hoard, ["list", "gs://bucket/prefix"], { cwd: project });
    expect(gcs.code, describeResult(gcs)).toBe(1);
    expect(gcs.stderr).toMatch(/^hoard: gs:\/\/ storage needs @hoard\/storage-gcs: install it with `npm install @hoard\/storage-gcs`\n$/);
  });
});

describe("@hoard/core and @hoard/driver-postgresql as a library, installed with npm from the tarballs", () => {
  let project: string;

  beforeAll(async () => {
    project = join(scratch, "library-project");
    const root = JSON.parse(await readFile(join(workspace, "package.json"), "utf8")) as PackageJson;
    // The user's own project types Node with @types/node; the workspace's pin keeps it to the supported Node.
    const typesNode = root.devDependencies?.["@types/node"];
    expect(typesNode).toBeDefined();
    await npmInstall(project, { name: "hoard-packaging-library", private: true, type: "module" }, [
      tarballOf("@hoard/core"),
      tarballOf("@hoard/driver-postgresql"),
      `@types/node@${typesNode}`,
    ]);
  }, installTimeoutMs);

  it("installs without the CLI or any other plugin", async () => {
    expect((await readdir(join(project, "node_modules", "@hoard"))).sort()).toEqual(["core", "driver-postgresql"]);
    await expect(lstat(join(project, "node_modules", "yargs"))).rejects.toThrow(/ENOENT/);
  });

  it("type checks the README's library example against the installed types, and runs it", async () => {
    const readme = await readFile(join(workspace, "README.md"), "utf8");
    const example = /<!-- The block below is run by [^>]+-->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toContain('from "@hoard/driver-postgresql"');
    await writeFile(join(project, "example.ts"), example as string);
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          // The installed packages' declarations are checked too, not only the example.
          skipLibCheck: false,
          types: ["node"],
          outDir: "out",
        },
        files: ["example.ts"],
      }),
    );
    const tsc = join(workspace, "node_modules", ".bin", "tsc");
    const checked = await runProgram(tsc, ["-p", project], { cwd: project });
    expect(checked.code, describeResult(checked)).toBe(0);

    const source = await createDatabase(postgres.url);
    const target = await createDatabase(postgres.url);
    await psql(source, "CREATE TABLE product (id int PRIMARY KEY, name text); INSERT INTO product VALUES (1, 'lamp'), (2, 'desk')");
    const backups = join(scratch, "library-backups");
    const ran = await runProgram(process.execPath, [join(project, "out", "example.js")], {
      cwd: project,
      env: { BACKUP_DIRECTORY: backups, SOURCE_URL: source, TARGET_URL: target },
    });
    expect(ran.code, describeResult(ran)).toBe(0);
    expect(ran.stdout).toMatch(/^stored shop-\d{14}\.dump\.zst\nshop-\d{14}\.dump\.zst \d+ \d{4}-/);
    expect(await psql(target, "SELECT string_agg(name, ',' ORDER BY id) FROM product")).toBe("lamp,desk");
  });
});
