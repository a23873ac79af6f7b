import { spawn } from "node:child_process";
import { Duplex, PassThrough, type Transform } from "node:stream";
import * as zlib from "node:zlib";
import { createGunzip } from "node:zlib";
import unbzip2Stream from "unbzip2-stream";
import { HoardError } from "./errors.js";

/** One layer of packaging, named by its file extension. */
/** `age` is encryption (see encryption.ts), undone with keys rather than by `decompressor`. */
export type Layer = "gz" | "bz2" | "zst" | "tar" | "age";

const layerByExtension: Record<string, Layer[]> = {
  gz: ["gz"],
  gzip: ["gz"],
  bz2: ["bz2"],
  zst: ["zst"],
  tar: ["tar"],
  age: ["age"],
  tgz: ["tar", "gz"],
  tbz2: ["tar", "bz2"],
  tbz: ["tar", "bz2"],
};

/**
 * The packaging layers of a file name, outermost last: `x.tar.gz` -> ["tar", "gz"]. Only trailing
 * known extensions count; `backup-1.sql.gz` -> ["gz"].
 */
export function layersOf(name: string): Layer[] {
  const parts = name.split(".").slice(1);
  const layers: Layer[] = [];
  while (parts.length > 0) {
    const known = layerByExtension[(parts.at(-1) as string).toLowerCase()];
    if (!known) break;
    layers.unshift(...known);
    parts.pop();
  }
  return layers;
}

/** A stream that undoes one compression layer. Damaged input surfaces as CORRUPT_ARCHIVE. */
export function decompressor(layer: Exclude<Layer, "tar" | "age">): Transform | Duplex {
  switch (layer) {
    case "gz":
      return createGunzip();
    case "bz2":
      return unbzip2Stream() as unknown as Transform;
    case "zst":
      return nativeZstdDetectsTruncation() ? (zlib as unknown as NativeZstd).createZstdDecompress() : zstdProcess();
  }
}

interface NativeZstd {
  createZstdDecompress(): Transform;
  zstdDecompressSync(input: Buffer): Buffer;
}

/** A 47-byte zstd frame of "hello hoard, a small frame to truncate" without its last 4 bytes (the checksum). */
const truncatedZstdFrame = Buffer.from(
  "28b52ffd242631010068656c6c6f20686f6172642c206120736d616c6c206672616d6520746f207472756e63617465",
  "hex",
);

let nativeZstdVerdict: boolean | undefined;

/**
 * Whether this Node.js has zstd in zlib and its decompressor fails on a truncated frame. Node.js 22
 * (seen on 22.23.5) has zstd but ends a truncated frame silently, which would restore part of a
 * backup as if it were whole; Node.js 24 reports it. Asked once, of a tiny truncated frame.
 */
function nativeZstdDetectsTruncation(): boolean {
  if (nativeZstdVerdict === undefined) {
    const native = zlib as unknown as Partial<NativeZstd>;
    if (!native.createZstdDecompress || !native.zstdDecompressSync) nativeZstdVerdict = false;
    else {
      try {
        native.zstdDecompressSync(truncatedZstdFrame);
        nativeZstdVerdict = false;
      } catch {
        nativeZstdVerdict = true;
      }
    }
  }
  return nativeZstdVerdict;
}

/** zstd through the `zstd` program where this Node.js has no zstd in zlib (before 22.15), or one that misses truncation. */
function zstdProcess(): Duplex {
  const child = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  // zstd reports a truncated or damaged input only through its exit status, after its stdout has
  // ended: the readable side must not end before that status is known.
  const output = new PassThrough();
  child.stdout.pipe(output, { end: false });
  const duplex = Duplex.from({ writable: child.stdin, readable: output });
  child.on("error", (error: NodeJS.ErrnoException) => {
    duplex.destroy(
      error.code === "ENOENT"
        ? new HoardError(
            "UNSUPPORTED_FORMAT",
            "this Node.js cannot read .zst safely and the zstd program is not installed: install zstd (or use Node.js 24)",
          )
        : error,
    );
  });
  child.on("close", (code, signal) => {
    if (code === 0) return output.end();
    const status = code === null ? `killed by ${signal}` : `exit ${code}`;
    duplex.destroy(new HoardError("CORRUPT_ARCHIVE", `zstd: ${stderr.trim() || status}`));
  });
  duplex.on("close", () => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  return duplex;
}

/** Turns a decompression error into CORRUPT_ARCHIVE naming the object. */
export function archiveError(error: unknown, name: string): HoardError {
  if (HoardError.isInstance(error) && error.code !== "INTERNAL") return error;
  const message = error instanceof Error ? error.message : String(error);
  return new HoardError("CORRUPT_ARCHIVE", `${name} is damaged or truncated (${message})`, { cause: error });
}
