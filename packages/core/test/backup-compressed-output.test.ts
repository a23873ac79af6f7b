// A dump whose tool compressed it already (DumpOutput.compressed) is stored as it is unless the
// backup names a compression; the manifest says what core did. The drivers' own tests prove it on
// real dumps (driver-postgresql's parallel.integration.test.ts); these cover the pipeline's choice.
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import { beforeEach, describe, expect, it } from "vitest";
import type { Driver, DumpOutput, RestoreInput } from "../src/driver.ts";
import type { HoardEvent, Logger } from "../src/logger.ts";
import { readManifest } from "../src/manifest.ts";
import { backup } from "../src/pipelines/backup.ts";
import { restore } from "../src/pipelines/restore.ts";
import { verify } from "../src/pipelines/verify.ts";
import type { Storage } from "../src/storage.ts";
import { freshDirectories, freshStorage } from "./helpers.ts";

const freshDirectory = freshDirectories("compressed-output");
const now = new Date(Date.UTC(2026, 2, 14, 15, 9, 26));

/** Files as a dump tool that compresses each one would write them (gzip members, like pg_dump's `.dat.gz`). */
const dumpFiles: Record<string, Buffer> = {
  "toc.dat": Buffer.from("table of contents"),
  "3001.dat.gz": gzipSync(Buffer.from("rows of the first table\n".repeat(50))),
  "3002.dat.gz": gzipSync(Buffer.from("rows of the second table\n".repeat(80))),
};

type Output = { kind: "directory"; compressed?: string } | { kind: "stream"; compressed?: string };

interface TestDriver extends Driver {
  dumps: number;
  restored: Array<Record<string, Buffer> | Buffer>;
}

/** A driver whose dump is `dumpFiles` in a directory (or their gzip member as a stream), saying it is compressed when asked to. */
function driverWith(output: Output): TestDriver {
  const restored: TestDriver["restored"] = [];
  const driver: TestDriver = {
    name: "fake",
    url: "fake://user@host/db",
    extension: "dump",
    dumps: 0,
    restored,
    async dump({ workDirectory }): Promise<DumpOutput> {
      driver.dumps += 1;
      const compressed = output.compressed === undefined ? {} : { compressed: output.compressed };
      if (output.kind === "stream") return { kind: "stream", stream: Readable.from([dumpFiles["3001.dat.gz"] as Buffer]), ...compressed };
      const path = join(workDirectory, "dump");
      await mkdir(path);
      for (const [name, content] of Object.entries(dumpFiles)) await writeFile(join(path, name), content);
      return { kind: "directory", path, ...compressed };
    },
    async restore(input: RestoreInput) {
      if (input.kind === "stream") {
        const chunks: Buffer[] = [];
        for await (const chunk of input.stream) chunks.push(chunk as Buffer);
        restored.push(Buffer.concat(chunks));
        return;
      }
      const files: Record<string, Buffer> = {};
      for (const entry of await readdir(input.path, { recursive: true, withFileTypes: true })) {
        if (entry.isFile())
          files[relative(input.path, join(entry.parentPath, entry.name))] = await readFile(join(entry.parentPath, entry.name));
      }
      restored.push(files);
    },
  };
  return driver;
}

function recorder(): Logger & { messages: string[] } {
  const messages: string[] = [];
  return { messages, event: (event: HoardEvent) => (event.type === "log" ? messages.push(event.message) : undefined) };
}

let storage: Storage;
let temporaryDirectory: string;
beforeEach(async () => {
  ({ storage, temporaryDirectory } = await freshStorage(freshDirectory));
});

describe("a dump its tool compressed already", () => {
  it.each(["stream", "file"] as const)(
    "%s mode stores a compressed directory dump as .tar, records compression none, and restores it",
    async (mode) => {
      const driver = driverWith({ kind: "directory", compressed: "gzip, each table's file by the tool" });
      const logger = recorder();
      const result = await backup({ driver, storage, mode, now, temporaryDirectory, logger });
      expect(result.key).toBe("backup-20260314150926.dump.tar");
      expect(result.manifest.compression).toEqual({ format: "none" });
      expect((await readManifest(storage, result.key))?.compression).toEqual({ format: "none" });
      expect(logger.messages).toContain(
        "fake: the dump is compressed already (gzip, each table's file by the tool): stored without compressing it again",
      );
      // The stored object is a plain tar (ustar at offset 257 of its first header), not gzip.
      const stored = await contentOf(storage, result.key);
      expect(stored.subarray(257, 262).toString("latin1")).toBe("ustar");
      const restoring = driverWith({ kind: "directory" });
      await restore({ driver: restoring, storage, key: result.key, temporaryDirectory });
      expect(restoring.restored).toEqual([dumpFiles]);
      const verified = await verify({ storage, key: result.key, temporaryDirectory });
      expect(verified.sha256).toBe(result.manifest.object.sha256);
    },
  );

  it("stores a compressed stream as it is", async () => {
    const driver = driverWith({ kind: "stream", compressed: "gzip, by the tool" });
    const result = await backup({ driver, storage, now, temporaryDirectory });
    expect(result.key).toBe("backup-20260314150926.dump");
    expect(result.manifest.compression).toEqual({ format: "none" });
    expect(await contentOf(storage, result.key)).toEqual(dumpFiles["3001.dat.gz"]);
  });

  it("applies a compression the backup names, and says it saves little", async () => {
    const logger = recorder();
    const driver = driverWith({ kind: "directory", compressed: "gzip, each table's file by the tool" });
    const result = await backup({ driver, storage, now, temporaryDirectory, compression: "gzip", logger });
    expect(result.key).toBe("backup-20260314150926.dump.tar.gz");
    expect(result.manifest.compression).toEqual({ format: "gzip", level: 6 });
    expect(
      gunzipSync(await contentOf(storage, result.key))
        .subarray(257, 262)
        .toString("latin1"),
    ).toBe("ustar");
    expect(logger.messages).toContain(
      "fake: the dump is compressed already (gzip, each table's file by the tool); compressing it again with gzip, as asked, saves little",
    );
    const restoring = driverWith({ kind: "directory" });
    await restore({ driver: restoring, storage, key: result.key, temporaryDirectory });
    expect(restoring.restored).toEqual([dumpFiles]);
  });

  it("a level alone names the default compression (zstd) at that level", async () => {
    const driver = driverWith({ kind: "directory", compressed: "gzip, each table's file by the tool" });
    const result = await backup({ driver, storage, now, temporaryDirectory, compressionLevel: 1 });
    expect(result.key).toBe("backup-20260314150926.dump.tar.zst");
    expect(result.manifest.compression).toEqual({ format: "zstd", level: 1 });
  });

  it("compression none named for it logs nothing about compressing again", async () => {
    const logger = recorder();
    const driver = driverWith({ kind: "directory", compressed: "gzip, each table's file by the tool" });
    const result = await backup({ driver, storage, now, temporaryDirectory, compression: "none", logger });
    expect(result.key).toBe("backup-20260314150926.dump.tar");
    expect(logger.messages.filter((message) => message.includes("compressed already"))).toEqual([]);
  });

  it("an uncompressed directory dump still gets the default compression, zstd 3 with a minimum match of 6", async () => {
    const driver = driverWith({ kind: "directory" });
    const result = await backup({ driver, storage, now, temporaryDirectory });
    expect(result.key).toBe("backup-20260314150926.dump.tar.zst");
    expect(result.manifest.compression).toEqual({ format: "zstd", level: 3, minMatch: 6 });
  });

  it("a wrong compression still fails before the dump runs", async () => {
    const driver = driverWith({ kind: "directory", compressed: "gzip, each table's file by the tool" });
    await expect(backup({ driver, storage, now, temporaryDirectory, compression: "none", compressionLevel: 3 })).rejects.toThrow(
      /a compression level needs a compression/,
    );
    expect(driver.dumps).toBe(0);
  });
});

async function contentOf(storage: Storage, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.download(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
