import { spawn } from "node:child_process";
import { chmod, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { isHoardError } from "../src/errors.ts";
import { createLocalStorage } from "../src/storage/local.ts";
import type { Storage } from "../src/storage.ts";
import { filesUnder, freshDirectories } from "./helpers.ts";

const freshDirectory = freshDirectories("faults");

async function keysOf(storage: Storage, prefix?: string, signal?: AbortSignal): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storage.list(prefix, { signal })) keys.push(object.key);
  return keys.sort();
}

async function textOf(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

const body = (text: string) => Readable.from([Buffer.from(text)]);

describe("local storage: no overwrite", () => {
  it("refuses to upload over an existing file, keeps its bytes and removes its own temporary file", async () => {
    const directory = await freshDirectory("overwrite");
    const storage = createLocalStorage({ directory });
    await storage.upload("db/backup-20260101000000.sql.gz", body("original"));
    const error = await caught(storage.upload("db/backup-20260101000000.sql.gz", body("replacement")));
    expect(isHoardError(error, "ALREADY_EXISTS")).toBe(true);
    expect((error as Error).message).toBe("local storage: db/backup-20260101000000.sql.gz already exists; not overwriting it");
    expect(await readFile(join(directory, "db", "backup-20260101000000.sql.gz"), "utf8")).toBe("original");
    expect(await filesUnder(directory)).toEqual([join("db", "backup-20260101000000.sql.gz")]);
  });

  it("refuses to copy onto an existing file and removes its temporary file", async () => {
    const directory = await freshDirectory("copy-onto");
    const storage = createLocalStorage({ directory });
    await storage.upload("a.sql", body("a"));
    await storage.upload("b.sql", body("b"));
    const error = await caught(storage.copy("a.sql", "b.sql"));
    expect(isHoardError(error, "ALREADY_EXISTS")).toBe(true);
    expect((error as Error).message).toBe("local storage: b.sql already exists; not overwriting it");
    expect(await readFile(join(directory, "b.sql"), "utf8")).toBe("b");
    expect(await filesUnder(directory)).toEqual(["a.sql", "b.sql"]);
  });

  it("copies into a new key, private to the owner, with no temporary file left", async () => {
    const directory = await freshDirectory("copy-mode");
    const storage = createLocalStorage({ directory });
    await storage.upload("a.sql", body("a"));
    await storage.copy("a.sql", "copy/a.sql");
    expect(await textOf(await storage.download("copy/a.sql"))).toBe("a");
    expect((await stat(join(directory, "copy", "a.sql"))).mode & 0o777).toBe(0o600);
    expect(await filesUnder(directory)).toEqual(["a.sql", join("copy", "a.sql")]);
  });
});

describe("local storage: signals", () => {
  it("stops a listing aborted midway with ABORTED", async () => {
    const directory = await freshDirectory("abort-list");
    const storage = createLocalStorage({ directory });
    for (let index = 0; index < 20; index += 1) await storage.upload(`many/key-${index}`, body("x"));
    const controller = new AbortController();
    const seen: string[] = [];
    const error = await caught(
      (async () => {
        for await (const object of storage.list("many/", { signal: controller.signal })) {
          seen.push(object.key);
          controller.abort();
        }
      })(),
    );
    expect(isHoardError(error, "ABORTED"), String(error)).toBe(true);
    expect(seen).toHaveLength(1);
  });

  it("does not read the body of an upload refused before it starts, and destroys it", async () => {
    const directory = await freshDirectory("abort-upload");
    const storage = createLocalStorage({ directory });
    const source = body("never read");
    const error = await caught(storage.upload("x.sql", source, { signal: AbortSignal.abort() }));
    expect(isHoardError(error, "ABORTED")).toBe(true);
    expect(source.destroyed).toBe(true);
    expect(await filesUnder(directory)).toEqual([]);
  });
});

describe("local storage: odd storage paths", () => {
  it("says the path is under a file, not that it does not exist", async () => {
    const parent = await freshDirectory("under-file");
    const file = join(parent, "file");
    await writeFile(file, "I am a file");
    const storage = createLocalStorage({ directory: join(file, "backups") });
    const expected = `local storage: ${file} is a file, not a directory`;
    const attempts: Array<[string, () => Promise<unknown>]> = [
      ["list", () => keysOf(storage)],
      ["upload", () => storage.upload("backup-20260101000000.sql.gz", body("x"))],
      ["download", () => storage.download("backup-20260101000000.sql.gz")],
      ["exists", () => storage.exists("backup-20260101000000.sql.gz")],
      ["stat", () => storage.stat("backup-20260101000000.sql.gz")],
    ];
    for (const [name, attempt] of attempts) {
      const error = await caught(attempt());
      expect(isHoardError(error, "INVALID_ARGUMENT"), `${name}: ${String(error)}`).toBe(true);
      expect((error as Error).message, name).toBe(expected);
    }
  });

  it("fails a listing of a path that is a file with INVALID_ARGUMENT instead of finding no backups", async () => {
    const parent = await freshDirectory("is-file");
    const file = join(parent, "backup-20260101000000.sql.gz");
    await writeFile(file, "a backup given where its folder was meant");
    const storage = createLocalStorage({ directory: file });
    const error = await caught(keysOf(storage));
    expect(isHoardError(error, "INVALID_ARGUMENT"), String(error)).toBe(true);
    expect((error as Error).message).toBe(`local storage: ${file} is a file, not a directory`);
  });

  it("says the path is a broken symbolic link", async () => {
    const parent = await freshDirectory("dangling");
    const link = join(parent, "backups");
    await symlink(join(parent, "unmounted-disk"), link);
    for (const directory of [link, join(link, "inner")]) {
      const storage = createLocalStorage({ directory });
      const attempts: Array<[string, () => Promise<unknown>]> = [
        ["list", () => keysOf(storage)],
        ["upload", () => storage.upload("backup-20260101000000.sql.gz", body("x"))],
        ["download", () => storage.download("backup-20260101000000.sql.gz")],
        ["exists", () => storage.exists("backup-20260101000000.sql.gz")],
      ];
      for (const [name, attempt] of attempts) {
        const error = await caught(attempt());
        expect(isHoardError(error, "INVALID_ARGUMENT"), `${name} in ${directory}: ${String(error)}`).toBe(true);
        expect((error as Error).message, name).toBe(
          `local storage: ${link} is a broken symbolic link (to ${join(parent, "unmounted-disk")})`,
        );
      }
    }
    // Nothing was created through the link.
    expect(await readdir(parent)).toEqual(["backups"]);
  });

  it("still treats a missing directory as empty, and a file in the way of a key as a missing key", async () => {
    const parent = await freshDirectory("fine");
    const storage = createLocalStorage({ directory: join(parent, "not", "yet") });
    expect(await keysOf(storage)).toEqual([]);
    expect(await storage.exists("x")).toBe(false);
    await storage.upload("file.txt", body("x"));
    expect(await storage.exists("file.txt/inner")).toBe(false);
    expect(await keysOf(storage, "file.txt/")).toEqual([]);
    const error = await caught(storage.upload("file.txt/inner", body("y")));
    expect(isHoardError(error, "ALREADY_EXISTS"), String(error)).toBe(true);
    expect((error as Error).message).toContain("file.txt/inner");
  });

  it("fails a download of a key that names a folder with NOT_FOUND", async () => {
    const directory = await freshDirectory("folder-key");
    const storage = createLocalStorage({ directory });
    await storage.upload("folder/backup-20260101000000.sql.gz", body("x"));
    const error = await caught(storage.download("folder"));
    expect(isHoardError(error, "NOT_FOUND"), String(error)).toBe(true);
  });
});

describe("local storage: listing reads only the prefix's folder", () => {
  it("lists the entries of the prefix's folder that start with its name part, and what is below them", async () => {
    const directory = await freshDirectory("narrow");
    const storage = createLocalStorage({ directory });
    for (const key of ["a/b-1", "a/b-x/deep/2", "a/bb-3", "a/c/b-4", "b-5", "x/a/b-6"]) await storage.upload(key, body(key));
    expect(await keysOf(storage, "a/b-")).toEqual(["a/b-1", "a/b-x/deep/2"]);
    expect(await keysOf(storage, "a/b")).toEqual(["a/b-1", "a/b-x/deep/2", "a/bb-3"]);
    expect(await keysOf(storage, "a/")).toEqual(["a/b-1", "a/b-x/deep/2", "a/bb-3", "a/c/b-4"]);
    expect(await keysOf(storage, "a/c/")).toEqual(["a/c/b-4"]);
    expect(await keysOf(storage, "nothing/here-")).toEqual([]);
    expect(await keysOf(storage)).toHaveLength(6);
  });

  it("refuses a prefix whose folder part would leave the storage", async () => {
    const directory = await freshDirectory("prefix-escape");
    const storage = createLocalStorage({ directory: join(directory, "inner") });
    await writeFile(join(directory, "outside-1"), "x");
    for (const prefix of ["../outside", "a/../../outside", "a//b"]) {
      const error = await caught(keysOf(storage, prefix));
      expect(isHoardError(error, "INVALID_ARGUMENT"), `${prefix}: ${String(error)}`).toBe(true);
    }
  });

  /**
   * Runs `code` in a separate Node.js process as a user that permissions apply to: root reads
   * any directory whatever its mode, so as root the child runs as nobody.
   */
  async function asUnprivileged(code: string): Promise<unknown> {
    const directory = await freshDirectory("child");
    await chmod(directory, 0o755);
    const script = join(directory, "child.mts");
    const local = fileURLToPath(new URL("../src/storage/local.ts", import.meta.url));
    await writeFile(script, `import { createLocalStorage } from ${JSON.stringify(local)};\n${code}\n`);
    await chmod(script, 0o644);
    const tsx = createRequire(import.meta.url).resolve("tsx");
    const identity = process.getuid?.() === 0 ? { uid: 65_534, gid: 65_534 } : {};
    const child = spawn(process.execPath, ["--import", tsx, script], { ...identity, cwd: directory, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const status = await new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", resolve);
    });
    expect(status, stderr).toBe(0);
    return JSON.parse(stdout);
  }

  it("skips a sub-directory that cannot be read, and fails with ACCESS_DENIED only when the prefix's own folder cannot be read", async () => {
    const directory = await freshDirectory("unreadable");
    await chmod(directory, 0o755);
    const storage = createLocalStorage({ directory });
    for (const key of ["db/backup-20260101000000.sql.gz", "db/backup-20260102000000.sql.gz", "locked/secret.sql.gz", "top.sql"]) {
      await storage.upload(key, body(key));
    }
    await chmod(join(directory, "db"), 0o755);
    await chmod(join(directory, "locked"), 0o000);
    const result = await asUnprivileged(`
      const storage = createLocalStorage({ directory: ${JSON.stringify(directory)} });
      const keys = async (prefix) => {
        try {
          const found = [];
          for await (const object of storage.list(prefix)) found.push(object.key);
          return found.sort();
        } catch (error) {
          return { code: error.code, message: error.message };
        }
      };
      console.log(JSON.stringify({ db: await keys("db/backup-"), all: await keys(""), locked: await keys("locked/") }));
    `);
    expect(result).toEqual({
      db: ["db/backup-20260101000000.sql.gz", "db/backup-20260102000000.sql.gz"],
      all: ["db/backup-20260101000000.sql.gz", "db/backup-20260102000000.sql.gz", "top.sql"],
      locked: {
        code: "ACCESS_DENIED",
        message: `local storage: cannot read the directory ${join(directory, "locked")}: permission denied`,
      },
    });
  });
});

describe("local storage: sweep", () => {
  const day = 86_400_000;

  async function partial(directory: string, folder: string, name: string, ageMs: number): Promise<string> {
    const path = join(directory, folder, `.hoard-partial-0123456789ab-${name}`);
    await mkdir(join(directory, folder), { recursive: true });
    await writeFile(path, "half a backup");
    const time = new Date(Date.now() - ageMs);
    await utimes(path, time, time);
    return path;
  }

  it("removes stale temporary files under the prefix, keeps fresh ones and everything else", async () => {
    const directory = await freshDirectory("sweep");
    const storage = createLocalStorage({ directory });
    await storage.upload("db/backup-20260101000000.sql.gz", body("a real backup"));
    await partial(directory, "db", "backup-20260102000000.sql.gz", 3 * day);
    await partial(directory, "db/sub", "backup-20260103000000.sql.gz", 2 * day);
    await partial(directory, "db", "backup-20260104000000.sql.gz", 60_000); // an upload that may be running
    await partial(directory, "db", "other-20260102000000.sql.gz", 3 * day); // another prefix
    await partial(directory, "elsewhere", "backup-20260102000000.sql.gz", 3 * day);

    const swept = await storage.sweep?.({ prefix: "db/backup-", before: new Date(Date.now() - day) });
    expect(swept?.map(({ key, kind }) => ({ key, kind })).sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: "db/backup-20260102000000.sql.gz", kind: "temporary file" },
    ]);
    expect(swept?.[0]?.startedAt).toBeInstanceOf(Date);
    expect(await filesUnder(directory)).toEqual(
      [
        join("db", ".hoard-partial-0123456789ab-backup-20260104000000.sql.gz"),
        join("db", ".hoard-partial-0123456789ab-other-20260102000000.sql.gz"),
        join("db", "backup-20260101000000.sql.gz"),
        join("db", "sub", ".hoard-partial-0123456789ab-backup-20260103000000.sql.gz"),
        join("elsewhere", ".hoard-partial-0123456789ab-backup-20260102000000.sql.gz"),
      ].sort(),
    );

    // Everything under the prefix "db/" includes the sub-folder.
    const deeper = await storage.sweep?.({ prefix: "db/", before: new Date(Date.now() - day) });
    expect(deeper?.map((item) => item.key).sort()).toEqual(["db/other-20260102000000.sql.gz", "db/sub/backup-20260103000000.sql.gz"]);
    expect(await keysOf(storage)).toEqual(["db/backup-20260101000000.sql.gz"]);
  });

  it("sweeps nothing in a storage directory that does not exist yet", async () => {
    const storage = createLocalStorage({ directory: join(await freshDirectory("sweep-missing"), "not-yet") });
    expect(await storage.sweep?.({ before: new Date() })).toEqual([]);
  });
});

describe("local storage: a full disk", () => {
  it("fails with DISK_FULL and leaves no temporary file", async () => {
    const directory = await freshDirectory("full");
    await new Promise<void>((resolve, reject) => {
      const mount = spawn("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", directory], { stdio: "ignore" });
      mount.on("error", reject);
      mount.on("close", (status) => (status === 0 ? resolve() : reject(new Error(`mount exited ${status}; this test needs root`))));
    });
    try {
      const storage = createLocalStorage({ directory });
      const error = await caught(storage.upload("db/backup-20260101000000.sql.gz", Readable.from([Buffer.alloc(3 * 1024 * 1024, 7)])));
      expect(isHoardError(error, "DISK_FULL"), String(error)).toBe(true);
      expect((error as Error).message).toBe("local storage: no space left on the device while writing db/backup-20260101000000.sql.gz");
      expect(await filesUnder(directory)).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => spawn("umount", [directory], { stdio: "ignore" }).on("close", () => resolve()));
    }
  });
});
