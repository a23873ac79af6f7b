import { execFile } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { HoardError } from "@hoard/core";
import { decompressor } from "@hoard/core/plugin";
import { rejectionOfKind, testPostgres } from "@hoard/test-harness/vitest";

const run = promisify(execFile);

function environmentFor(url: string): NodeJS.ProcessEnv {
  const password = decodeURIComponent(new URL(url).password);
  return { ...process.env, PGPASSWORD: password || undefined, PGCONNECT_TIMEOUT: "10" };
}

function withoutPassword(url: string): string {
  const parsed = new URL(url);
  parsed.password = "";
  return parsed.toString();
}

/** The content of a zstd-compressed backup (the default compression), read with hoard's own decompressor. */
export async function unzstd(compressed: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([compressed]), decompressor("zst"), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  return Buffer.concat(chunks);
}

/** Runs SQL with psql (stopping at the first error) and returns its unaligned output. */
export async function psql(url: string, sql: string): Promise<string> {
  const { stdout } = await run(
    "psql",
    [
      "--no-psqlrc",
      "--quiet",
      "--no-align",
      "--tuples-only",
      "--set=ON_ERROR_STOP=1",
      `--dbname=${withoutPassword(url)}`,
      "--command",
      sql,
    ],
    { env: environmentFor(url), maxBuffer: 256 * 1024 * 1024 },
  );
  return stdout;
}

/** Runs a tool of the PostgreSQL client with the URL's password in its environment. */
export async function pgTool(tool: string, args: string[], url: string): Promise<string> {
  const { stdout } = await run(tool, args, { env: environmentFor(url), maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * Creates a scratch database (`hoard_pg_<run tag>_<random>`, dropped by the harness at the end of
 * the run) on the server of `serverUrl` and returns its URL.
 */
export async function createDatabase(serverUrl: string): Promise<string> {
  const created = await testPostgres(serverUrl).createScratchDatabase("hoard_pg");
  return databaseUrl(serverUrl, decodeURIComponent(new URL(created).pathname.slice(1)));
}

export async function dropDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const server = databaseUrl(url, "postgres");
  await psql(server, `DROP DATABASE IF EXISTS "${name.replaceAll('"', '""')}" WITH (FORCE)`);
}

/** The HoardError a promise rejects with, failing the test when it resolves (another error is thrown again). */
export function failureOf(promise: Promise<unknown>): Promise<HoardError> {
  return rejectionOfKind(promise, (error): error is HoardError => HoardError.isInstance(error));
}
