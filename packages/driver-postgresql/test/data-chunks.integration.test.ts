import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isHoardError } from "@hoard/core";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { mergeDataChunks } from "../src/data-chunks.ts";
import { createDatabase, psql } from "./postgres.ts";

const server = inject("postgres");

/** A tool's stdout as bytes, with the test server's password in its environment. */
async function toolBytes(tool: string, args: string[], input?: Buffer): Promise<Buffer> {
  const password = decodeURIComponent(new URL(server.url).password);
  const child = spawn(tool, args, { env: { ...process.env, PGPASSWORD: password || undefined }, stdio: ["pipe", "pipe", "pipe"] });
  const chunks: Buffer[] = [];
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdin.end(input);
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`${tool} exited ${code}: ${stderr}`);
  return Buffer.concat(chunks);
}

/** What `mergeDataChunks` makes of `archive`, fed in pieces of `pieceSize` bytes. */
async function merged(archive: Buffer, pieceSize = 65_536, pieceBytes?: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < archive.length; offset += pieceSize) pieces.push(archive.subarray(offset, offset + pieceSize));
  const out: Buffer[] = [];
  await pipeline(
    mergeDataChunks(Readable.from(pieces), pieceBytes === undefined ? {} : { pieceBytes }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out.push(chunk);
    },
  );
  return Buffer.concat(out);
}

/** The script pg_restore makes of an archive read from stdin (as hoard feeds it), without its random \restrict key. */
async function script(archive: Buffer): Promise<string> {
  const text = (await toolBytes("pg_restore", ["--file=-"], archive)).toString("utf8");
  return text.replace(/^\\(un)?restrict \S+$/gm, "");
}

/** Where the data blocks start, and every data block's chunk lengths (type 1: table data; type 3: large objects, a list for each). */
function dataLayout(archive: Buffer): { dataStart: number; blocks: number[][] } {
  // Only for archives of this test (pg_dump 15: version 1.14, 4-byte ints, 8-byte offsets).
  let at = 11;
  const int = () => {
    let value = 0;
    for (let index = 4; index >= 1; index -= 1) value = value * 256 + (archive[at + index] as number);
    const negative = archive[at] !== 0;
    at += 5;
    return negative ? -value : value;
  };
  const skip = () => {
    const length = int();
    if (length > 0) at += length;
    return length >= 0;
  };
  int(); // compression
  for (let field = 0; field < 7; field += 1) int();
  for (let field = 0; field < 3; field += 1) skip();
  const entries = int();
  for (let entry = 0; entry < entries; entry += 1) {
    int();
    int();
    for (let field = 0; field < 4; field += 1) skip();
    int();
    for (let field = 0; field < 6; field += 1) skip();
    skip();
    skip();
    while (skip());
    at += 9;
  }
  const dataStart = at;
  const blocks: number[][] = [];
  const chunks = () => {
    const lengths: number[] = [];
    for (let length = int(); length !== 0; length = int()) {
      lengths.push(length);
      at += length;
    }
    blocks.push(lengths);
  };
  while (at < archive.length) {
    const type = archive[at] as number;
    at += 1;
    int();
    if (type === 1) chunks();
    else for (let oid = int(); oid !== 0; oid = int()) chunks();
  }
  return { dataStart, blocks };
}

function chunkLengths(archive: Buffer): number[][] {
  return dataLayout(archive).blocks;
}

describe("mergeDataChunks: pg_restore gets the same archive in fewer, larger data chunks", () => {
  let url: string;
  let archive: Buffer;

  beforeAll(async () => {
    url = await createDatabase(server.url);
    await psql(
      url,
      String.raw`CREATE TABLE small_rows (id integer PRIMARY KEY, label text, amount numeric(12, 2));
INSERT INTO small_rows SELECT n, 'row ' || n || E' tab\there, backslash \\ and ünïcode', n * 1.25 FROM generate_series(1, 20000) AS n;
CREATE TABLE wide_rows (id integer PRIMARY KEY, body text);
INSERT INTO wide_rows SELECT n, repeat(md5(n::text), 3000) FROM generate_series(1, 3) AS n;
INSERT INTO wide_rows VALUES (4, 'short'), (5, NULL);
CREATE TABLE empty_table (id integer);
SELECT lo_from_bytea(0, convert_to(repeat('large object ', 10000), 'UTF8'));
SELECT lo_from_bytea(0, '\x00ff'::bytea);`,
    );
    // As hoard dumps: custom format, uncompressed, to a pipe (no data offsets in the table of contents).
    archive = await toolBytes("pg_dump", ["--format=custom", "--compress=0", "--no-password", `--dbname=${url}`]);
  });

  it("merges the per-row chunks of each block and leaves every byte of data and its order as it was", async () => {
    // The layout dataLayout() reads: archive version 1.14 (pg_dump 12 to 15), 4-byte ints, 8-byte offsets, custom format.
    expect([...archive.subarray(0, 11)]).toEqual([...Buffer.from("PGDMP"), 1, 14, 0, 4, 8, 1]);
    const before = chunkLengths(archive);
    const output = await merged(archive, 7_001);
    const after = chunkLengths(output);
    // Same blocks, same bytes in each.
    expect(after.length).toBe(before.length);
    for (const [index, lengths] of after.entries()) {
      expect(lengths.reduce((sum, length) => sum + length, 0)).toBe((before[index] as number[]).reduce((sum, length) => sum + length, 0));
    }
    expect(before.flat().length).toBeGreaterThan(20_000);
    expect(after.flat().length).toBeLessThan(40);
    // Up to 64 KiB each, but the rows larger than that, which go through whole (96,000-byte bodies).
    expect(after.flat().filter((length) => length > 65_536)).toEqual(before.flat().filter((length) => length > 65_536));
    expect(before.flat().filter((length) => length > 65_536).length).toBe(3);
    expect(await script(output)).toBe(await script(archive));
  });

  it("gives the same result whatever pieces the archive arrives in, and for any merge size", async () => {
    const expected = await merged(archive);
    for (const pieceSize of [1, 13, 4096]) expect((await merged(archive, pieceSize)).equals(expected)).toBe(true);
    const small = await merged(archive, 65_536, 100);
    expect(await script(small)).toBe(await script(archive));
  });

  it("restores through pg_restore into a database exactly as the archive does", async () => {
    const target = await createDatabase(server.url);
    await toolBytes(
      "pg_restore",
      ["--no-password", "--exit-on-error", "--single-transaction", `--dbname=${target}`],
      await merged(archive),
    );
    const snapshot = (database: string) =>
      psql(
        database,
        "SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM small_rows t), (SELECT md5(string_agg(coalesce(body, 'null'), ',' ORDER BY id)) FROM wide_rows), (SELECT count(*) FROM empty_table), (SELECT string_agg(md5(lo_get(oid)), ',' ORDER BY md5(lo_get(oid))) FROM pg_largeobject_metadata)",
      );
    expect(await snapshot(target)).toBe(await snapshot(url));
  });

  it("passes a compressed archive, a plain script and an archive it cannot read through byte for byte", async () => {
    const compressed = await toolBytes("pg_dump", ["--format=custom", "--no-password", `--dbname=${url}`]);
    expect((await merged(compressed, 5_000)).equals(compressed)).toBe(true);
    const plain = await toolBytes("pg_dump", ["--format=plain", "--no-password", `--dbname=${url}`]);
    expect((await merged(plain, 5_000)).equals(plain)).toBe(true);
    // A version byte this code does not know (1.99).
    const unknown = Buffer.from(archive);
    unknown[6] = 99;
    expect((await merged(unknown, 5_000)).equals(unknown)).toBe(true);
  });

  it("passes a data block it does not know (its type, or a dumpId the table of contents lacks) and all after it through as they are", async () => {
    const { dataStart } = dataLayout(archive);
    const unknownType = Buffer.from(archive);
    unknownType[dataStart] = 9;
    expect((await merged(unknownType, 3_333)).equals(unknownType)).toBe(true);
    const unknownEntry = Buffer.from(archive);
    unknownEntry.writeUInt32LE(999_999, dataStart + 2);
    expect((await merged(unknownEntry, 3_333)).equals(unknownEntry)).toBe(true);
  });

  it("fails a truncated archive with CORRUPT_ARCHIVE instead of handing on a shorter one", async () => {
    const cut = archive.subarray(0, archive.length - 5_000);
    const error = await merged(cut, 4_096).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isHoardError(error, "CORRUPT_ARCHIVE"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/truncated/);
  });
});
