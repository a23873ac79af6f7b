import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HoardError, isHoardError } from "../src/errors.ts";
import {
  checkDumpOutput,
  connectTimeoutMsOf,
  connectTimeoutSecondsOf,
  type DumpCheck,
  decodeUrlPart,
  defineSettings,
  describeFound,
  locateTool,
  noAnswerError,
  readDriverSettings,
  removeWhenClosed,
  runTool,
  secondsText,
  targetNotEmpty,
  targetNotEmptyError,
  writePrivateFile,
} from "../src/plugin/index.ts";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "hoard-driver-kit-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function failure(stream: Readable): Promise<HoardError> {
  try {
    await drain(stream);
  } catch (error) {
    return error as HoardError;
  }
  throw new Error("expected the stream to fail");
}

describe("writePrivateFile", () => {
  it("writes a 0600 file in a fresh 0700 directory under the parent, and removes both, more than once", async () => {
    const file = await writePrivateFile(work, "tool-", "client.cnf", "[client]\npassword=secret\n");
    expect(dirname(dirname(file.path))).toBe(work);
    expect(await readFile(file.path, "utf8")).toBe("[client]\npassword=secret\n");
    expect((await stat(file.path)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(file.path))).mode & 0o777).toBe(0o700);
    await Promise.all([file.remove(), file.remove()]);
    await file.remove();
    expect(existsSync(dirname(file.path))).toBe(false);
  });

  it("gives every file a directory of its own", async () => {
    const [a, b] = await Promise.all([writePrivateFile(work, "same", "f", "a"), writePrivateFile(work, "same", "f", "b")]);
    expect(dirname(a.path)).not.toBe(dirname(b.path));
    expect(await readFile(a.path, "utf8")).toBe("a");
    await Promise.all([a.remove(), b.remove()]);
  });

  it("leaves no directory behind when the file cannot be written", async () => {
    const missing = join(work, "no-such-parent");
    await expect(writePrivateFile(missing, "tool-", "f", "x")).rejects.toMatchObject({ code: "ENOENT" });
    expect(existsSync(missing)).toBe(false);
  });
});

describe("removeWhenClosed", () => {
  it("removes the file when the stream closes, and warns instead of throwing when it cannot", async () => {
    const file = await writePrivateFile(work, "tool-", "f", "x");
    const stream = new PassThrough();
    removeWhenClosed(stream, file, undefined, "the file");
    expect(existsSync(file.path)).toBe(true);
    stream.destroy();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(existsSync(dirname(file.path))).toBe(false);
    const messages: string[] = [];
    const other = new PassThrough();
    removeWhenClosed(
      other,
      { remove: () => Promise.reject(new Error("busy")) },
      {
        event: (event) => {
          if (event.type === "log") messages.push(`${event.level}: ${event.message}`);
        },
      },
      "the option file",
    );
    other.destroy();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(messages).toEqual(["warn: could not remove the option file: busy"]);
  });
});

const magicCheck: DumpCheck = {
  tool: "pg_dump",
  format: "custom-format dump",
  redirects: "--file",
  length: 5,
  accepts: (head) => head.subarray(0, 5).toString("latin1") === "PGDMP",
};

describe("checkDumpOutput", () => {
  it("passes a dump that starts right, whole, however its first bytes are split", async () => {
    const bytes = Buffer.from("PGDMP and the rest of the dump");
    const pieces = [...bytes.subarray(0, 7)].map((byte) => Buffer.from([byte]));
    expect((await drain(checkDumpOutput(Readable.from([...pieces, bytes.subarray(7)]), magicCheck))).equals(bytes)).toBe(true);
    expect((await drain(checkDumpOutput(Readable.from([bytes]), magicCheck))).equals(bytes)).toBe(true);
  });

  it("fails with TOOL_FAILED saying what the tool should have written and which option may have redirected it", async () => {
    for (const chunks of [[], [Buffer.from("PGD")], [Buffer.from("-- PostgreSQL database dump\n")]]) {
      const error = await failure(checkDumpOutput(Readable.from(chunks), magicCheck));
      expect(isHoardError(error, "TOOL_FAILED")).toBe(true);
      expect(error.message).toBe("pg_dump produced no custom-format dump on its output (does a --dump-option redirect it, e.g. --file?)");
    }
  });

  it("passes nothing on before the check", async () => {
    const source = new PassThrough();
    const checked = checkDumpOutput(source, magicCheck);
    const seen: Buffer[] = [];
    checked.on("data", (chunk: Buffer) => seen.push(chunk));
    source.write(Buffer.from("PGD"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([]);
    source.end(Buffer.from("MP"));
    await finished(checked);
    expect(Buffer.concat(seen).toString()).toBe("PGDMP");
  });

  it("puts the plugin and the reason in the message when given", async () => {
    const check: DumpCheck = { ...magicCheck, plugin: "mongodb", explain: (head) => `only ${head.length} byte(s)` };
    const error = await failure(checkDumpOutput(Readable.from([Buffer.from("PG")]), check));
    expect(error.message).toBe(
      "mongodb: pg_dump produced no custom-format dump on its output (only 2 byte(s)); does a --dump-option redirect it, e.g. --file?",
    );
  });

  it("checks the end when asked, keeping only the last bytes", async () => {
    const check: DumpCheck = {
      ...magicCheck,
      end: {
        length: 8,
        check: (tail) => (tail.toString().endsWith("-- done\n") ? undefined : new HoardError("TOOL_FAILED", "incomplete")),
      },
    };
    const whole = Buffer.concat([Buffer.from("PGDMP"), Buffer.alloc(100_000, 0x41), Buffer.from("-- done\n")]);
    expect((await drain(checkDumpOutput(Readable.from([whole]), check))).equals(whole)).toBe(true);
    const cut = await failure(checkDumpOutput(Readable.from([whole.subarray(0, -3)]), check));
    expect(cut.message).toBe("incomplete");
  });

  it("fails with the source's error, mapped, and destroys the source when destroyed", async () => {
    const source = new PassThrough();
    const checked = checkDumpOutput(source, magicCheck, (error) => new HoardError("UNREACHABLE", `mapped: ${(error as Error).message}`));
    source.write(Buffer.from("PGDMP"));
    source.destroy(new Error("tool failed"));
    const error = await failure(checked);
    expect(error.message).toBe("mapped: tool failed");
    const other = new PassThrough();
    checkDumpOutput(other, magicCheck).destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(other.destroyed).toBe(true);
  });

  it("a refusal before anyone reads does not crash the process: the stream holds the error", async () => {
    const checked = checkDumpOutput(Readable.from([Buffer.from("not a dump")]), magicCheck);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(checked.errored).toMatchObject({ code: "TOOL_FAILED" });
  });
});

describe("messages", () => {
  it("connect timeouts: a positive number of milliseconds, the default when unset, whole seconds with a minimum", () => {
    expect(connectTimeoutMsOf("x", undefined)).toBe(15_000);
    expect(connectTimeoutMsOf("x", 1500)).toBe(1500);
    expect(connectTimeoutSecondsOf("x", 1500)).toBe(2);
    expect(connectTimeoutSecondsOf("x", 100)).toBe(1);
    expect(connectTimeoutSecondsOf("x", 100, 2)).toBe(2);
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => connectTimeoutMsOf("postgresql", bad)).toThrow(
        `postgresql: connectTimeoutMs must be a positive number of milliseconds, not ${bad}`,
      );
    }
  });

  it("no answer: UNREACHABLE naming the address and the timeout, keeping the tool's stderr", () => {
    const cause = new HoardError("TOOL_FAILED", "psql failed", { detail: "timeout expired" });
    const error = noAnswerError("postgresql", "10.0.0.1:5432", 2000, cause);
    expect(isHoardError(error, "UNREACHABLE")).toBe(true);
    expect(error.message).toBe("postgresql: no answer from 10.0.0.1:5432 within 2 s");
    expect(error.detail).toBe("timeout expired");
    expect(error.cause).toBe(cause);
    expect(secondsText(1500)).toBe("1.5 s");
  });

  it("bad percent-encoding names the part and never the text", () => {
    expect(decodeUrlPart("mariadb", "p%40ss", "password")).toBe("p@ss");
    const error = (() => {
      try {
        decodeUrlPart("mariadb", "s3cr%zzet", "password");
      } catch (thrown) {
        return thrown as HoardError;
      }
      throw new Error("expected a failure");
    })();
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
    expect(error.message).toBe("mariadb: the password in the database URL is badly percent-encoded: write % as %25");
  });

  it("not empty: counts per kind, a few names, and the way out", () => {
    const found = [
      { kind: "table", count: 3, examples: ["customers", "orders"] },
      { kind: "package body", plural: "package bodies", count: 2, examples: ["p"] },
      { kind: "view", count: 1, examples: [] },
    ];
    expect(describeFound(found)).toBe("3 tables, 2 package bodies, 1 view, e.g. customers, orders");
    expect(describeFound([{ kind: "collection", count: 1, examples: ["notes"] }], { examples: 1, nameTheOnlyOne: true })).toBe(
      "1 collection: notes",
    );
    expect(describeFound([{ kind: "collection", count: 2, examples: ["a", "b"] }], { examples: 1, nameTheOnlyOne: true })).toBe(
      "2 collections, e.g. a",
    );
    const error = targetNotEmpty("mariadb", "shop", describeFound(found.slice(0, 1)));
    expect(isHoardError(error, "TARGET_NOT_EMPTY")).toBe(true);
    expect(error.message).toBe("mariadb: shop is not empty (3 tables, e.g. customers, orders); use --replace to restore over it");
    expect(targetNotEmpty("mongodb", "a (1 collection: x), b (2 collections, e.g. y)", undefined, true).message).toBe(
      "mongodb: a (1 collection: x), b (2 collections, e.g. y) are not empty; use --replace to restore over them",
    );
    expect(targetNotEmptyError("postgresql", "the server is not empty for a cluster dump (1 other database, e.g. x)").message).toBe(
      "postgresql: the server is not empty for a cluster dump (1 other database, e.g. x); use --replace to restore over it",
    );
  });
});

describe("readDriverSettings", () => {
  const declared = defineSettings("demo", "Demo", [
    { name: "demoEngine", kind: "choice", choices: ["a", "b"], default: "a", help: "which" },
  ]);

  it("reads the common settings and the declared ones, text or typed", () => {
    const logger = { event: () => {} };
    const { common, values } = readDriverSettings(declared, {
      dumpOptions: ["--x"],
      restoreOptions: ["--y"],
      logger,
      connectTimeoutMs: "30s" as unknown as number,
      demoEngine: "B",
      unknownKey: "ignored",
    });
    expect(common).toEqual({ dumpOptions: ["--x"], restoreOptions: ["--y"], logger, connectTimeoutMs: 30_000 });
    expect(values).toEqual({ demoEngine: "b" });
    expect(readDriverSettings(declared, { connectTimeoutMs: 2500 }).common.connectTimeoutMs).toBe(2500);
  });

  it("leaves an unset connect timeout unset, so the driver's default applies, and fills declared defaults", () => {
    const { common, values } = readDriverSettings(declared, {});
    expect(common).not.toHaveProperty("connectTimeoutMs");
    expect(values).toEqual({ demoEngine: "a" });
  });

  it("refuses bad values naming the flag", () => {
    expect(() => readDriverSettings(declared, { demoEngine: "c" })).toThrow('invalid --demo-engine: "c" is not one of a, b');
    expect(() => readDriverSettings(declared, { connectTimeoutMs: "soon" as unknown as number })).toThrow(/invalid --timeout/);
  });
});

describe("onStderrLine", () => {
  it("hands over whole lines of stderr, however they were split into chunks", async () => {
    const lines: string[] = [];
    const script = "process.stderr.write('-- Conn'); setTimeout(() => process.stderr.write('ecting\\n-- Retrieving\\r\\n\\nlast'), 50)";
    await runTool(process.execPath, { label: "node", args: ["-e", script], onStderrLine: (line) => lines.push(line) });
    expect(lines).toEqual(["-- Connecting", "-- Retrieving", "last"]);
  });
});

describe("locateTool", () => {
  it("finds the configured program, else the first of the names on PATH", async () => {
    expect(await locateTool("demo", { configured: process.execPath, names: ["no-such-program"], hint: "install it" })).toBe(
      process.execPath,
    );
    expect(await locateTool("demo", { names: ["hoard-no-such-program", "node"], hint: "install it" })).toMatch(/node$/);
  });

  it("TOOL_NOT_FOUND says what to install, and which option names a configured program", async () => {
    await expect(
      locateTool("demo", { names: ["hoard-no-a", "hoard-no-b"], hint: "install demo-tools", option: "dumpExecutable" }),
    ).rejects.toMatchObject({
      code: "TOOL_NOT_FOUND",
      message: "hoard-no-a or hoard-no-b not found on PATH: install demo-tools, or set dumpExecutable",
    });
    const missing = join(work, "missing-program");
    await expect(
      locateTool("demo", { configured: missing, names: ["x"], hint: "install demo-tools", option: "dumpExecutable" }),
    ).rejects.toMatchObject({
      code: "TOOL_NOT_FOUND",
      message: `demo: dumpExecutable ${missing} is not an executable program: install demo-tools`,
    });
  });
});
