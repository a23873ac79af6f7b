import { execFile, spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { runMongoCommand } from "@hoard/test-harness";
import { scratchName } from "@hoard/test-harness/vitest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, psql, seedSmall, snapshotSmall } from "./postgres.ts";
import { runCli } from "./run-cli.ts";

const run = promisify(execFile);
const postgres = inject("postgres");

let workDirectory: string;
let alice: { file: string; identity: string; recipient: string };
let bob: { file: string; identity: string; recipient: string };
let mallory: { file: string; identity: string; recipient: string };

async function generateKey(name: string) {
  const file = join(workDirectory, `${name}.key`);
  await run("age-keygen", ["-o", file]);
  const identity = (await readFile(file, "utf8")).split("\n").find((line) => line.startsWith("AGE-SECRET-KEY-1")) as string;
  return { file, identity, recipient: (await run("age-keygen", ["-y", file])).stdout.trim() };
}

beforeAll(async () => {
  workDirectory = await mkdtemp(join(tmpdir(), "hoard-cli-encryption-"));
  [alice, bob, mallory] = await Promise.all([generateKey("alice"), generateKey("bob"), generateKey("mallory")]);
});

afterAll(async () => {
  await rm(workDirectory, { recursive: true, force: true });
});

/** The one object a backup stored under `storage` (the manifest beside it aside). */
async function storedObject(storage: string): Promise<string> {
  const names = (await readdir(storage)).filter((name) => !name.endsWith(".manifest.json"));
  expect(names).toHaveLength(1);
  return join(storage, names[0] as string);
}

/** A hoard failure: exit status and exactly one line `hoard: ...`, no stack trace. */
function expectOneLine(result: { code: number | null; stderr: string }, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  const lines = result.stderr.trim().split("\n");
  const failures = lines.filter((line) => line.startsWith("hoard: "));
  expect(failures).toHaveLength(1);
  expect(failures[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

/** Runs `first | second | ...` without a shell and resolves when the last one succeeded. */
function pipeThrough(commands: Array<[string, string[]]>): Promise<void> {
  const children = commands.map(([program, args]) => spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] }));
  children.reduce((previous, next) => {
    previous.stdout.pipe(next.stdin);
    return next;
  });
  children[0]?.stdin.end();
  return Promise.all(
    children.map(
      (child, index) =>
        new Promise<void>((resolve, reject) => {
          let stderr = "";
          child.stderr.on("data", (data: Buffer) => {
            stderr += data.toString();
          });
          child.on("error", reject);
          child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${commands[index]?.[0]} exited ${code}: ${stderr}`))));
        }),
    ),
  ).then(() => undefined);
}

describe("PostgreSQL, encrypted with age", () => {
  let sourceUrl: string;
  let expected: string;

  beforeAll(async () => {
    sourceUrl = await createDatabase(postgres.url);
    await seedSmall(sourceUrl);
    expected = await snapshotSmall(sourceUrl);
  });

  for (const mode of ["stream", "file"] as const) {
    it(`${mode} mode: backs up to two recipients and restores with either identity (--identity-file, HOARD_AGE_IDENTITY)`, async () => {
      const storage = join(workDirectory, `pg-${mode}`);
      const backedUp = await runCli([
        "backup",
        sourceUrl,
        storage,
        "--mode",
        mode,
        "--encrypt-to",
        alice.recipient,
        "--encrypt-to",
        bob.recipient,
      ]);
      expect(backedUp.stderr).not.toContain("hoard:");
      expect(backedUp.code).toBe(0);
      expect(backedUp.stdout.trim()).toMatch(/backup-\d{14}\.dump\.zst\.age$/);
      const object = await storedObject(storage);
      expect((await readFile(object)).subarray(0, 22).toString()).toBe("age-encryption.org/v1\n");

      const byFile = await createDatabase(postgres.url);
      const restored = await runCli(["restore", object, byFile, "--mode", mode, "--identity-file", alice.file]);
      expect(restored.stderr).not.toContain("hoard:");
      expect(restored.code).toBe(0);
      expect(await snapshotSmall(byFile)).toBe(expected);

      const byVariable = await createDatabase(postgres.url);
      const fromEnvironment = await runCli(["restore", storage, "--latest", byVariable, "--mode", mode], {
        HOARD_AGE_IDENTITY: await readFile(bob.file, "utf8"),
      });
      expect(fromEnvironment.stderr).not.toContain("hoard:");
      expect(fromEnvironment.code).toBe(0);
      expect(await snapshotSmall(byVariable)).toBe(expected);
    });
  }

  it("the plain age, zstd and pg_restore restore a hoard backup (the README's way without hoard)", async () => {
    const storage = join(workDirectory, "pg-plain");
    const recipients = join(workDirectory, "recipients.txt");
    await writeFile(recipients, `# the backup keys\n${mallory.recipient}\n\n  ${alice.recipient}  \n`);
    const backedUp = await runCli(["backup", sourceUrl, storage, "--recipients-file", recipients]);
    expect(backedUp.code).toBe(0);
    const object = await storedObject(storage);
    // The README's name and commands: age -d -i KEY backup-....dump.zst.age | zstd -dc | pg_restore --single-transaction --no-owner -d
    expect(object).toMatch(/\/backup-\d{14}\.dump\.zst\.age$/);
    const target = await createDatabase(postgres.url);
    await pipeThrough([
      ["age", ["-d", "-i", alice.file, object]],
      ["zstd", ["-dc"]],
      ["pg_restore", ["--single-transaction", "--no-owner", "-d", target]],
    ]);
    expect(await snapshotSmall(target)).toBe(expected);
  });

  for (const [program, extension] of [
    ["gzip", "gz"],
    ["zstd", "zst"],
  ] as const) {
    it(`restores a dump that age encrypted (pg_dump | ${program} | age -r)`, async () => {
      const storage = join(workDirectory, `pg-from-age-${program}`);
      await mkdir(storage, { recursive: true });
      const object = join(storage, `backup-20260101000000.dump.${extension}.age`);
      await pipeThrough([
        ["pg_dump", ["--format=custom", `--dbname=${sourceUrl}`]],
        [program, ["-c"]],
        ["age", ["-e", "-r", bob.recipient, "-o", object]],
      ]);
      const target = await createDatabase(postgres.url);
      const restored = await runCli(["restore", object, target, "--identity-file", bob.file]);
      expect(restored.stderr).not.toContain("hoard:");
      expect(restored.code).toBe(0);
      expect(await snapshotSmall(target)).toBe(expected);
    });
  }

  it("with a passphrase from HOARD_ENCRYPTION_PASSPHRASE and --passphrase-file, never printed", async () => {
    const passphrase = "tulip-anchor-mosaic-4711";
    const storage = join(workDirectory, "pg-passphrase");
    const backedUp = await runCli(["backup", sourceUrl, storage, "--debug"], { HOARD_ENCRYPTION_PASSPHRASE: passphrase });
    expect(backedUp.code).toBe(0);
    expect(backedUp.stderr).not.toContain(passphrase);
    const object = await storedObject(storage);
    expect((await readFile(object, "latin1")).split("\n")[1]).toMatch(/^-> scrypt /);

    const passphraseFile = join(workDirectory, "passphrase.txt");
    await writeFile(passphraseFile, `${passphrase}\n`, { mode: 0o600 });
    const target = await createDatabase(postgres.url);
    const restored = await runCli(["restore", object, target, "--passphrase-file", passphraseFile, "--debug"]);
    expect(restored.code).toBe(0);
    expect(restored.stderr).not.toContain(passphrase);
    expect(await snapshotSmall(target)).toBe(expected);

    const wrongFile = join(workDirectory, "wrong-passphrase.txt");
    await writeFile(wrongFile, "tulip-anchor-mosaic-4712\n");
    const untouched = await createDatabase(postgres.url);
    const wrong = await runCli(["restore", object, untouched, "--passphrase-file", wrongFile]);
    expectOneLine(wrong, 1, /^hoard: the passphrase given does not decrypt backup-\d{14}\.dump\.zst\.age$/);
    expect(await psql(untouched, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).toBe("0");

    const missing = await runCli(["restore", object, untouched]);
    expectOneLine(missing, 2, /is encrypted with a passphrase: set HOARD_ENCRYPTION_PASSPHRASE or --passphrase-file$/);
    // A passphrase never comes from the command line.
    expectOneLine(await runCli(["backup", sourceUrl, storage, "--passphrase", passphrase]), 2, /^hoard: Unknown argument/);
  });

  it("the passphrase and the identity variables never reach the dump tool's environment", async () => {
    // A pg_dump first on PATH that writes down the environment it was given, whatever it is asked
    // (the driver may ask its version before it dumps), and then fails.
    const bin = join(workDirectory, "bin");
    const written = join(workDirectory, "pg_dump-environment.json");
    await mkdir(bin, { recursive: true });
    await writeFile(
      join(bin, "pg_dump"),
      `#!${process.execPath}\nrequire("node:fs").writeFileSync(${JSON.stringify(written)}, JSON.stringify(process.env));\nprocess.exit(1);\n`,
    );
    await chmod(join(bin, "pg_dump"), 0o755);
    const result = await runCli(["backup", sourceUrl, join(workDirectory, "pg-inherited"), "--debug"], {
      PATH: `${bin}:${process.env.PATH ?? ""}`,
      HOARD_ENCRYPTION_PASSPHRASE: "secret-passphrase-value",
      HOARD_AGE_IDENTITY: alice.identity,
    });
    expect(result.stderr).not.toContain("secret-passphrase-value");
    const seen = await readFile(written, "utf8");
    expect(JSON.parse(seen).PATH).toContain(bin);
    expect(seen).not.toContain("secret-passphrase-value");
    expect(seen).not.toContain(alice.identity);
    expect(seen).not.toContain("HOARD_ENCRYPTION_PASSPHRASE");
    expect(seen).not.toContain("HOARD_AGE_IDENTITY");
  });

  it("a wrong or missing identity fails with one line and leaves the target untouched", async () => {
    const storage = join(workDirectory, "pg-keys");
    expect((await runCli(["backup", sourceUrl, storage, "--encrypt-to", alice.recipient])).code).toBe(0);
    const object = await storedObject(storage);
    const target = await createDatabase(postgres.url);

    const wrong = await runCli(["restore", object, target, "--identity-file", mallory.file]);
    expectOneLine(
      wrong,
      1,
      /^hoard: none of the age identities given can decrypt backup-\d{14}\.dump\.zst\.age \(it is encrypted to other recipients\)$/,
    );
    const missing = await runCli(["restore", object, target]);
    expectOneLine(
      missing,
      2,
      /^hoard: backup-\d{14}\.dump\.zst\.age is encrypted to age recipients: give the identity with --identity-file or HOARD_AGE_IDENTITY$/,
    );
    expect(await psql(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).toBe("0");

    const broken = join(workDirectory, "broken.key");
    await writeFile(broken, `# created: today\n${alice.identity.slice(0, -2)}xx\n`);
    const badKey = await runCli(["restore", object, target, "--identity-file", broken]);
    expectOneLine(badKey, 2, /^hoard: --identity-file .*broken\.key, line 2: invalid age identity/);
    expect(badKey.stderr).not.toContain(alice.identity.slice(16, 40));
  });

  it("a mistyped recipient fails at once with exit 2, and nothing is stored", async () => {
    const storage = join(workDirectory, "pg-typo");
    const typo = `${alice.recipient.slice(0, 20)}${alice.recipient.slice(21)}`;
    const result = await runCli(["backup", sourceUrl, storage, "--encrypt-to", typo]);
    expectOneLine(result, 2, new RegExp(`^hoard: --encrypt-to: invalid age recipient "${typo}"`));
    const both = await runCli(["backup", sourceUrl, storage, "--encrypt-to", alice.recipient], { HOARD_ENCRYPTION_PASSPHRASE: "x" });
    expectOneLine(both, 2, /not both/);
    const recipients = join(workDirectory, "typo-recipients.txt");
    await writeFile(recipients, `# keys\n${typo}\n`);
    expectOneLine(
      await runCli(["backup", sourceUrl, storage, "--recipients-file", recipients]),
      2,
      /recipients\.txt, line 2: invalid age recipient/,
    );
    await expect(readdir(storage)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("a flipped byte or a truncated object fails as damaged, and nothing reaches the target", async () => {
    const storage = join(workDirectory, "pg-damaged");
    expect((await runCli(["backup", sourceUrl, storage, "--encrypt-to", alice.recipient])).code).toBe(0);
    const object = await storedObject(storage);
    const content = await readFile(object);
    const middle = Math.floor(content.length / 2);
    content[middle] = (content[middle] as number) ^ 0x20;
    await writeFile(object, content);
    for (const mode of ["stream", "file"]) {
      const target = await createDatabase(postgres.url);
      const flipped = await runCli(["restore", object, target, "--identity-file", alice.file, "--mode", mode]);
      expectOneLine(flipped, 1, /^hoard: backup-\d{14}\.dump\.zst\.age is damaged or truncated/);
      expect(await psql(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).toBe("0");
    }
    content[middle] = (content[middle] as number) ^ 0x20;
    await writeFile(object, content);
    await truncate(object, content.length - 100);
    const target = await createDatabase(postgres.url);
    const cut = await runCli(["restore", object, target, "--identity-file", alice.file]);
    expectOneLine(cut, 1, /^hoard: backup-\d{14}\.dump\.zst\.age is damaged or truncated/);
    expect(await psql(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).toBe("0");
  });
});

describe("MariaDB, encrypted with age", () => {
  const server = new URL(inject("mariadb").url);
  const mariadb = async (sql: string, database?: string) => {
    const args = [
      "--no-defaults",
      "--protocol=TCP",
      `--host=${server.hostname}`,
      `--port=${server.port || "3306"}`,
      `--user=${decodeURIComponent(server.username)}`,
      "--batch",
      "--skip-column-names",
      "--default-character-set=utf8mb4",
    ];
    if (database) args.push(`--database=${database}`);
    const { stdout } = await run("mariadb", [...args, "--execute", sql], {
      env: { ...process.env, MYSQL_PWD: decodeURIComponent(server.password) },
    });
    return stdout.trim();
  };
  const urlOf = (database: string) => {
    const url = new URL(server);
    url.pathname = `/${database}`;
    return url.toString();
  };
  const source = scratchName("hoard_cli_age");
  const targets: string[] = [];
  const target = (suffix: string) => {
    targets.push(`${source}_${suffix}`);
    return `${source}_${suffix}`;
  };
  const contents = (database: string) => mariadb("SELECT group_concat(concat(id, ':', name, ':', price) ORDER BY id) FROM item", database);

  beforeAll(async () => {
    await mariadb(
      `CREATE DATABASE ${source}; USE ${source};
       CREATE TABLE item (id int AUTO_INCREMENT PRIMARY KEY, name varchar(50) CHARACTER SET utf8mb4, price decimal(10,2));
       INSERT INTO item (name, price) VALUES ('lamp 💡', 19.99), ('desk', 120.00);`,
    );
  });

  afterAll(async () => {
    await mariadb(`DROP DATABASE IF EXISTS ${source}; ${targets.map((name) => `DROP DATABASE IF EXISTS ${name};`).join(" ")}`);
  });

  for (const mode of ["stream", "file"] as const) {
    it(`${mode} mode: round trip through age`, async () => {
      const storage = join(workDirectory, `maria-${mode}`);
      const backedUp = await runCli(["backup", urlOf(source), storage, "--mode", mode, "--encrypt-to", alice.recipient]);
      expect(backedUp.stderr).not.toContain("hoard:");
      expect(backedUp.code).toBe(0);
      expect(backedUp.stdout.trim()).toMatch(/backup-\d{14}\.sql\.zst\.age$/);
      const copy = target(mode);
      const restored = await runCli(["restore", storage, "--latest", urlOf(copy), "--mode", mode, "--identity-file", alice.file]);
      expect(restored.stderr).not.toContain("hoard:");
      expect(restored.code).toBe(0);
      expect(await contents(copy)).toBe("1:lamp 💡:19.99,2:desk:120.00");
    });
  }

  it("a truncated backup fails as damaged and creates nothing in the target", async () => {
    const storage = join(workDirectory, "maria-cut");
    expect((await runCli(["backup", urlOf(source), storage, "--encrypt-to", alice.recipient])).code).toBe(0);
    const object = await storedObject(storage);
    const { size } = await stat(object);
    await truncate(object, size - 30);
    const copy = target("cut");
    const cut = await runCli(["restore", object, urlOf(copy), "--identity-file", alice.file]);
    expectOneLine(cut, 1, /^hoard: backup-\d{14}\.sql\.zst\.age is damaged or truncated/);
    expect(await mariadb(`SELECT count(*) FROM information_schema.tables WHERE table_schema = '${copy}'`)).toBe("0");
  });
});

describe("MongoDB (FerretDB), encrypted with age", () => {
  const mongo = inject("mongo");
  const database = scratchName("hoard_cli_age");
  const urlOf = (name: string) => `mongodb://${mongo.host}:${mongo.port}/${name}`;

  beforeAll(async () => {
    await runMongoCommand(
      mongo.host,
      mongo.port,
      {
        insert: "orders",
        documents: [
          { _id: 1, item: "lamp" },
          { _id: 2, item: "desk", qty: 3 },
        ],
      },
      { database },
    );
  });

  for (const mode of ["stream", "file"] as const) {
    it(`${mode} mode: round trip through age`, async () => {
      const storage = join(workDirectory, `mongo-${mode}`);
      const backedUp = await runCli(["backup", urlOf(database), storage, "--mode", mode, "--encrypt-to", bob.recipient]);
      expect(backedUp.stderr).not.toContain("hoard:");
      expect(backedUp.code).toBe(0);
      expect(backedUp.stdout.trim()).toMatch(/backup-\d{14}\.archive\.zst\.age$/);
      const copy = `${database}_${mode}`;
      const restored = await runCli(["restore", storage, "--latest", urlOf(copy), "--mode", mode], {
        HOARD_AGE_IDENTITY: bob.identity,
      });
      expect(restored.stderr).not.toContain("hoard:");
      expect(restored.code).toBe(0);
      const found = await runMongoCommand(mongo.host, mongo.port, { find: "orders", filter: {}, sort: { _id: 1 } }, { database: copy });
      expect((found.cursor as { firstBatch: unknown[] }).firstBatch).toEqual([
        { _id: 1, item: "lamp" },
        { _id: 2, item: "desk", qty: 3 },
      ]);
    });
  }
});
