import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { runMongoCommand } from "@hoard/test-harness";
import { scratchName } from "@hoard/test-harness/vitest";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runCli } from "./run-cli.ts";

const run = promisify(execFile);
let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-cli-databases-"));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("MariaDB from the command line", () => {
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
  const source = scratchName("hoard_cli");
  const target = `${source}_copy`;

  afterAll(async () => {
    await mariadb(`DROP DATABASE IF EXISTS ${source}; DROP DATABASE IF EXISTS ${target}`);
  });

  it("backs up and restores with mariadb:// URLs", async () => {
    await mariadb(
      `CREATE DATABASE ${source}; USE ${source};
       CREATE TABLE item (id int AUTO_INCREMENT PRIMARY KEY, name varchar(50) CHARACTER SET utf8mb4, price decimal(10,2));
       INSERT INTO item (name, price) VALUES ('lamp 💡', 19.99), ('desk', 120.00);`,
    );
    const storage = join(directory, "mariadb");
    const backedUp = await runCli(["backup", urlOf(source), storage, "--prefix", "maria"]);
    expect(backedUp.stderr).not.toContain("hoard:");
    expect(backedUp.code).toBe(0);
    expect(backedUp.stdout.trim()).toMatch(/maria-\d{14}\.sql\.zst$/);
    const restored = await runCli(["restore", storage, "--latest", "--prefix", "maria", urlOf(target).replace(/^mariadb:/, "mysql:")]);
    expect(restored.stderr).not.toContain("hoard:");
    expect(restored.code).toBe(0);
    expect(await mariadb("SELECT group_concat(concat(id, ':', name, ':', price) ORDER BY id) FROM item", target)).toBe(
      "1:lamp 💡:19.99,2:desk:120.00",
    );
  });
});

describe("MongoDB (FerretDB) from the command line", () => {
  const mongo = inject("mongo");
  const database = scratchName("hoard_cli");
  const urlOf = (name: string) => `mongodb://${mongo.host}:${mongo.port}/${name}`;

  it("backs up and restores with mongodb:// URLs", async () => {
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
    const storage = join(directory, "mongo");
    const backedUp = await runCli(["backup", urlOf(database), storage, "--prefix", "mongo"]);
    expect(backedUp.stderr).not.toContain("hoard:");
    expect(backedUp.code).toBe(0);
    expect(backedUp.stdout.trim()).toMatch(/mongo-\d{14}\.archive\.zst$/);
    const target = `${database}_copy`;
    const restored = await runCli(["restore", storage, "--latest", "--prefix", "mongo", urlOf(target)]);
    expect(restored.stderr).not.toContain("hoard:");
    expect(restored.code).toBe(0);
    const found = await runMongoCommand(mongo.host, mongo.port, { find: "orders", filter: {}, sort: { _id: 1 } }, { database: target });
    const batch = (found.cursor as { firstBatch: unknown[] }).firstBatch;
    expect(batch).toEqual([
      { _id: 1, item: "lamp" },
      { _id: 2, item: "desk", qty: 3 },
    ]);
  });

  it("passes HOARD_MONGODB_ENGINE to the driver, and refuses an unknown engine with exit 2", async () => {
    await runMongoCommand(mongo.host, mongo.port, { insert: "engine", documents: [{ _id: 1 }] }, { database: `${database}_engine` });
    const storage = join(directory, "mongo-engine");
    const builtin = await runCli(["backup", urlOf(`${database}_engine`), storage, "--debug"], { HOARD_MONGODB_ENGINE: "builtin" });
    expect(builtin.code).toBe(0);
    expect(builtin.stderr).toContain("with the built-in engine");
    const unknown = await runCli(["backup", urlOf(`${database}_engine`), storage], { HOARD_MONGODB_ENGINE: "turbo" });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split("\n")).toHaveLength(1);
  });
});
