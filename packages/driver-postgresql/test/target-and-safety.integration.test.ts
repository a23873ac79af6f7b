import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { backup, createLocalStorage, type HoardError, restore, type Storage } from "@hoard/core";
import { silentServerOfSuite } from "@hoard/test-harness/vitest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createPostgresDriver, parsePostgresUrl } from "../src/index.ts";
import { createDatabase, databaseUrl, dropDatabase, failureOf, psql, unzstd } from "./postgres.ts";

const server = inject("postgres");
const created: string[] = [];
let directory: string;
let storage: Storage;

async function newDatabase(): Promise<string> {
  const url = await createDatabase(server.url);
  created.push(url);
  return url;
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-pg-safety-"));
  storage = createLocalStorage({ directory });
});

afterAll(async () => {
  for (const url of created) await dropDatabase(url);
  await rm(directory, { recursive: true, force: true });
});

const nameOf = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1));

/** Everything in the public schema of a database, as text, to see that nothing changed. */
async function contents(url: string): Promise<string> {
  return psql(
    url,
    `SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public';
     SELECT coalesce(string_agg(id || ':' || body, ',' ORDER BY id), '') FROM customers;`,
  );
}

describe("a restore into a database that is not empty", () => {
  let source: string;
  let key: string;

  beforeAll(async () => {
    source = await newDatabase();
    await psql(
      source,
      `CREATE TABLE customers (id int PRIMARY KEY, body text); INSERT INTO customers VALUES (1, 'from backup'), (2, 'also from backup');
       CREATE SEQUENCE invoice START 500; SELECT nextval('invoice');`,
    );
    ({ key } = await backup({ driver: createPostgresDriver({ url: source }), storage, prefix: "source" }));
  });

  async function occupiedTarget(): Promise<string> {
    const target = await newDatabase();
    await psql(
      target,
      `CREATE TABLE customers (id int PRIMARY KEY, body text); INSERT INTO customers VALUES (1, 'already there');
       CREATE TABLE orders (id int); CREATE TABLE zebra (id int); CREATE VIEW customer_names AS SELECT body FROM customers;`,
    );
    return target;
  }

  it("is refused with TARGET_NOT_EMPTY naming what is there, and nothing changes", async () => {
    const target = await occupiedTarget();
    const before = await contents(target);
    const error = await failureOf(restore({ driver: createPostgresDriver({ url: target }), storage, key }));
    expect(error.code).toBe("TARGET_NOT_EMPTY");
    expect(error.message).toBe(
      `postgresql: ${nameOf(target)} is not empty (3 tables, 1 view, e.g. customers, orders); use --replace to restore over it`,
    );
    expect(await contents(target)).toBe(before);
  });

  it("counts sequences, types, functions and schemas, but not what an extension brought", async () => {
    const target = await newDatabase();
    await psql(target, "CREATE EXTENSION IF NOT EXISTS plpgsql; CREATE EXTENSION IF NOT EXISTS pg_prewarm");
    // Extension objects only: still empty, so the restore goes ahead.
    await restore({ driver: createPostgresDriver({ url: target }), storage, key });
    expect(await psql(target, "SELECT count(*) FROM customers")).toBe("2\n");

    for (const [sql, found] of [
      ["CREATE SEQUENCE s", "1 sequence, e.g. s"],
      ["CREATE TYPE mood AS ENUM ('ok')", "1 type, e.g. mood"],
      ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "1 function, e.g. f"],
      ['CREATE SCHEMA "Other ü"', '1 schema, e.g. "Other ü"'],
    ] as const) {
      const occupied = await newDatabase();
      await psql(occupied, sql);
      const error = await failureOf(restore({ driver: createPostgresDriver({ url: occupied }), storage, key }));
      expect(error.code).toBe("TARGET_NOT_EMPTY");
      expect(error.message).toContain(`is not empty (${found}); use --replace`);
    }
  });

  it("with replace, restores the backup's objects over it and leaves the others alone", async () => {
    const target = await occupiedTarget();
    await psql(target, "DROP VIEW customer_names");
    await restore({ driver: createPostgresDriver({ url: target }), storage, key, replace: true });
    expect(await psql(target, "SELECT string_agg(id || ':' || body, ',' ORDER BY id) FROM customers")).toBe(
      "1:from backup,2:also from backup\n",
    );
    expect(await psql(target, "SELECT last_value FROM invoice")).toBe("500\n");
    expect(await psql(target, "SELECT count(*) FROM orders")).toBe("0\n");
  });

  it("with replace, the whole restore still runs in one transaction", async () => {
    const target = await occupiedTarget();
    // The backup's customers table cannot be dropped while this view depends on it: the restore fails and rolls back.
    const before = await contents(target);
    const error = await failureOf(restore({ driver: createPostgresDriver({ url: target }), storage, key, replace: true }));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toMatch(/the database was left unchanged$/);
    expect(await contents(target)).toBe(before);
  });

  it("refuses a cluster script on a server with other databases, before running any of it", async () => {
    const target = await newDatabase();
    const role = `hoard_role_${randomBytes(5).toString("hex")}`;
    const script = `--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE ${role};\n`;
    await storage.upload("cluster-20260101000000.sql", new PassThrough().end(Buffer.from(script)));
    const error = await failureOf(restore({ driver: createPostgresDriver({ url: target }), storage, key: "cluster-20260101000000.sql" }));
    expect(error.code).toBe("TARGET_NOT_EMPTY");
    expect(error.message).toMatch(
      /^postgresql: the server is not empty for a cluster dump \(\d+ other databases?, e\.g\. .*\); use --replace/,
    );
    const created = await psql(target, `SELECT count(*) FROM pg_roles WHERE rolname = '${role}'`);
    if (created !== "0\n") await psql(target, `DROP ROLE ${role}`);
    expect(created).toBe("0\n");
  });
});

describe("secrets in URL parameters", () => {
  it("takes password= and sslpassword= out of the URL the tools get", () => {
    const connection = parsePostgresUrl(
      "postgresql://app@db.example:5433/shop?sslmode=prefer&password=s%40cret&options=-c%20search_path%3Dx&sslpassword=k%26ey",
    );
    expect(connection.connectionString).toBe("postgresql://app@db.example:5433/shop?sslmode=prefer&options=-c%20search_path%3Dx");
    expect(connection).toMatchObject({ password: "s@cret", sslPassword: "k&ey", database: "shop", address: "db.example:5433" });
  });

  it("says which part is badly percent-encoded, without the secret or the URL", () => {
    for (const [url, part] of [
      ["postgresql://app:p@ss%zzword@127.0.0.1/shop", "password"],
      ["postgresql://app@127.0.0.1/shop?password=p@ss%zzword", "password"],
      ["postgresql://app@127.0.0.1/shop?sslpassword=p@ss%zzword", "sslpassword"],
    ] as const) {
      const error = (() => {
        try {
          createPostgresDriver({ url });
        } catch (caught) {
          return caught as HoardError;
        }
        throw new Error("expected a failure");
      })();
      expect(error.code).toBe("INVALID_ARGUMENT");
      expect(error.message).toBe(`postgresql: the ${part} in the database URL is badly percent-encoded: write % as %25`);
      expect(error.message).not.toMatch(/URI malformed|p@ss|zzword/);
    }
  });

  it("never echoes a password with an unencoded @ in an error", async () => {
    for (const url of ["postgresql://app:se@cret@127.0.0.1", "postgresql://app:se@cret@127.0.0.1:99999/shop"]) {
      let message = "";
      try {
        createPostgresDriver({ url });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).not.toBe("");
      expect(message).not.toMatch(/se@cret|cret@|se@/);
    }
    // The tool's own errors neither: a database that does not exist on a reachable server.
    const url = new URL(databaseUrl(server.url, "hoard_never_created"));
    const driver = createPostgresDriver({ url: `${url.protocol}//${url.username || "postgres"}:se@cret@${url.host}${url.pathname}` });
    const error = await failureOf(backup({ driver, storage, prefix: "at-sign" }));
    expect(error.message).not.toMatch(/se@cret|cret@/);
  });
});

describe("connect timeout", () => {
  const silentServer = silentServerOfSuite();

  it("a host that accepts TCP and never answers: backup fails with UNREACHABLE within the timeout", async () => {
    const silent = silentServer();
    const driver = createPostgresDriver({ url: `postgresql://postgres@${silent.host}:${silent.port}/shop`, connectTimeoutMs: 2000 });
    const started = Date.now();
    const error = await failureOf(backup({ driver, storage, prefix: "silent" }));
    expect(error.code).toBe("UNREACHABLE");
    expect(error.message).toBe(`postgresql: no answer from ${silent.host}:${silent.port} within 2 s`);
    // Gave up within the timeout plus slack (libpq may try twice: with and without SSL).
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(silent.connections()).toBeGreaterThan(0);
    expect((await readdir(directory)).filter((name) => name.startsWith("silent"))).toEqual([]);
  });

  it("a host that accepts TCP and never answers: restore fails with UNREACHABLE within the timeout", async () => {
    const silent = silentServer();
    const { key } = await backup({ driver: createPostgresDriver({ url: await newDatabase() }), storage, prefix: "for-silent" });
    for (const replace of [false, true]) {
      const driver = createPostgresDriver({ url: `postgresql://postgres@${silent.host}:${silent.port}/shop`, connectTimeoutMs: 2000 });
      const started = Date.now();
      const error = await failureOf(restore({ driver, storage, key, replace }));
      expect(error.code).toBe("UNREACHABLE");
      expect(error.message).toBe(`postgresql: no answer from ${silent.host}:${silent.port} within 2 s`);
      expect(Date.now() - started).toBeLessThan(15_000);
    }
  });
});

describe("a dump that is not what it claims to be", () => {
  it("--dump-option=--file=... sends the dump elsewhere: TOOL_FAILED, nothing stored", async () => {
    const source = await newDatabase();
    await psql(source, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    const elsewhere = join(directory, "elsewhere.dump");
    for (const mode of ["stream", "file"] as const) {
      const driver = createPostgresDriver({ url: source, dumpOptions: [`--file=${elsewhere}`] });
      const error = await failureOf(backup({ driver, storage, prefix: `redirected-${mode}`, mode }));
      expect(error.code).toBe("TOOL_FAILED");
      expect(error.message).toBe("pg_dump produced no custom-format dump on its output (does a --dump-option redirect it, e.g. --file?)");
      expect((await readdir(directory)).filter((name) => name.startsWith("redirected"))).toEqual([]);
    }
    // pg_dump did write the dump, to the file.
    expect((await stat(elsewhere)).size).toBeGreaterThan(0);
  });

  it("a dump option that changes the format: TOOL_FAILED, nothing stored", async () => {
    const source = await newDatabase();
    const error = await failureOf(
      backup({ driver: createPostgresDriver({ url: source, dumpOptions: ["--format=plain"] }), storage, prefix: "plain-format" }),
    );
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toContain("pg_dump produced no custom-format dump on its output");
    expect((await readdir(directory)).filter((name) => name.startsWith("plain-format"))).toEqual([]);
  });

  it("a real custom-format dump still passes, whole", async () => {
    const source = await newDatabase();
    await psql(source, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)");
    const { key } = await backup({ driver: createPostgresDriver({ url: source }), storage, prefix: "genuine" });
    expect(key).toMatch(/^genuine-\d{14}\.dump\.zst$/);
    const raw = await unzstd(await readFile(join(directory, key)));
    expect(raw.subarray(0, 5).toString("latin1")).toBe("PGDMP");
    const target = await newDatabase();
    await restore({ driver: createPostgresDriver({ url: target }), storage, key });
    expect(await psql(target, "SELECT sum(id) FROM t")).toBe("500500\n");
  });
});

describe("an aborted restore", () => {
  it("says the single transaction was rolled back, and the database is unchanged", async () => {
    const source = await newDatabase();
    await psql(source, "CREATE TABLE big AS SELECT n, md5(n::text) || repeat('z', 300) AS body FROM generate_series(1, 200000) n");
    const { key } = await backup({ driver: createPostgresDriver({ url: source }), storage, prefix: "to-abort", compressionLevel: 1 });
    const raw = await unzstd(await readFile(join(directory, key)));
    const target = await newDatabase();
    // Feed the first part only and abort while pg_restore is inside its transaction, copying rows.
    const input = new PassThrough();
    input.write(raw.subarray(0, Math.floor(raw.length / 2)));
    const controller = new AbortController();
    const restoring = failureOf(
      createPostgresDriver({ url: target }).restore(
        { kind: "stream", stream: input },
        { workDirectory: directory, signal: controller.signal },
      ),
    );
    // Wait until the restore has created the table (inside its transaction: visible in pg_locks, not to us).
    for (let tries = 0; ; tries += 1) {
      const copying = await psql(
        target,
        `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%' AND pid <> pg_backend_pid()`,
      );
      if (copying !== "0\n") break;
      if (tries > 500) throw new Error("pg_restore never started copying");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    controller.abort();
    const error = await restoring;
    expect(error.code).toBe("ABORTED");
    expect(error.message).toBe(
      `postgresql: restore into ${nameOf(target)} aborted; it ran in one transaction, which was rolled back, so the database was left unchanged`,
    );
    expect(await psql(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).toBe("0\n");
  });
});
