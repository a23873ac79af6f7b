// Proving backups from the command line against the real servers: every backup's manifest, `list`
// showing it, `hoard verify` passing good backups and failing damaged ones with one line, restore
// drills into scratch databases, `backup --verify`, and a tampered encrypted backup never reaching
// MariaDB.
import { execFile, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { runMongoCommand } from "@hoard/test-harness";
import { scratchName } from "@hoard/test-harness/vitest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase, databaseUrl, psql, seedSmall } from "./postgres.ts";
import { runCli } from "./run-cli.ts";

const run = promisify(execFile);
const postgres = inject("postgres");
let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-cli-proof-"));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

interface Manifest {
  key: string;
  hoardVersion: string;
  database: { kind: string; url: string; server?: { product: string; version: string }; tool?: { name: string; version: string } };
  object: { size: number; sha256: string };
  compression: { format: string; level: number; minMatch?: number };
  encryption?: { format: string; recipients?: string[]; passphrase?: boolean };
  contents?: { items: Array<{ database?: string; name: string; kind: string; count?: number }>; exactCounts: boolean };
}

async function manifestOf(backupPath: string): Promise<Manifest> {
  return JSON.parse(await readFile(`${backupPath}.manifest.json`, "utf8")) as Manifest;
}

/** The path of a stored object from the URL `hoard backup` printed (local storage). */
function pathOf(url: string): string {
  return url.trim();
}

/** A failure of the command: exit 1 and exactly one line, `hoard: ...`, on stderr (with --quiet). */
function expectOneLineFailure(result: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(result.code, result.stderr).toBe(1);
  const lines = result.stderr.trim().split("\n");
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^hoard: /);
  expect(lines[0]).toMatch(pattern);
}

async function flipByte(path: string, at: (length: number) => number): Promise<void> {
  const bytes = await readFile(path);
  const index = at(bytes.length);
  bytes[index] = (bytes[index] ?? 0) ^ 0x40;
  await writeFile(path, bytes);
}

describe("PostgreSQL", () => {
  let source: string;
  let storage: string;
  let backupUrl: string;

  beforeAll(async () => {
    source = await createDatabase(postgres.url);
    await seedSmall(source);
    await psql(
      source,
      "CREATE SCHEMA archive; CREATE TABLE archive.old (id int); INSERT INTO archive.old SELECT generate_series(1, 42); CREATE VIEW cheap AS SELECT id FROM item WHERE price < 10;",
    );
    storage = join(directory, "postgresql");
    // A password in the URL (the server trusts the user, so it is not asked for) must not reach the manifest.
    const withPassword = new URL(source);
    withPassword.password = "not-for-the-manifest";
    const stored = await runCli(["backup", withPassword.toString(), storage, "--quiet"]);
    expect(stored.code, stored.stderr).toBe(0);
    backupUrl = pathOf(stored.stdout);
  });

  it("writes a manifest: kind, versions, URL without password, size and SHA-256 of the object, contents", async () => {
    const manifest = await manifestOf(backupUrl);
    const bytes = await readFile(backupUrl);
    const serverVersion = (await psql(source, "SELECT current_setting('server_version')")).split(" ")[0];
    expect(manifest.key).toBe(backupUrl.slice(storage.length + 1));
    expect(manifest.database.kind).toBe("postgresql");
    expect(manifest.database.server).toEqual({ product: "PostgreSQL", version: serverVersion });
    expect(manifest.database.tool?.name).toBe("pg_dump");
    expect(manifest.database.tool?.version).toMatch(/^\d+\.\d+/);
    const expectedUrl = new URL(source);
    expectedUrl.password = "***";
    expect(manifest.database.url).toBe(expectedUrl.toString());
    expect(JSON.stringify(manifest)).not.toContain("not-for-the-manifest");
    expect(manifest.object).toEqual({ size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });
    expect(manifest.compression).toEqual({ format: "zstd", level: 3, minMatch: 6 });
    expect(manifest.encryption).toBeUndefined();
    const names = manifest.contents?.items.map((item) => `${item.database}.${item.name}:${item.kind}`).sort();
    expect(names).toEqual(["archive.old:table", "public.cheap:view", "public.item:table", "public.item_id_seq:sequence"]);
  });

  it("list shows the manifest and checksum, as a table and as JSON", async () => {
    const manifest = await manifestOf(backupUrl);
    const table = await runCli(["list", storage]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/MANIFEST\s+SHA-256/);
    expect(table.stdout).toContain(`yes       ${manifest.object.sha256.slice(0, 16)}`);
    const listed = await runCli(["list", storage, "--json"]);
    const rows = JSON.parse(listed.stdout) as Array<{ key: string; manifest: string; sha256?: string; size: number }>;
    expect(rows).toEqual([
      expect.objectContaining({ key: manifest.key, manifest: "present", sha256: manifest.object.sha256, size: manifest.object.size }),
    ]);
  });

  it("verify passes a good backup (text and --json): checksum, and pg_restore read the whole archive", async () => {
    const text = await runCli(["verify", backupUrl, "--quiet"]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("(matches the manifest)");
    expect(text.stdout).toMatch(/custom format, \d+ entries in the table of contents, 2 tables, 542 rows/);
    const json = await runCli(["verify", storage, "--latest", "--json", "--quiet"]);
    expect(json.code, json.stderr).toBe(0);
    const result = JSON.parse(json.stdout) as { ok: boolean; kind: string; contents: Manifest["contents"] };
    expect(result.ok).toBe(true);
    expect(result.kind).toBe("postgresql");
    expect(result.contents?.exactCounts).toBe(true);
    expect(result.contents?.items.filter((item) => item.kind === "table").map((item) => [item.name, item.count])).toEqual([
      ["old", 42],
      ["item", 500],
    ]);
  });

  it("verify fails a flipped byte, a truncated object and a missing manifest with one line; --structure-only checks a backup without one", async () => {
    const copy = join(directory, "postgresql-damaged");
    const original = await readFile(backupUrl);
    const key = backupUrl.slice(storage.length + 1);
    const target = join(copy, key);
    await mkdir(copy, { recursive: true });
    await writeFile(`${target}.manifest.json`, await readFile(`${backupUrl}.manifest.json`));

    await writeFile(target, original);
    await flipByte(target, (length) => Math.floor(length / 2));
    expectOneLineFailure(await runCli(["verify", target, "--quiet"]), /damaged|does not match its manifest/);

    await writeFile(target, original.subarray(0, original.length - 200));
    expectOneLineFailure(await runCli(["verify", target, "--quiet"]), /truncated/);

    await writeFile(target, original);
    await unlink(`${target}.manifest.json`);
    expectOneLineFailure(await runCli(["verify", target, "--quiet"]), /has no manifest.*--structure-only/);
    const structure = await runCli(["verify", target, "--structure-only", "--quiet"]);
    expect(structure.code, structure.stderr).toBe(0);
    expect(structure.stdout).toContain("(no manifest: not checked)");

    // A dump cut short and then compressed whole: only the archive's own structure can tell.
    const dumped = spawnSync("pg_dump", ["--format=custom", "--compress=0", `--dbname=${source}`]);
    expect(dumped.status).toBe(0);
    const cut = join(copy, "backup-20260101000000.dump.gz");
    await writeFile(cut, gzipSync(dumped.stdout.subarray(0, Math.floor(dumped.stdout.length * 0.6))));
    expectOneLineFailure(await runCli(["verify", cut, "--structure-only", "--quiet"]), /pg_restore|truncated/);
  });

  it("a drill creates a scratch database, restores, compares it with the manifest and the archive, reports the time and drops it", async () => {
    const scratch = databaseUrl(postgres.url, scratchName("hoard_drill"));
    const name = new URL(scratch).pathname.slice(1);
    const drilled = await runCli(["verify", backupUrl, "--drill", scratch, "--json", "--quiet"]);
    expect(drilled.code, drilled.stderr).toBe(0);
    const result = JSON.parse(drilled.stdout) as {
      drill: { scratchCreated: boolean; restoreMs: number; compared: { items: number; counts: number } };
    };
    expect(result.drill.scratchCreated).toBe(true);
    expect(result.drill.restoreMs).toBeGreaterThan(0);
    expect(result.drill.compared).toEqual({ items: 2, counts: 2 });
    expect(await psql(postgres.url, `SELECT count(*) FROM pg_database WHERE datname = '${name}'`)).toBe("0");
  });

  it("a drill uses an existing empty database and leaves it; refuses a non-empty one without touching it; refuses another kind's URL", async () => {
    const empty = await createDatabase(postgres.url);
    const used = await runCli(["verify", backupUrl, "--drill", empty, "--quiet"]);
    expect(used.code, used.stderr).toBe(0);
    expect(await psql(empty, "SELECT count(*) FROM item")).toBe("500");

    const busy = await createDatabase(postgres.url);
    await psql(busy, "CREATE TABLE precious (id int); INSERT INTO precious VALUES (7)");
    expectOneLineFailure(await runCli(["verify", backupUrl, "--drill", busy, "--quiet"]), /not empty/);
    expect(await psql(busy, "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'")).toBe("precious");

    // Another kind's URL is a usage error (exit 2), one line.
    const wrongKind = await runCli(["verify", backupUrl, "--drill", `sqlite://${join(directory, "wrong-kind.db")}`, "--quiet"]);
    expect(wrongKind.code).toBe(2);
    expect(wrongKind.stderr.trim()).toMatch(/^hoard: .*postgresql backup.*give a postgresql URL$/);
  });

  it("encrypted: backup --verify with a passphrase, verify with the right key, one line for a wrong or missing one", async () => {
    const storage = join(directory, "postgresql-encrypted");
    const env = { HOARD_ENCRYPTION_PASSPHRASE: "correct horse battery staple" };
    const stored = await runCli(["backup", source, storage, "--verify", "--quiet"], env);
    expect(stored.code, stored.stderr).toBe(0);
    const object = pathOf(stored.stdout);
    expect(object).toMatch(/\.dump\.zst\.age$/);
    expect((await manifestOf(object)).encryption).toEqual({ format: "age", passphrase: true });
    expect(await readFile(`${object}.manifest.json`, "utf8")).not.toContain("correct horse");

    const verified = await runCli(["verify", object, "--quiet"], env);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/custom format, .*2 tables, 542 rows/);
    const wrong = await runCli(["verify", object, "--quiet"], { HOARD_ENCRYPTION_PASSPHRASE: "wrong horse" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1);
    expect(wrong.stderr).toMatch(/^hoard: /);
    const missing = await runCli(["verify", object, "--quiet"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("backup --verify of a backup encrypted to a recipient says when it could only check the checksum", async () => {
    const keyFile = join(directory, "postgresql-age-key.txt");
    const generated = spawnSync("age-keygen", ["-o", keyFile], { encoding: "utf8" });
    expect(generated.status, generated.stderr).toBe(0);
    const recipient = /public key: (age1\S+)/i.exec(generated.stderr)?.[1] as string;
    const storage = join(directory, "postgresql-to-recipient");
    const warning =
      /only its size and SHA-256 were verified against the manifest: it is encrypted to age recipients and no identity was given to decrypt it, so its contents were not checked/;

    const checksumOnly = await runCli(["backup", source, storage, "--encrypt-to", recipient, "--verify"]);
    expect(checksumOnly.code, checksumOnly.stderr).toBe(0);
    expect(checksumOnly.stderr).toMatch(warning);
    expect((await manifestOf(pathOf(checksumOnly.stdout))).encryption).toEqual({ format: "age", recipients: [recipient] });

    // With the identity at hand the contents are verified, and nothing is said.
    const identity = await readFile(keyFile, "utf8");
    const whole = await runCli(["backup", source, `${storage}-with-identity`, "--encrypt-to", recipient, "--verify"], {
      HOARD_AGE_IDENTITY: identity,
    });
    expect(whole.code, whole.stderr).toBe(0);
    expect(whole.stderr).not.toMatch(warning);
  });

  it("backup --verify verifies what it stored", async () => {
    const verified = await runCli(["backup", source, join(directory, "postgresql-verified"), "--verify"]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stderr).not.toContain("hoard:");
    const manifest = await manifestOf(pathOf(verified.stdout));
    expect(manifest.database.kind).toBe("postgresql");
  });
});

describe("MariaDB", () => {
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
    ];
    if (database) args.push(`--database=${database}`);
    const { stdout } = await run("mariadb", [...args, "--execute", sql], {
      env: { ...process.env, MYSQL_PWD: decodeURIComponent(server.password) },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout.trim();
  };
  const urlOf = (database: string) => {
    const url = new URL(server);
    url.pathname = `/${database}`;
    return url.toString();
  };
  const source = scratchName("hoard_proof");
  const made: string[] = [source];
  let storage: string;
  let backupUrl: string;

  beforeAll(async () => {
    await mariadb(
      `CREATE DATABASE ${source}; USE ${source};
       CREATE TABLE item (id int PRIMARY KEY, name varchar(50));
       INSERT INTO item VALUES (1, 'lamp'), (2, 'desk'), (3, 'chair');
       CREATE TABLE note (body text);
       CREATE VIEW named AS SELECT name FROM item;`,
    );
    storage = join(directory, "mariadb");
    const stored = await runCli(["backup", urlOf(source), storage, "--quiet"]);
    expect(stored.code, stored.stderr).toBe(0);
    backupUrl = pathOf(stored.stdout);
  });

  afterAll(async () => {
    await mariadb(made.map((name) => `DROP DATABASE IF EXISTS ${name};`).join(" "));
  });

  it("writes a manifest with the server and mariadb-dump versions and the tables", async () => {
    const manifest = await manifestOf(backupUrl);
    const version = await mariadb("SELECT VERSION()");
    expect(manifest.database.kind).toBe("mariadb");
    expect(manifest.database.server).toEqual({ product: "MariaDB", version: version.split("-")[0] });
    expect(manifest.database.tool?.name).toMatch(/^(mariadb-dump|mysqldump)$/);
    expect(manifest.contents?.items.map((item) => `${item.name}:${item.kind}`).sort()).toEqual(["item:table", "named:view", "note:table"]);
    expect(manifest.contents?.exactCounts).toBe(false);
  });

  it("verify passes a good backup and fails a truncated dump that still decompresses", async () => {
    const good = await runCli(["verify", backupUrl, "--quiet"]);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain("complete SQL dump, 2 tables, 3 rows in 1 INSERT statements");

    const whole = (await readFile(backupUrl)).length;
    // The default compression is zstd: the zstd program reads the backup and compresses the cut dump.
    expect(backupUrl).toMatch(/\.sql\.zst$/);
    const decompressed = spawnSync("zstd", ["-dc", backupUrl]);
    expect(decompressed.status, decompressed.stderr.toString()).toBe(0);
    const sql = decompressed.stdout;
    expect(sql.toString("utf8")).toContain("Dump completed");
    const cut = join(directory, "mariadb-cut", "backup-20260101000000.sql.zst");
    await mkdir(join(directory, "mariadb-cut"), { recursive: true });
    const compressed = spawnSync("zstd", ["-q", "-c"], { input: sql.subarray(0, sql.length - 100) });
    expect(compressed.status, compressed.stderr.toString()).toBe(0);
    await writeFile(cut, compressed.stdout);
    expect(whole).toBeGreaterThan(0);
    expectOneLineFailure(await runCli(["verify", cut, "--structure-only", "--quiet"]), /Dump completed/);
  });

  it("a drill restores into a scratch database it creates and drops, and refuses a non-empty one", async () => {
    const scratch = scratchName("hoard_drill");
    made.push(scratch);
    const drilled = await runCli(["verify", backupUrl, "--drill", urlOf(scratch), "--json", "--quiet"]);
    expect(drilled.code, drilled.stderr).toBe(0);
    const result = JSON.parse(drilled.stdout) as { drill: { scratchCreated: boolean; compared: { items: number; counts: number } } };
    expect(result.drill.scratchCreated).toBe(true);
    // The dump's INSERTs are counted exactly, so the restored tables' counts are compared too.
    expect(result.drill.compared).toEqual({ items: 2, counts: 2 });
    expect(await mariadb(`SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${scratch}'`)).toBe("0");

    const busy = scratchName("hoard_busy");
    made.push(busy);
    await mariadb(`CREATE DATABASE ${busy}; CREATE TABLE ${busy}.precious (id int); INSERT INTO ${busy}.precious VALUES (7);`);
    expectOneLineFailure(await runCli(["verify", backupUrl, "--drill", urlOf(busy), "--quiet"]), /not empty/);
    expect(await mariadb(`SELECT GROUP_CONCAT(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${busy}'`)).toBe("precious");
  });

  it("a tampered encrypted backup never reaches the database: the whole ciphertext is authenticated before the restore", async () => {
    const big = scratchName("hoard_big");
    made.push(big);
    // Random text, so the compressed dump spans many 64 KiB age chunks.
    const rows = Array.from({ length: 3000 }, (_, index) => `(${index}, '${randomBytes(48).toString("hex")}')`).join(",");
    const loaded = spawnSync(
      "mariadb",
      [
        "--no-defaults",
        "--protocol=TCP",
        `--host=${server.hostname}`,
        `--port=${server.port || "3306"}`,
        `--user=${decodeURIComponent(server.username)}`,
      ],
      {
        input: `CREATE DATABASE ${big}; CREATE TABLE ${big}.first (id int PRIMARY KEY, body text); INSERT INTO ${big}.first VALUES ${rows};
          CREATE TABLE ${big}.second (id int PRIMARY KEY, body text); INSERT INTO ${big}.second VALUES ${rows};`,
        env: { ...process.env, MYSQL_PWD: decodeURIComponent(server.password) },
        encoding: "utf8",
      },
    );
    expect(loaded.status, loaded.stderr).toBe(0);
    const keyFile = join(directory, "age-key.txt");
    const generated = spawnSync("age-keygen", ["-o", keyFile], { encoding: "utf8" });
    expect(generated.status, generated.stderr).toBe(0);
    const recipient = /public key: (age1\S+)/i.exec(generated.stderr)?.[1] as string;
    expect(recipient).toMatch(/^age1/);
    const encrypted = await runCli(["backup", urlOf(big), join(directory, "mariadb-encrypted"), "--encrypt-to", recipient, "--quiet"]);
    expect(encrypted.code, encrypted.stderr).toBe(0);
    const object = pathOf(encrypted.stdout);
    expect(object).toMatch(/\.sql\.zst\.age$/);
    const manifest = await manifestOf(object);
    expect(manifest.encryption).toEqual({ format: "age", recipients: [recipient] });
    // Damage near the end: in stream mode, the chunks before it would reach the client first.
    await flipByte(object, (length) => length - 100);

    const target = scratchName("hoard_target");
    made.push(target);
    const restored = await runCli(["restore", object, urlOf(target), "--identity-file", keyFile, "--quiet"]);
    expect(restored.code, restored.stderr).toBe(1);
    expect(restored.stderr).toMatch(/damaged|tampered|truncated/);
    expect(await mariadb(`SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${target}'`)).toBe("0");

    const verified = await runCli(["verify", object, "--identity-file", keyFile, "--quiet"]);
    expectOneLineFailure(verified, /damaged|does not match its manifest/);
  });
});

describe("SQLite", () => {
  it("manifest, verify, a drill into a new file, and a dump without its COMMIT failing the structure check", async () => {
    const source = join(directory, "shop.db");
    const made = spawnSync("sqlite3", [source], {
      input: "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO items VALUES (1, 'tea'), (2, 'café');",
      encoding: "utf8",
    });
    expect(made.status, made.stderr).toBe(0);
    const storage = join(directory, "sqlite");
    const stored = await runCli(["backup", `sqlite://${source}`, storage, "--verify", "--quiet"]);
    expect(stored.code, stored.stderr).toBe(0);
    const manifest = await manifestOf(pathOf(stored.stdout));
    expect(manifest.database.kind).toBe("sqlite");
    expect(manifest.database.server?.product).toBe("SQLite");
    expect(manifest.contents?.items).toEqual([{ name: "items", kind: "table" }]);

    const verified = await runCli(["verify", pathOf(stored.stdout), "--quiet"]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain("complete SQLite dump, 1 tables, 2 INSERT statements");

    const scratch = join(directory, "drill.db");
    const drilled = await runCli(["verify", pathOf(stored.stdout), "--drill", `sqlite://${scratch}`, "--quiet"]);
    expect(drilled.code, drilled.stderr).toBe(0);
    expect(spawnSync("test", ["-e", scratch]).status).toBe(1);
    // --drill alone: the URL from HOARD_DATABASE_URL, kept out of the process list.
    const fromEnvironment = await runCli(["verify", pathOf(stored.stdout), "--drill", "--json", "--quiet"], {
      HOARD_DATABASE_URL: `sqlite://${scratch}`,
    });
    expect(fromEnvironment.code, fromEnvironment.stderr).toBe(0);
    expect((JSON.parse(fromEnvironment.stdout) as { drill: { database: string } }).drill.database).toBe(`sqlite://${scratch}`);

    const dump = spawnSync("sqlite3", [source, ".dump"]).stdout;
    const cut = join(directory, "sqlite-cut", "backup-20260101000000.sql.gz");
    await mkdir(join(directory, "sqlite-cut"), { recursive: true });
    await writeFile(cut, gzipSync(dump.subarray(0, dump.length - 12)));
    expectOneLineFailure(await runCli(["verify", cut, "--structure-only", "--quiet"]), /COMMIT/);
  });
});

describe("S3 (versitygw)", () => {
  const s3 = inject("s3");
  const args = ["--s3-endpoint", s3.endpoint, "--s3-force-path-style", "--s3-region", s3.region];
  const env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };

  it("backup --verify, list with the manifest, verify --latest and a drill through the bucket", async () => {
    const source = await createDatabase(postgres.url);
    await seedSmall(source);
    const storageUrl = `s3://${s3.bucket}/hoard-proof/${randomBytes(4).toString("hex")}`;
    const stored = await runCli(["backup", source, storageUrl, "--verify", "--quiet", ...args], env);
    expect(stored.code, stored.stderr).toBe(0);
    const listed = await runCli(["list", storageUrl, "--json", ...args], env);
    const rows = JSON.parse(listed.stdout) as Array<{ key: string; manifest: string; sha256: string }>;
    expect(rows).toHaveLength(1);
    expect(rows[0]?.manifest).toBe("present");
    expect(rows[0]?.sha256).toMatch(/^[0-9a-f]{64}$/);
    const verified = await runCli(["verify", storageUrl, "--latest", "--json", "--quiet", ...args], env);
    expect(verified.code, verified.stderr).toBe(0);
    expect((JSON.parse(verified.stdout) as { sha256: string }).sha256).toBe(rows[0]?.sha256);
    const drilled = await runCli(
      ["verify", storageUrl, "--latest", "--drill", databaseUrl(postgres.url, scratchName("hoard_drill")), "--quiet", ...args],
      env,
    );
    expect(drilled.code, drilled.stderr).toBe(0);
  });
});

describe("MongoDB (FerretDB)", () => {
  const mongo = inject("mongo");
  const urlOf = (name: string) => `mongodb://${mongo.host}:${mongo.port}/${name}`;

  it("a drill restores into a scratch database and compares the collections and their counts", async () => {
    const database = scratchName("hoard_proof");
    await runMongoCommand(mongo.host, mongo.port, { insert: "orders", documents: [{ _id: 1 }, { _id: 2 }, { _id: 3 }] }, { database });
    await runMongoCommand(mongo.host, mongo.port, { insert: "people", documents: [{ _id: "ada" }] }, { database });
    const storage = join(directory, "mongo");
    const stored = await runCli(["backup", urlOf(database), storage, "--quiet"]);
    expect(stored.code, stored.stderr).toBe(0);
    const manifest = await manifestOf(pathOf(stored.stdout));
    expect(manifest.database.kind).toBe("mongodb");
    const drilled = await runCli(["verify", pathOf(stored.stdout), "--drill", urlOf(scratchName("hoard_drill")), "--json", "--quiet"]);
    expect(drilled.code, drilled.stderr).toBe(0);
    const result = JSON.parse(drilled.stdout) as { drill: { compared: { items: number; counts: number } } };
    expect(result.drill.compared.items).toBe(2);
    expect(result.drill.compared.counts).toBe(2);
  });
});
