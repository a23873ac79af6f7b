import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createLocalStorage, HoardError, type Storage } from "@hoard/core";
import { decompressor } from "@hoard/core/plugin";
import { rejectionOfKind, scratchName, throwOfKind } from "@hoard/test-harness/vitest";

/** The content of a zstd-compressed backup (the default compression), read with hoard's own decompressor. */
export async function unzstd(compressed: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([compressed]), decompressor("zst"), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  return Buffer.concat(chunks);
}

/** Runs the mariadb client with SQL on stdin, the URL's password in MYSQL_PWD (tests only), and returns its output. */
export async function runSql(url: string, sql: string, options: { columnNames?: boolean; database?: string | null } = {}): Promise<string> {
  const parsed = new URL(url);
  const database = options.database === undefined ? decodeURIComponent(parsed.pathname.slice(1)) : options.database;
  const args = [
    "--no-defaults",
    "--protocol=TCP",
    `--host=${parsed.hostname}`,
    `--port=${parsed.port || "3306"}`,
    `--user=${decodeURIComponent(parsed.username)}`,
    "--batch",
    "--default-character-set=utf8mb4",
    ...(options.columnNames ? [] : ["--skip-column-names"]),
    ...(database ? [`--database=${database}`] : []),
  ];
  const password = decodeURIComponent(parsed.password);
  const env: NodeJS.ProcessEnv = { ...process.env, MYSQL_PWD: password || undefined };
  return new Promise((resolve, reject) => {
    const child = spawn("mariadb", args, { env, stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(Buffer.concat(stdout).toString("utf8"));
      else reject(new Error(`mariadb exited ${code}: ${stderr.trim()}`));
    });
    child.stdin.end(sql);
  });
}

/** A random name that needs no quoting, e.g. `hoard_mdb_3f9a1c2b7e`. */
export function randomName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

/** The same server and account, another database (`null` for none). */
export function databaseUrl(url: string, database: string | null): string {
  const parsed = new URL(url);
  parsed.pathname = database === null ? "" : `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** The same server and database as another account. */
export function accountUrl(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

export function databaseOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

/** Quotes an identifier for SQL in tests. */
export function identifier(name: string): string {
  return `\`${name.replaceAll("`", "``")}\``;
}

/**
 * Creates an empty utf8mb4 database and returns its URL (same account as `serverUrl`). The default
 * name is a scratch name (`hoard_mdb_<run tag>_<random>`) that the harness drops at the end of the run.
 */
export async function createDatabase(serverUrl: string, name = scratchName("hoard_mdb")): Promise<string> {
  await runSql(serverUrl, `CREATE DATABASE ${identifier(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`, { database: null });
  return databaseUrl(serverUrl, name);
}

export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await runSql(serverUrl, `DROP DATABASE IF EXISTS ${identifier(name)}`, { database: null });
}

/** A non-root account with a password full of characters that need escaping somewhere. */
export interface TestAccount {
  user: string;
  password: string;
  /** Databases whose names start with this are the account's: it has every privilege on them. */
  databasePrefix: string;
  drop(): Promise<void>;
}

export const awkwardPassword = `p@ss:w/rd "quoted" 'single' #hash \\back\\slash ö ✓ =;`;

export async function createAccount(adminUrl: string, password = awkwardPassword): Promise<TestAccount> {
  // Scratch names: the harness drops the account and its databases at the end of the run if drop() did not.
  const user = scratchName("hoard_user");
  const databasePrefix = `${scratchName("hoard_own")}_`;
  const literal = (text: string) => `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  await runSql(
    adminUrl,
    `CREATE USER ${literal(user)}@'%' IDENTIFIED BY ${literal(password)};
     GRANT ALL PRIVILEGES ON ${identifier(`${databasePrefix.replaceAll("_", "\\_")}%`)}.* TO ${literal(user)}@'%';`,
    { database: null },
  );
  return {
    user,
    password,
    databasePrefix,
    drop: async () => {
      const databases = await runSql(adminUrl, "SHOW DATABASES", { database: null });
      for (const name of databases.split("\n").filter((line) => line.startsWith(databasePrefix))) await dropDatabase(adminUrl, name);
      await runSql(adminUrl, `DROP USER IF EXISTS ${literal(user)}@'%'`, { database: null });
    },
  };
}

/** Every key in a storage. */
export async function keysOf(storage: Storage): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storage.list()) keys.push(object.key);
  return keys.sort();
}

/** Running children of this process whose program name is `name`, as pid and argument list. */
export async function childProcesses(name: string): Promise<Array<{ pid: number; args: string[] }>> {
  const found: Array<{ pid: number; args: string[] }> = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = await readFile(`/proc/${entry}/status`, "utf8");
      const parent = /^PPid:\s+(\d+)/m.exec(status)?.[1];
      const command = /^Name:\s+(.*)$/m.exec(status)?.[1];
      if (Number(parent) !== process.pid || command !== name) continue;
      const args = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0").filter(Boolean);
      found.push({ pid: Number(entry), args });
    } catch {
      // The process ended while we looked.
    }
  }
  return found;
}

const isHoardError = (error: unknown): error is HoardError => HoardError.isInstance(error);

/** The HoardError a promise rejects with, failing the test when it resolves (another error is thrown again). */
export function failureOf(promise: Promise<unknown>): Promise<HoardError> {
  return rejectionOfKind(promise, isHoardError);
}

/** The HoardError an action throws, failing the test when it returns. */
export function failureOfSync(action: () => unknown): HoardError {
  return throwOfKind(action, isHoardError);
}

/** Waits until `check` returns something, polling. */
export async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A new database of `account` on the server of `serverUrl` (dropped with the account), as the account's URL. */
export async function accountDatabase(serverUrl: string, account: TestAccount, label: string): Promise<string> {
  return accountUrl(await createDatabase(serverUrl, randomName(`${account.databasePrefix}${label}`)), account.user, account.password);
}

/** A new test account with a database of its own, `sourceUrl` (as the account), holding what `sql` makes. */
export async function accountWithSource(serverUrl: string, sql: string): Promise<{ account: TestAccount; sourceUrl: string }> {
  const account = await createAccount(serverUrl);
  const sourceUrl = await accountDatabase(serverUrl, account, "source");
  await runSql(sourceUrl, sql);
  return { account, sourceUrl };
}

/** A local storage in a new temporary directory `<prefix>…` (the caller removes it). */
export async function freshLocalStorage(prefix: string): Promise<{ directory: string; storage: Storage }> {
  const directory = await mkdtemp(join(tmpdir(), prefix));
  return { directory, storage: createLocalStorage({ directory }) };
}
