import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isHoardError } from "../src/errors.ts";
import type { HoardEvent, Logger } from "../src/logger.ts";
import { findExecutable, requireExecutable, runTool, runToolWithInput, type ToolOptions, toolOutput } from "../src/process.ts";
import { isAlive } from "./helpers.ts";

const node = process.execPath;
let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "hoard-process-test-"));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** Options that run `script` with node as the "tool"; extra arguments reach the script as process.argv[1...]. */
function script(source: string, extra: Partial<ToolOptions> = {}, ...args: string[]): ToolOptions {
  return { label: "fake-tool", args: ["-e", source, ...args], ...extra };
}

async function exists(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}

async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

/** Reads a stream to its end or its error, recording what arrived and in which order. */
async function drain(stream: Readable): Promise<{ data: Buffer; error: unknown; ended: boolean }> {
  const chunks: Buffer[] = [];
  let ended = false;
  stream.on("end", () => {
    ended = true;
  });
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return { data: Buffer.concat(chunks), error: undefined, ended };
  } catch (error) {
    return { data: Buffer.concat(chunks), error, ended };
  }
}

/** Writes `total` bytes of 'a' to stdout with back-pressure, then runs `then` (JavaScript source). */
const writeBytes = (total: number, then: string) => `
  const chunk = Buffer.alloc(65536, 97);
  let left = ${total};
  function pump() {
    while (left > 0) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!process.stdout.write(piece)) return process.stdout.once("drain", pump);
    }
    ${then}
  }
  pump();
`;

describe("toolOutput", () => {
  it("emits every byte and ends only after the tool exited 0", async () => {
    const marker = join(directory, "exited-0");
    // Flush and close stdout first, then wait, then leave a marker and exit 0: the stream must not end
    // before the marker exists. (Closing before the flush would make the tool fail with EBADF.)
    const source = writeBytes(
      2 * 1024 * 1024 + 123,
      `process.stdout.write("", () => {
         require("node:fs").closeSync(1);
         setTimeout(() => { require("node:fs").writeFileSync(process.argv[1], "x"); process.exit(0); }, 400);
       });`,
    );
    const stream = toolOutput(node, script(source, {}, marker));
    let markerAtEnd: boolean | undefined;
    stream.on("end", () => {
      markerAtEnd = existsSync(marker);
    });
    const result = await drain(stream);
    expect(result.error).toBeUndefined();
    expect(result.ended).toBe(true);
    expect(result.data.length).toBe(2 * 1024 * 1024 + 123);
    expect(result.data.every((byte) => byte === 97)).toBe(true);
    expect(markerAtEnd).toBe(true);
  });

  it("fails with TOOL_FAILED and the last stderr line when the tool exits non-zero after writing data", async () => {
    const source = writeBytes(
      300_000,
      `process.stderr.write("pg_dump: warning: something harmless\\npg_dump: error: connection to server lost\\n\\n");
       setTimeout(() => process.exit(3), 50);`,
    );
    const result = await drain(toolOutput(node, script(source, { label: "pg_dump" })));
    expect(result.ended).toBe(false);
    expect(result.data.length).toBe(300_000);
    expect(isHoardError(result.error, "TOOL_FAILED")).toBe(true);
    const error = result.error as Error & { detail?: string };
    expect(error.message).toBe("pg_dump failed (exit code 3): pg_dump: error: connection to server lost");
    expect(error.detail).toContain("warning: something harmless");
  });

  it("fails even when stdout was closed before the failing exit", async () => {
    const source = writeBytes(
      100_000,
      `process.stdout.write("", () => {
         require("node:fs").closeSync(1);
         setTimeout(() => { process.stderr.write("dump died late\\n"); process.exit(1); }, 300);
       });`,
    );
    const result = await drain(toolOutput(node, script(source)));
    expect(result.data.length).toBe(100_000);
    expect(result.ended).toBe(false);
    expect(isHoardError(result.error, "TOOL_FAILED")).toBe(true);
    expect((result.error as Error).message).toContain("dump died late");
  });

  it("uses explainFailure to write a better message, given the stderr tail", async () => {
    const seen: string[] = [];
    const options = script(
      `process.stderr.write("psql: error: connection failed\\nFATAL:  password authentication failed for user \\"app\\"\\n"); process.exit(2);`,
      {
        label: "psql",
        explainFailure: (stderr) => {
          seen.push(stderr);
          return /password authentication failed/.test(stderr) ? "the password in the database URL is wrong" : undefined;
        },
      },
    );
    const result = await drain(toolOutput(node, options));
    expect(isHoardError(result.error, "TOOL_FAILED")).toBe(true);
    expect((result.error as Error).message).toBe("psql failed (exit code 2): the password in the database URL is wrong");
    expect(seen[0]).toContain("password authentication failed");
  });

  it("falls back to the last stderr line when explainFailure has nothing to say", async () => {
    const options = script(`process.stderr.write("first\\nthe real reason\\n"); process.exit(4);`, { explainFailure: () => undefined });
    const result = await drain(toolOutput(node, options));
    expect((result.error as Error).message).toBe("fake-tool failed (exit code 4): the real reason");
  });

  it("says how the tool died when a signal killed it and stderr is empty", async () => {
    const result = await drain(toolOutput(node, script(`process.kill(process.pid, "SIGTERM"); setTimeout(() => {}, 5000);`)));
    expect(isHoardError(result.error, "TOOL_FAILED")).toBe(true);
    expect((result.error as Error).message).toBe("fake-tool failed (killed by SIGTERM)");
  });

  it.each([
    ["an absolute path that does not exist", "/nonexistent/hoard-missing-tool"],
    ["a name that is not on PATH", "hoard-missing-tool-4c1d"],
  ])("fails with TOOL_NOT_FOUND for %s", async (_name, executable) => {
    const result = await drain(toolOutput(executable, { label: "pg_dump", args: [] }));
    expect(isHoardError(result.error, "TOOL_NOT_FOUND")).toBe(true);
    expect((result.error as Error).message).toContain("pg_dump not found");
  });

  it("kills the tool when the output stream is destroyed", async () => {
    const pidFile = join(directory, "destroy.pid");
    const source = `
      require("node:fs").writeFileSync(process.argv[1], String(process.pid));
      const chunk = Buffer.alloc(16384, 98);
      setInterval(() => process.stdout.write(chunk), 2);
    `;
    const stream = toolOutput(node, script(source, {}, pidFile));
    await new Promise<void>((resolve) => stream.once("data", () => resolve()));
    await waitUntil(() => exists(pidFile), 5000, "the pid file");
    const pid = Number(await readFile(pidFile, "utf8"));
    expect(isAlive(pid)).toBe(true);
    stream.destroy();
    await waitUntil(() => !isAlive(pid), 5000, `process ${pid} to die`);
    expect(isAlive(pid)).toBe(false);
  });

  it("applies back-pressure: a tool whose output is not read cannot run ahead", async () => {
    const marker = join(directory, "back-pressure-done");
    const total = 64 * 1024 * 1024;
    const stream = toolOutput(node, script(writeBytes(total, `require("node:fs").writeFileSync(process.argv[1], "x");`), {}, marker));
    await delay(700);
    // Nothing was read: the tool must be stuck on a full pipe, far from its end.
    expect(await exists(marker)).toBe(false);
    let size = 0;
    for await (const chunk of stream) size += (chunk as Buffer).length;
    expect(size).toBe(total);
    expect(await exists(marker)).toBe(true);
  });

  it("stops the tool with ABORTED when the signal fires", async () => {
    const pidFile = join(directory, "abort.pid");
    const controller = new AbortController();
    const source = `require("node:fs").writeFileSync(process.argv[1], String(process.pid)); setInterval(() => process.stdout.write("x"), 5);`;
    const stream = toolOutput(node, script(source, { signal: controller.signal }, pidFile));
    const result = drain(stream);
    await waitUntil(() => exists(pidFile), 5000, "the pid file");
    const pid = Number(await readFile(pidFile, "utf8"));
    controller.abort();
    const { error } = await result;
    expect(isHoardError(error, "ABORTED")).toBe(true);
    await waitUntil(() => !isAlive(pid), 5000, `process ${pid} to die`);
  });

  it("passes environment variables and the working directory to the tool", async () => {
    const result = await drain(
      toolOutput(
        node,
        script(`process.stdout.write(process.env.HOARD_TEST_SECRET + "|" + process.cwd() + "|" + process.argv.slice(1).join(","))`, {
          env: { HOARD_TEST_SECRET: "s3cret" },
          cwd: directory,
        }),
      ),
    );
    expect(result.data.toString()).toBe(`s3cret|${directory}|`);
  });

  it("reports stderr lines to the logger as debug events", async () => {
    const events: HoardEvent[] = [];
    const logger: Logger = { event: (event) => events.push(event) };
    await drain(toolOutput(node, script(`process.stderr.write("line one\\nline two\\n")`, { logger, label: "mongodump" })));
    const messages = events.flatMap((event) => (event.type === "log" && event.level === "debug" ? [event.message] : []));
    expect(messages).toEqual(["mongodump: line one", "mongodump: line two"]);
  });
});

/** A stream of `chunks` chunks of `size` random bytes, and the SHA-256 of all of them. */
function randomInput(chunks: number, size: number): { stream: Readable; sha256: string; length: number } {
  const parts = Array.from({ length: chunks }, () => randomBytes(size));
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return { stream: Readable.from(parts), sha256: hash.digest("hex"), length: chunks * size };
}

const hashStdin = `
  const hash = require("node:crypto").createHash("sha256");
  let length = 0;
  process.stdin.on("data", (chunk) => { hash.update(chunk); length += chunk.length; });
  process.stdin.on("end", () => { process.stderr.write("restored " + length + " bytes " + hash.digest("hex") + "\\n"); });
`;

describe("runToolWithInput", () => {
  it("finishes when the tool writes far more to stdout than a pipe holds (psql prints every SELECT's rows)", async () => {
    // Echoes each input chunk to stdout, as psql prints the result of every SELECT setval(...) in a
    // plain dump; an unread stdout pipe fills at 64 KiB and the tool then blocks forever.
    const echo = `
      let bytes = 0;
      process.stdin.on("data", (chunk) => { bytes += chunk.length; process.stdout.write(chunk); });
      process.stdin.on("end", () => process.stdout.write("", () => process.stderr.write("read " + bytes + "\\n")));
    `;
    const input = randomInput(64, 64 * 1024);
    const outcome = await Promise.race([
      runToolWithInput(node, script(echo), input.stream),
      delay(20_000).then(() => "still running after 20 s: its stdout was never read"),
    ]);
    expect(outcome).toBe(`read ${input.length}\n`);
  });

  it("feeds the input to stdin and returns the stderr tail", async () => {
    const input = randomInput(40, 100_000);
    const stderr = await runToolWithInput(node, script(hashStdin), input.stream);
    expect(stderr).toBe(`restored ${input.length} bytes ${input.sha256}\n`);
  });

  it("kills the tool before it sees end-of-input when the input fails midway", async () => {
    const started = join(directory, "input-started");
    const committed = join(directory, "input-committed");
    const source = `
      const fs = require("node:fs");
      process.stdin.once("data", () => fs.writeFileSync(process.argv[1], "x"));
      process.stdin.resume();
      process.stdin.on("end", () => fs.writeFileSync(process.argv[2], "committed at EOF"));
    `;
    let sent = 0;
    const failure = new Error("the download broke");
    const input = new Readable({
      read() {
        if (sent >= 1024 * 1024) {
          // Wait until the tool has really read something, then fail.
          void waitUntil(() => exists(started), 5000, "the tool to read").then(() => this.destroy(failure));
          return;
        }
        sent += 256 * 1024;
        this.push(randomBytes(256 * 1024));
      },
    });
    const outcome = await runToolWithInput(node, script(source, {}, started, committed), input).then(
      () => new Error("resolved"),
      (error: unknown) => error,
    );
    expect(outcome).toBe(failure);
    expect(await exists(started)).toBe(true);
    await delay(300);
    expect(await exists(committed)).toBe(false);
  });

  it("fails with TOOL_FAILED and the stderr line when the tool exits non-zero", async () => {
    const input = new Readable({
      read() {
        this.push(Buffer.alloc(65536));
      },
    });
    const source = `process.stdin.once("data", () => { process.stderr.write("mongorestore: error: bad archive\\n"); process.exit(5); });`;
    const error = await runToolWithInput(node, script(source, { label: "mongorestore" }), input).catch((caught: unknown) => caught);
    expect(isHoardError(error, "TOOL_FAILED")).toBe(true);
    expect((error as Error).message).toBe("mongorestore failed (exit code 5): mongorestore: error: bad archive");
    expect(input.destroyed).toBe(true);
  });

  it("resolves and stops reading when the tool exits 0 without reading everything", async () => {
    let produced = 0;
    const input = new Readable({
      read() {
        produced += 1;
        setTimeout(() => this.push(Buffer.alloc(65536)), 1);
      },
    });
    const stderr = await runToolWithInput(node, script(`process.stderr.write("done early\\n"); process.exit(0);`), input);
    expect(stderr).toBe("done early\n");
    expect(input.destroyed).toBe(true);
    const producedAtEnd = produced;
    await delay(100);
    expect(produced).toBe(producedAtEnd);
  });

  it("fails with TOOL_NOT_FOUND for a missing executable", async () => {
    const error = await runToolWithInput("/nonexistent/psql", { label: "psql", args: [] }, Readable.from([Buffer.from("x")])).catch(
      (caught: unknown) => caught,
    );
    expect(isHoardError(error, "TOOL_NOT_FOUND")).toBe(true);
  });
});

describe("runTool", () => {
  it("returns stdout as text", async () => {
    expect(await runTool(node, script(`process.stdout.write("pg_dump (PostgreSQL) 17.2\\n")`))).toBe("pg_dump (PostgreSQL) 17.2\n");
  });

  it("fails with TOOL_FAILED on a non-zero exit", async () => {
    const error = await runTool(node, script(`console.error("nope"); process.exit(1)`)).catch((caught: unknown) => caught);
    expect(isHoardError(error, "TOOL_FAILED")).toBe(true);
    expect((error as Error).message).toContain("nope");
  });
});

describe("findExecutable", () => {
  let first: string;
  let second: string;

  beforeAll(async () => {
    first = join(directory, "path-first");
    second = join(directory, "path-second");
    await mkdir(first);
    await mkdir(second);
    await writeFile(join(first, "hoard-tool"), "#!/bin/sh\necho first\n", { mode: 0o644 }); // not executable
    await writeFile(join(second, "hoard-tool"), "#!/bin/sh\necho second\n");
    await chmod(join(second, "hoard-tool"), 0o755);
    await mkdir(join(first, "hoard-dir-tool")); // a directory named like the tool
    await writeFile(join(second, "hoard-dir-tool"), "#!/bin/sh\n", { mode: 0o755 });
    await chmod(join(second, "hoard-dir-tool"), 0o755);
  });

  it("finds a program on PATH", async () => {
    const nodeDirectory = dirname(node);
    expect(await findExecutable(["node"], nodeDirectory)).toBe(join(nodeDirectory, "node"));
  });

  it("uses the process PATH by default", async () => {
    expect(await findExecutable(["sh"])).toMatch(/\/sh$/);
  });

  it("returns the first of several names that exists", async () => {
    expect(await findExecutable(["hoard-missing", "hoard-tool"], second)).toBe(join(second, "hoard-tool"));
    expect(await findExecutable(["hoard-tool", "node"], `${second}${delimiter}${dirname(node)}`)).toBe(join(second, "hoard-tool"));
  });

  it("returns undefined when nothing is found", async () => {
    expect(await findExecutable(["hoard-missing-1", "hoard-missing-2"], `${first}${delimiter}${second}`)).toBeUndefined();
    expect(await findExecutable(["node"], "")).toBeUndefined();
  });

  it("skips files that are not executable and empty PATH entries", async () => {
    expect(await findExecutable(["hoard-tool"], `${delimiter}${first}${delimiter}${delimiter}${second}`)).toBe(join(second, "hoard-tool"));
    expect(await findExecutable(["hoard-tool"], first)).toBeUndefined();
  });

  it("skips directories that carry the tool's name", async () => {
    expect(await findExecutable(["hoard-dir-tool"], `${first}${delimiter}${second}`)).toBe(join(second, "hoard-dir-tool"));
    expect(await findExecutable(["hoard-dir-tool"], first)).toBeUndefined();
  });

  it("checks paths with a slash directly, ignoring PATH", async () => {
    expect(await findExecutable([node], "")).toBe(node);
    expect(await findExecutable([join(first, "hoard-tool")], second)).toBeUndefined();
    expect(await findExecutable(["/nonexistent/tool"], dirname(node))).toBeUndefined();
  });
});

describe("requireExecutable", () => {
  it("returns the path of a program that exists", async () => {
    expect(await requireExecutable(["hoard-missing", "sh"], "install a shell")).toMatch(/\/sh$/);
  });

  it("fails with TOOL_NOT_FOUND naming the tools and the hint", async () => {
    const error = await requireExecutable(["pg_dump-x", "pg_dump-y"], "install the PostgreSQL client").catch((caught: unknown) => caught);
    expect(isHoardError(error, "TOOL_NOT_FOUND")).toBe(true);
    expect((error as Error).message).toBe("pg_dump-x or pg_dump-y not found on PATH: install the PostgreSQL client");
  });
});

describe("toolOutput before anyone reads it", () => {
  it("keeps a failure that happens before a consumer attaches, without crashing the process", async () => {
    const { finished } = await import("node:stream/promises");
    const output = toolOutput(process.execPath, {
      label: "early-failure",
      args: ["-e", "process.stderr.write('gone at once\\n'); process.exit(3)"],
    });
    // Let the tool exit and the stream fail while nothing listens, as when a pipeline is still being set up.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(output.destroyed).toBe(true);
    const error = await finished(output).catch((caught: unknown) => caught);
    expect(isHoardError(error, "TOOL_FAILED")).toBe(true);
    expect((error as Error).message).toBe("early-failure failed (exit code 3): gone at once");
  });
});
