import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { testPostgres } from "@hoard/test-harness/vitest";

const run = promisify(execFile);

/** Runs SQL with psql against a URL (trust or password from the URL via PGPASSWORD) and returns unaligned rows. */
export async function psql(url: string, sql: string): Promise<string> {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = "";
  const { stdout } = await run(
    "psql",
    ["--no-psqlrc", "--quiet", "--no-align", "--tuples-only", "--set=ON_ERROR_STOP=1", `--dbname=${parsed}`, "--command", sql],
    { env: { ...process.env, PGPASSWORD: password || undefined } },
  );
  return stdout.trim();
}

export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Creates a scratch database (`hoard_cli_<run tag>_<random>`, dropped by the harness at the end of the run) and returns its URL. */
export async function createDatabase(serverUrl: string): Promise<string> {
  const created = await testPostgres(serverUrl).createScratchDatabase("hoard_cli");
  return databaseUrl(serverUrl, decodeURIComponent(new URL(created).pathname.slice(1)));
}

/** A small database with a sequence in use, to prove a CLI round trip. */
export async function seedSmall(url: string): Promise<void> {
  await psql(
    url,
    `CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[]);
     INSERT INTO item (name, price, tags) SELECT 'item ' || n || ' ✓', n * 1.25, ARRAY['a', 'b' || n] FROM generate_series(1, 500) n;
     SELECT setval('item_id_seq', 777);`,
  );
}

export async function snapshotSmall(url: string): Promise<string> {
  return psql(url, "SELECT (SELECT string_agg(t::text, '|' ORDER BY id) FROM item t) || ' seq=' || (SELECT last_value FROM item_id_seq)");
}
