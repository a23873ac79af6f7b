import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./run-cli.ts";

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-config-"));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

let count = 0;

/** Writes a config file and runs `hoard config check` on it. */
async function check(text: string, environment: NodeJS.ProcessEnv = {}) {
  count += 1;
  const file = join(directory, `hoard-${count}.yaml`);
  await writeFile(file, text);
  return { file, ...(await runCli(["config", "check", "--config", file], environment)) };
}

const job = (fields: string) =>
  `jobs:\n  shop:\n    database: postgresql://app@db/shop\n    storage: s3://b/p\n    schedule: "0 3 * * *"\n${fields}`;

describe("hoard config check", () => {
  it("accepts a valid file and says what each job does", async () => {
    const result = await check(
      `defaults:\n  storage: ./backups\n  retention: { keepDaily: 7 }\njobs:\n  shop:\n    database: postgresql://app@db/shop\n    schedule: "0 3 * * *"\n    timezone: Europe/Berlin\n  crm:\n    database: mariadb://app@db/crm\n    storage: gs://b/crm\n    schedule: "*/10 * * * * *"\n    notify: { healthcheck: https://hc-ping.com/x }\n`,
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      `${result.file}: 2 jobs, valid\nshop: on "0 3 * * *" (Europe/Berlin) as shop, with retention\ncrm: on "*/10 * * * * *" (UTC) as crm, with retention, with alerts\n`,
    );
  });

  it("names the file, the job and the field of every problem, and exits 2", async () => {
    const result = await check(
      job(
        `    mode: fast\n    timezone: Mars/Olympus\n    compressionLevel: 20\n    retention: { keepLast: -1, olderThan: soon }\n    settings: { s3PartSize: tiny, s3Endpoit: http://x }\n    notify: { healthcheck: "ftp://x/y", retries: 99 }\n    encryption: { recipients: [not-a-key] }\n    schedul: "0 4 * * *"\n  other:\n    schedule: "61 * * * *"\n`,
      ),
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    const where = `hoard: ${result.file}: jobs.`;
    expect(result.stderr.split("\n").filter(Boolean).sort()).toEqual(
      [
        `${where}other.schedule: invalid cron expression`,
        `${where}shop.compressionLevel: use 19 or less for zstd`,
        `${where}shop.encryption.recipients[0]: an age recipient starts with age1`,
        `${where}shop.mode: use one of stream, file`,
        `${where}shop.notify.healthcheck: use an http:// or https:// URL`,
        `${where}shop.notify.retries: use 10 or less`,
        `${where}shop.retention.keepLast: use 0 or more`,
        `${where}shop.retention.olderThan: use a duration such as 30s, 15m, 1h or 7d`,
        `${where}shop.settings.s3PartSize: "tiny" is not a size: use e.g. 16MiB, 512KiB or a number of bytes`,
        `${where}shop.settings: unknown key "s3Endpoit"`,
        `${where}shop.timezone: unknown time zone`,
        `${where}shop: unknown key "schedul"`,
      ].sort(),
    );
  });

  it("says which required field is missing once the defaults are applied", async () => {
    const result = await check(`defaults:\n  storage: ./b\njobs:\n  shop:\n    database: postgresql://app@db/shop\n`);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`hoard: ${result.file}: jobs.shop.schedule: required (in the job or in defaults)\n`);
  });

  it("refuses two jobs that store under the same prefix in the same storage", async () => {
    const result = await check(
      'defaults:\n  storage: s3://b/db\n  prefix: nightly\n  schedule: "0 3 * * *"\njobs:\n  shop:\n    database: postgresql://app@db/shop\n  crm:\n    database: mariadb://app@db/crm\n',
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `hoard: ${result.file}: jobs.crm.prefix: jobs.shop already stores its backups as nightly in this storage; give each job its own prefix\n`,
    );
  });

  it("refuses a retention policy without a rule, and deleting every backup", async () => {
    const empty = await check(job("    retention: { keepMin: 2 }\n"));
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe(
      `hoard: ${empty.file}: jobs.shop.retention: give at least one rule: keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly or olderThan\n`,
    );
    const all = await check(job("    retention: { keepLast: 3, allowDeleteAll: true }\n"));
    expect(all.code).toBe(2);
    expect(all.stderr).toBe(`hoard: ${all.file}: jobs.shop.retention: unknown key "allowDeleteAll"\n`);
  });

  it("points at the line and column of a YAML syntax error", async () => {
    const result = await check("jobs:\n  shop:\n    database: [unclosed\n");
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^hoard: ${result.file.replaceAll(".", "\\.")}:\\d+:\\d+: .+\\n$`));
  });

  it("substitutes variables and files, and never quotes a secret in a message", async () => {
    const secret = "hunter2-but-longer";
    await mkdir(join(directory, "secrets"), { recursive: true });
    await writeFile(join(directory, "secrets", "passphrase"), `${secret}\n`);
    const good = await check(
      job("    encryption:\n      passphrase: $" + "{file:secrets/passphrase}\n    notify:\n      healthcheck: $" + "{HC_URL}\n"),
      { HC_URL: "https://hc-ping.com/0b5f" },
    );
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
    // A secret that fails validation: the message names the field, not the value.
    const bad = await check(job("    notify:\n      healthcheck: $" + "{HC_URL}\n"), { HC_URL: `ftp://${secret}` });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`hoard: ${bad.file}: jobs.shop.notify.healthcheck: use an http:// or https:// URL\n`);
    const unset = await check(job("    notify:\n      healthcheck: $" + "{HOARD_TEST_UNSET_VARIABLE}\n"));
    expect(unset.stderr).toBe(
      `hoard: ${unset.file}: jobs.shop.notify.healthcheck: the environment variable HOARD_TEST_UNSET_VARIABLE is not set\n`,
    );
    const missing = await check(job("    encryption:\n      passphrase: $" + "{file:secrets/nope}\n"));
    expect(missing.stderr).toBe(
      `hoard: ${missing.file}: jobs.shop.encryption.passphrase: cannot read ${join(directory, "secrets", "nope")}: no such file or directory, open '${join(directory, "secrets", "nope")}'\n`,
    );
    const literal = await check(job('    dumpOptions: ["$$' + '{not-a-reference}"]\n'));
    expect(literal.code).toBe(0);
  });

  it("validates the annotated example of docs/unattended.md", async () => {
    const documentation = await readFile(fileURLToPath(new URL("../../../docs/unattended.md", import.meta.url)), "utf8");
    const example = /```yaml\n(# yaml-language-server[\s\S]*?)```/.exec(documentation)?.[1];
    expect(example).toBeDefined();
    await mkdir(join(directory, "secrets"), { recursive: true });
    await writeFile(join(directory, "secrets", "webhook"), "webhook-key\n");
    await writeFile(join(directory, "secrets", "crm-passphrase"), "a long passphrase\n");
    const result = await check(example as string, {
      SHOP_DB_PASSWORD: "x",
      SHOP_CHECK_UUID: "5f1a",
      CRM_DB_PASSWORD: "y",
      EVENTS_DB_PASSWORD: "z",
    });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("3 jobs, valid");
  });
});

describe("the README's hoard.yaml", () => {
  it("validates", async () => {
    const readme = await readFile(fileURLToPath(new URL("../../../README.md", import.meta.url)), "utf8");
    const section = readme.slice(readme.indexOf("## Unattended"));
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example).toContain("jobs:");
    await mkdir(join(directory, "secrets"), { recursive: true });
    await writeFile(join(directory, "secrets", "webhook"), "webhook-key\n");
    await writeFile(join(directory, "secrets", "crm-passphrase"), "a long passphrase\n");
    const result = await check(example as string, { SHOP_DB_PASSWORD: "x", SHOP_CHECK_UUID: "5f1a", CRM_DB_PASSWORD: "y" });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("2 jobs, valid");
  });
});

describe("hoard config schema", () => {
  it("prints the JSON Schema that apps/cli/schema/hoard.schema.json holds (regenerate: node apps/cli/schema/generate.mjs)", async () => {
    const result = await runCli(["config", "schema"]);
    expect(result.code).toBe(0);
    const published = await readFile(fileURLToPath(new URL("../schema/hoard.schema.json", import.meta.url)), "utf8");
    expect(JSON.parse(result.stdout)).toEqual(JSON.parse(published));
    const schema = JSON.parse(published) as {
      properties: Record<string, { additionalProperties?: { properties: Record<string, unknown> } }>;
    };
    // Generated from the same source as the validation, plugin settings included.
    const jobProperties = schema.properties.jobs?.additionalProperties?.properties ?? {};
    expect(Object.keys(jobProperties)).toEqual(
      expect.arrayContaining(["database", "storage", "schedule", "retention", "notify", "settings"]),
    );
    expect(JSON.stringify(jobProperties.settings)).toContain("s3Endpoint");
  });
});
