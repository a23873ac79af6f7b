import { generateKeyPairSync } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadPluginSettings, type PluginKind, pluginPackages } from "@hoard/core";
import { environmentVariableOf, flagOf, type PluginSettings, type SettingDeclaration } from "@hoard/core/plugin";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, cliPath, runCli } from "./run-cli.ts";

/** Imports a plugin's `./settings` the way the built CLI does: resolved from the CLI's own install, by Node. */
const requireFromCli = createRequire(cliPath);
const importFromCli = async (specifier: string) => import(pathToFileURL(requireFromCli.resolve(specifier)).href);

let directory: string;
const declared: Record<PluginKind, PluginSettings[]> = { storage: [], driver: [] };
const lacking: string[] = [];

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-cli-settings-"));
  const onSkipped = (plugin: { name: string }, reason: string) => lacking.push(`${plugin.name}: ${reason}`);
  declared.storage = await loadPluginSettings(importFromCli, { kind: "storage", onSkipped });
  declared.driver = await loadPluginSettings(importFromCli, { kind: "driver", onSkipped });
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function errorLines(result: CliResult): string[] {
  return result.stderr.split("\n").filter((line) => line.startsWith("hoard:"));
}

/** Exit 2 and exactly one line, containing `text`, and no stack trace. */
function expectUsageError(result: CliResult, text: string): void {
  expect(result.code).toBe(2);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  expect(errorLines(result)).toHaveLength(1);
  expect(errorLines(result)[0]).toContain(text);
}

/** The lines of `--help` under a group heading, up to the next heading. */
function group(help: string, title: string): string {
  const start = help.indexOf(`\n${title}:\n`);
  if (start < 0) return "";
  const rest = help.slice(start + title.length + 3);
  const end = rest.search(/\n\S/);
  return end < 0 ? rest : rest.slice(0, end);
}

const everySetting = (kind: PluginKind) => declared[kind].flatMap((plugin) => plugin.settings.map((setting) => ({ plugin, setting })));

/** A database URL that is never connected to: a bad setting stops the command before. */
const unusedDatabase = "postgresql://nobody@127.0.0.1:9/never";

describe("plugin options come from the plugins' declarations", () => {
  it("every plugin of the workspace is installed for the CLI and publishes ./settings", () => {
    // Lists the plugins that lack ./settings: their options are missing from the CLI.
    expect(lacking).toEqual([]);
    expect(declared.storage.length + declared.driver.length).toBe(pluginPackages.length);
  });

  it("keeps every option the CLI had before the declarations", async () => {
    const help = (await runCli(["backup", "--help"])).stdout;
    for (const flag of [
      "--s3-endpoint",
      "--s3-region",
      "--s3-force-path-style",
      "--s3-sse",
      "--s3-sse-kms-key-id",
      "--s3-storage-class",
      "--s3-part-size",
      "--s3-queue-size",
      "--gcs-project",
      "--gcs-key-file",
      "--gcs-endpoint",
      "--gcs-storage-class",
      "--gcs-chunk-size",
      "--timeout",
    ]) {
      expect(help, flag).toContain(flag);
    }
    const variables = everySetting("storage")
      .concat(everySetting("driver"))
      .map(({ setting }) => environmentVariableOf(setting));
    expect(variables).toEqual(expect.arrayContaining(["HOARD_GCS_CLIENT_EMAIL", "HOARD_GCS_PRIVATE_KEY", "HOARD_MONGODB_ENGINE"]));
  });

  it("lists one group per plugin with a flag for each setting that is not a secret", async () => {
    const backup = (await runCli(["backup", "--help"])).stdout;
    const list = (await runCli(["list", "--help"])).stdout;
    for (const { plugin, setting } of everySetting("storage")) {
      for (const help of [backup, list]) {
        if (setting.secret) expect(help).not.toContain(`--${flagOf(setting)} `);
        else expect(group(help, plugin.title), `--${flagOf(setting)} under ${plugin.title}`).toContain(`--${flagOf(setting)} `);
      }
    }
    for (const { plugin, setting } of everySetting("driver")) {
      if (setting.secret) expect(backup).not.toContain(`--${flagOf(setting)} `);
      else expect(group(backup, plugin.title)).toContain(`--${flagOf(setting)} `);
      // list opens no database: no driver options there.
      expect(list).not.toContain(`--${flagOf(setting)} `);
    }
    // The secrets are named once, as environment variables, in the general help.
    const general = (await runCli(["--help"])).stdout.replace(/\n/g, "");
    for (const { setting } of [...everySetting("storage"), ...everySetting("driver")].filter(({ setting }) => setting.secret)) {
      expect(general).toContain(environmentVariableOf(setting));
    }
  });

  it("refuses bad values of every declared setting, from a flag or its variable, with exit 2 and one line naming the flag", async () => {
    const bad: Partial<Record<SettingDeclaration["kind"], string>> = {
      integer: "many",
      bytes: "big",
      duration: "soon",
      choice: "no-such-choice",
      boolean: "maybe",
    };
    let checked = 0;
    for (const kind of ["storage", "driver"] as const) {
      for (const { setting } of everySetting(kind)) {
        const value = bad[setting.kind];
        if (value === undefined || setting.secret) continue;
        const storage = join(directory, `bad-${flagOf(setting)}`);
        const flag = `--${flagOf(setting)}`;
        // A boolean flag takes no value on the command line (`--flag maybe` is a positional): only its variable can be bad.
        if (setting.kind !== "boolean") {
          const fromFlag = await runCli(["backup", unusedDatabase, storage, flag, value]);
          expectUsageError(fromFlag, `invalid ${flag} "${value}"`);
        }
        const fromVariable = await runCli(["backup", unusedDatabase, storage], { [environmentVariableOf(setting)]: value });
        expectUsageError(fromVariable, `invalid ${flag} "${value}"`);
        await expect(readdir(storage)).rejects.toMatchObject({ code: "ENOENT" });
        checked += 1;
      }
    }
    // S3's part and queue sizes and GCS's chunk size at least.
    expect(checked).toBeGreaterThanOrEqual(3);
  });

  it("takes a secret only from its environment variable, never from a flag", async () => {
    const secret = everySetting("storage").find(({ setting }) => setting.name === "gcsPrivateKey")?.setting;
    expect(secret?.secret).toBe(true);
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const storageUrl = "gs://hoard-cli-settings/secret";

    const asFlag = await runCli(["list", storageUrl, "--gcs-private-key", pem]);
    expectUsageError(asFlag, "--gcs-private-key is a secret");
    expect(errorLines(asFlag)[0]).toContain("set HOARD_GCS_PRIVATE_KEY instead");
    expect(asFlag.stderr).not.toContain("PRIVATE KEY-----");

    // From its variable the key reaches the GCS plugin, which wants the client email with it (and never prints the key).
    const fromVariable = await runCli(["list", storageUrl], { HOARD_GCS_PRIVATE_KEY: pem });
    expectUsageError(fromVariable, "HOARD_GCS_CLIENT_EMAIL");
    expect(fromVariable.stderr).not.toContain("PRIVATE KEY-----");
  });

  it("removes the secrets from the environment the dump tools inherit", async () => {
    // A pg_dump first on PATH that writes down the environment it was given.
    const bin = join(directory, "bin");
    const written = join(directory, "pg_dump-environment.json");
    await mkdir(bin);
    await writeFile(
      join(bin, "pg_dump"),
      `#!${process.execPath}\nrequire("node:fs").writeFileSync(${JSON.stringify(written)}, JSON.stringify(process.env));\nprocess.exit(1);\n`,
    );
    await chmod(join(bin, "pg_dump"), 0o755);
    const secrets = everySetting("storage")
      .concat(everySetting("driver"))
      .filter(({ setting }) => setting.secret)
      .map(({ setting }) => environmentVariableOf(setting));
    expect(secrets.length).toBeGreaterThan(0);
    const result = await runCli(["backup", unusedDatabase, join(directory, "secrets-stored")], {
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      HOARD_S3_REGION: "not-a-secret",
      ...Object.fromEntries(secrets.map((name) => [name, `value-of-${name}`])),
    });
    expect(result.code).toBe(1);
    const inherited = JSON.parse(await readFile(written, "utf8")) as Record<string, string>;
    expect(inherited.HOARD_S3_REGION).toBe("not-a-secret");
    for (const name of secrets) expect(inherited[name], name).toBeUndefined();
    expect(JSON.stringify(inherited)).not.toContain("value-of-");
  });
});
