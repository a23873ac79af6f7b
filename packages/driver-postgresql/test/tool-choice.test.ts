import { execFileSync } from "node:child_process";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { describe, expect, inject, it } from "vitest";
import { chooseDumpClient, chooseRestoreClient, majorOfVersion, type PostgresClientTools, parseServerVersion } from "../src/clients.ts";
import { archiveDumpedBy, readArchiveHeader, scriptDumpedBy, settingsFilter, tarDumpedBy } from "../src/dump-origin.ts";

/** Installed tools as a list (pure logic: which one is chosen); the integration test runs the real ones. */
const tools = (...versions: string[]): PostgresClientTools[] =>
  versions.map((version) => ({
    directory: `/usr/lib/postgresql/${majorOfVersion(version)}/bin`,
    version,
    major: majorOfVersion(version),
    path: (name) => `/usr/lib/postgresql/${majorOfVersion(version)}/bin/${name}`,
  }));

describe("choosing the client tools", () => {
  it("reads versions as PostgreSQL numbers them", () => {
    expect(majorOfVersion("15.19")).toBe(15);
    expect(majorOfVersion("9.6.24")).toBe(9.6);
    expect(majorOfVersion("18beta1")).toBe(18);
    expect(parseServerVersion("170002", "17.2 (Debian 17.2-1.pgdg120+1)")).toEqual({ text: "17.2", major: 17 });
    expect(parseServerVersion("90624", "9.6.24")).toEqual({ text: "9.6.24", major: 9.6 });
  });

  it("dumps with the server's major, else the nearest newer one, and names the version needed when none fits", () => {
    const installed = tools("18.1", "17.6", "15.19");
    expect(chooseDumpClient(installed, { text: "15.4", major: 15 }).version).toBe("15.19");
    expect(chooseDumpClient(installed, { text: "16.2", major: 16 }).version).toBe("17.6");
    expect(chooseDumpClient(installed, { text: "14.1", major: 14 }).version).toBe("15.19");
    expect(() => chooseDumpClient(tools("15.19"), { text: "17.2", major: 17 })).toThrow(
      "postgresql: the server is PostgreSQL 17.2; pg_dump 15.19 is the newest installed and cannot dump it: install postgresql-client-17 or give --pg-bin-dir",
    );
    expect(() => chooseDumpClient([], { text: "17.2", major: 17 })).toThrow(/pg_dump not found/);
  });

  it("restores with tools that read the archive: the server's major, else newer (through the filter), else older", () => {
    const installed = tools("17.6", "15.19");
    const dumpedBy15 = { version: "15.19", major: 15 };
    expect(chooseRestoreClient(installed, { text: "15.4", major: 15 }, dumpedBy15)).toMatchObject({
      client: { version: "15.19" },
      newerThanServer: false,
    });
    expect(chooseRestoreClient(installed, { text: "14.1", major: 14 }, dumpedBy15)).toMatchObject({
      client: { version: "15.19" },
      newerThanServer: true,
    });
    expect(chooseRestoreClient(tools("15.19"), { text: "17.2", major: 17 }, dumpedBy15)).toMatchObject({
      client: { version: "15.19" },
      newerThanServer: false,
    });
    expect(chooseRestoreClient(installed, { text: "16.1", major: 16 }, { version: "17.6", major: 17 })).toMatchObject({
      client: { version: "17.6" },
      newerThanServer: true,
    });
    expect(() => chooseRestoreClient(tools("15.19"), { text: "17.2", major: 17 }, { version: "17.2", major: 17 })).toThrow(
      "postgresql: the backup was written by pg_dump 17.2; pg_restore 15.19 is the newest installed and cannot read it: install postgresql-client-17 or give --pg-bin-dir",
    );
  });
});

describe("the pg_dump that wrote a dump", () => {
  const url = inject("postgres").url;
  const dump = (format: string) => execFileSync("pg_dump", [`--format=${format}`, "--schema-only", `--dbname=${url}`]);
  const installed = /\(PostgreSQL\) (\d+\.\d+)/.exec(execFileSync("pg_dump", ["--version"]).toString())?.[1];

  it("is read from the custom and tar headers and the plain script", () => {
    expect(installed).toMatch(/^\d+\.\d+$/);
    const expected = { version: installed, major: majorOfVersion(installed as string) };
    expect(archiveDumpedBy(dump("custom").subarray(0, 2048))).toEqual(expected);
    expect(tarDumpedBy(dump("tar").subarray(0, 2048))).toEqual(expected);
    expect(scriptDumpedBy(dump("plain").subarray(0, 2048))).toEqual(expected);
    expect(archiveDumpedBy(dump("custom").subarray(0, 40))).toBeUndefined();
    expect(archiveDumpedBy(Buffer.from("not a dump"))).toBeUndefined();
  });
});

describe("how pg_dump compressed an archive", () => {
  const url = inject("postgres").url;
  const dump = (...args: string[]) => execFileSync("pg_dump", ["--format=custom", "--schema-only", ...args, `--dbname=${url}`]);

  it("is read from the header of pg_dump's archives (an int: gzip's level, before archive version 1.15)", () => {
    expect(readArchiveHeader(dump().subarray(0, 2048))?.compression).toBe("gzip");
    expect(readArchiveHeader(dump("--compress=0").subarray(0, 2048))?.compression).toBe("none");
    expect(readArchiveHeader(dump("--compress=3").subarray(0, 2048))?.compression).toBe("gzip");
    expect(readArchiveHeader(dump().subarray(0, 2048))?.dumpedBy?.version).toMatch(/^\d+\.\d+$/);
    expect(readArchiveHeader(dump().subarray(0, 13))).toBeUndefined();
    expect(readArchiveHeader(Buffer.from("not a dump"))).toBeUndefined();
  });

  it("is read from archive version 1.15's algorithm byte (pg_dump 16 and later)", () => {
    const int = (value: number) => Buffer.from([0, value & 255, (value >> 8) & 255, 0, 0]);
    const text = (value: string) => Buffer.concat([int(value.length), Buffer.from(value)]);
    const header = (algorithm: number) =>
      Buffer.concat([
        Buffer.from("PGDMP"),
        Buffer.from([1, 15, 0, 4, 8, 1, algorithm]),
        ...[0, 0, 0, 1, 0, 126, 0].map(int),
        text("shop"),
        text("16.4"),
        text("16.4"),
      ]);
    expect(readArchiveHeader(header(0))).toEqual({ compression: "none", dumpedBy: { version: "16.4", major: 16 } });
    expect(readArchiveHeader(header(1))?.compression).toBe("gzip");
    expect(readArchiveHeader(header(2))?.compression).toBe("lz4");
    expect(readArchiveHeader(header(3))?.compression).toBe("zstd");
    // An algorithm newer than this code: the version is still read, the compression is not claimed.
    expect(readArchiveHeader(header(9))).toEqual({ dumpedBy: { version: "16.4", major: 16 } });
  });
});

/** mulberry32: a small seeded PRNG, so a failing chunking can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}

describe("the settings filter", () => {
  const run = async (script: string, major: number, chunkSize = 7) => {
    const chunks: Buffer[] = [];
    const bytes = Buffer.from(script);
    for (let offset = 0; offset < bytes.length; offset += chunkSize) chunks.push(bytes.subarray(offset, offset + chunkSize));
    const dropped: string[] = [];
    const output = await buffer(Readable.from(chunks).pipe(settingsFilter(major, (line) => dropped.push(line))));
    return { output: output.toString(), dropped };
  };
  const prelude = [
    "--",
    "-- PostgreSQL database dump",
    "--",
    "\\restrict abc",
    "SET statement_timeout = 0;",
    "SET lock_timeout = 0;",
    "SET idle_in_transaction_session_timeout = 0;",
    "SET transaction_timeout = 0;",
    "SELECT pg_catalog.set_config('search_path', '', false);",
    "",
  ].join("\n");
  const body = [
    "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$",
    "SET transaction_timeout = 0;",
    "$$;",
    "COPY public.t (a) FROM stdin;",
    "SET transaction_timeout = 0;",
    `${"x".repeat(1000)}`,
    "\\.",
    "",
  ].join("\n");

  it("drops the settings an older server does not know from the prelude only, in any chunking", async () => {
    for (const chunkSize of [1, 7, 64, 100_000]) {
      const { output, dropped } = await run(prelude + body, 14, chunkSize);
      expect(output).toBe(prelude.replace("SET transaction_timeout = 0;\n", "") + body);
      expect(dropped).toEqual(["SET transaction_timeout = 0;"]);
    }
    expect((await run(prelude + body, 9.5)).dropped).toEqual([
      "SET idle_in_transaction_session_timeout = 0;",
      "SET transaction_timeout = 0;",
    ]);
  });

  it("starts a prelude again after \\connect (cluster scripts), and keeps a script without a final line break whole", async () => {
    const cluster = `${prelude}CREATE TABLE a ();\n\\connect other\n${prelude}CREATE TABLE b ();`;
    const { output, dropped } = await run(cluster, 16);
    expect(dropped).toHaveLength(2);
    expect(output).toBe(cluster.replaceAll("SET transaction_timeout = 0;\n", ""));
  });

  it("finds every \\connect and every prelude in any chunking, long lines and data rows included", async () => {
    const data = [
      "COPY public.t (a, b) FROM stdin;",
      "\\N\tstarts with a backslash",
      `${"y".repeat(700)}\\connect inside a long line`,
      "\\.",
      "",
    ].join("\n");
    const longComment = `-- ${"z".repeat(600)}`;
    const cluster = [
      `${prelude}${data}`,
      `\\connect other\n${longComment}\n${prelude}${data}`,
      `\\connect -reuse-previous=on "dbname='third'"\n${prelude}CREATE TABLE c ();`,
    ].join("");
    const expected = cluster.replaceAll("SET transaction_timeout = 0;\n", "");
    const random = prng(12);
    for (const chunkSize of [1, 2, 3, 8, 9, 10, 11, 64, 257, 100_000]) {
      const { output, dropped } = await run(cluster, 16, chunkSize);
      expect(output).toBe(expected);
      expect(dropped).toHaveLength(3);
    }
    for (let round = 0; round < 50; round += 1) {
      const bytes = Buffer.from(cluster);
      const chunks: Buffer[] = [];
      for (let offset = 0; offset < bytes.length; ) {
        const size = 1 + Math.floor(random() * 40);
        chunks.push(bytes.subarray(offset, offset + size));
        offset += size;
      }
      const output = await buffer(Readable.from(chunks).pipe(settingsFilter(16)));
      expect(output.toString()).toBe(expected);
    }
  });

  it("passes the chunks of the body on as they are, without copying them", async () => {
    const big = Buffer.from(`${prelude}CREATE TABLE t ();\n${"row\tdata\n".repeat(10_000)}`);
    // Cut inside the first row: the second chunk is all body.
    const cut = prelude.length + "CREATE TABLE t ();\nrow\t".length;
    const chunks = [big.subarray(0, cut), big.subarray(cut)];
    const passed: Buffer[] = [];
    const filter = settingsFilter(16);
    filter.on("data", (chunk: Buffer) => passed.push(chunk));
    await new Promise<void>((resolve, reject) => {
      filter.on("end", resolve).on("error", reject);
      for (const chunk of chunks) filter.write(chunk);
      filter.end();
    });
    expect(Buffer.concat(passed).toString()).toBe(big.toString().replace("SET transaction_timeout = 0;\n", ""));
    expect(passed.at(-1)?.buffer).toBe(chunks[1]?.buffer);
    expect(passed.at(-1)?.byteOffset).toBe(chunks[1]?.byteOffset);
  });

  it("passes everything on for a server that knows every setting", async () => {
    expect((await run(prelude + body, 17)).output).toBe(prelude + body);
  });
});
