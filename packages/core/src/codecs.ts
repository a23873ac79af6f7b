import { spawn } from "node:child_process";
import { accessSync, constants as fsConstants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { Duplex, PassThrough, type Transform, Writable } from "node:stream";
import * as zlib from "node:zlib";
import { createGunzip, createGzip } from "node:zlib";
import unbzip2Stream from "unbzip2-stream";
import { HoardError } from "./errors.js";
import type { CompressionFormat } from "./manifest.js";
import { defaultCompressionJobs, parallelGzip, parallelZstd, type ZstdTuning, zstdParameters } from "./parallel-compress.js";
import { zstdFrameCheck, zstdPerFrameDecoder } from "./zstd-frames.js";

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

/**
 * The pieces zlib's decoders hand on: 256 KiB, not zlib's 16 KiB. Each piece is a round trip to the
 * thread pool and a hop through every stream to the restoring tool, and a zstd output buffer
 * smaller than zstd's 128 KiB block makes zstd decode into its own window and copy out. Restoring
 * the 300 MiB PostgreSQL benchmark (Node.js 24, hoard's process alone, four interleaved rounds):
 * 1.47 s of CPU with 256 KiB pieces against 1.66 s with 64 KiB; 128 KiB took more than 256 KiB in
 * each of three rounds, and the peak RSS grew by 7 MiB (docs/benchmarks.md, "Restore CPU"). 1 MiB
 * file reads on top cost more CPU in a restore, not less (1.89 s), and were left out.
 */
const decodedPieceBytes = 256 * 1024;

/** A stream that undoes one compression layer. Damaged input surfaces as CORRUPT_ARCHIVE. */
export function decompressor(layer: Exclude<Layer, "tar" | "age">): Transform | Duplex {
  switch (layer) {
    case "gz":
      // 256 KiB pieces instead of zlib's 16 KiB: a sixteenth of the stream hops to the restoring tool
      // (64 KiB pieces already took 1.3 s less CPU per 255 MB restored: docs/postgresql.md).
      return createGunzip({ chunkSize: decodedPieceBytes });
    case "bz2":
      return bzip2Decompressor();
    case "zst":
      switch (zstdDecompressorKind()) {
        case "zlib":
          return checkedZstdDecompressor();
        case "zlib-per-frame":
          return zstdPerFrameDecoder(() => (zlib as unknown as NativeZstd).createZstdDecompress({ chunkSize: decodedPieceBytes }));
        case "program":
          return filterProgram("zstd", ["-d", "-c", "-q"], "CORRUPT_ARCHIVE", zstdMissing("read .zst"));
      }
  }
}

/** The file extension a compression adds to a backup's name, without the dot; none for `none`. */
export function compressionExtension(format: CompressionFormat): string | undefined {
  return format === "gzip" ? "gz" : format === "zstd" ? "zst" : undefined;
}

/**
 * A stream that compresses in `format` at `level` (checked by the caller against
 * `compressionLevels`) on `jobs` threads (default: `defaultCompressionJobs()`, the cores up to
 * what libuv's thread pool can spare). With more than one job, gzip is one standard member made of
 * blocks compressed at once (pigz's method), zstd a series of frames (see parallel-compress.ts);
 * one job is zlib's own stream. zstd is zlib's where this Node.js has it (22.15+), else the `zstd`
 * program (`-T<jobs>`); both write frames with a content checksum (the program's default; zlib's
 * is turned on here, it writes none by default), readable by the standard `zstd -d`. The
 * program's failure fails the stream before its output ends, so a cut-short frame is never
 * stored as a whole one.
 */
export function compressor(
  format: Exclude<CompressionFormat, "none">,
  level: number,
  jobs = defaultCompressionJobs(),
  tuning: ZstdTuning = {},
): Transform | Duplex {
  if (format === "gzip") return jobs > 1 ? parallelGzip(level, { jobs }) : createGzip({ level });
  const native = zlib as unknown as Partial<NativeZstd>;
  if (native.createZstdCompress && native.constants?.ZSTD_c_compressionLevel !== undefined) {
    const parallel = jobs > 1 ? parallelZstd(level, { jobs, ...tuning }) : undefined;
    if (parallel) return parallel;
    return native.createZstdCompress({ params: zstdParameters(native.constants, level, tuning) });
  }
  const advanced = tuning.minMatch === undefined ? [] : [`--zstd=minMatch=${tuning.minMatch}`];
  return filterProgram("zstd", ["-c", "-q", `-${level}`, ...advanced, `-T${jobs}`], "INTERNAL", zstdMissing("write .zst"));
}

/** Which compressor `compressor("zstd", ...)` uses here: `zlib` (this Node.js has zstd) or the `zstd` program. */
export function zstdCompressorKind(): "zlib" | "program" {
  return (zlib as unknown as Partial<NativeZstd>).createZstdCompress ? "zlib" : "program";
}

function zstdMissing(what: string): string {
  return `this Node.js cannot ${what} by itself (Node.js 24 can) and the zstd program is not installed: install zstd`;
}

interface NativeZstd {
  createZstdDecompress(options?: { chunkSize?: number }): Transform;
  createZstdCompress(options: { params: Record<number, number> }): Transform;
  zstdCompressSync(input: Buffer): Buffer;
  zstdDecompressSync(input: Buffer): Buffer;
  constants: { ZSTD_c_compressionLevel: number; ZSTD_c_checksumFlag: number; ZSTD_c_minMatch: number };
}

const bzip2Programs = ["lbzip2", "bzip2"] as const;

/**
 * bzip2 through `lbzip2` (parallel) or `bzip2` when one is on PATH (several times faster than the
 * pure-JS decoder, and its memory is the program's, not Node.js's), else unbzip2-stream. Both
 * programs read concatenated streams (pbzip2's and lbzip2's output) and report a damaged or cut
 * input only through their exit status, which `filterProgram` waits for.
 */
function bzip2Decompressor(): Transform | Duplex {
  const program = findProgram(bzip2Programs, process.env.PATH ?? "");
  if (program === undefined) return unbzip2Stream() as unknown as Transform;
  return filterProgram(program, ["-d", "-c"], "CORRUPT_ARCHIVE", undefined, explainBzip2);
}

/** bzip2's and lbzip2's many-line complaints, as one clause. */
function explainBzip2(stderr: string): string | undefined {
  if (/not a bzip2 file|not a valid bzip2 file|bad magic/i.test(stderr)) return "not bzip2 data (bad magic number)";
  if (/ends unexpectedly|unexpected end|truncated/i.test(stderr)) return "the compressed data ends unexpectedly (truncated)";
  if (/integrity|CRC/i.test(stderr)) return "data integrity error (a CRC does not match: the data is damaged)";
  // lbzip2 says "compressed data error: ..." for a cut input as for a damaged one (a missing block reads as a bad header).
  if (/compressed data error/i.test(stderr)) return "the compressed data is damaged or cut short";
  return undefined;
}

/** The first of `names` that is an executable file on `path`. Synchronous: a decompressor is made synchronously (a few stat calls). */
export function findProgram(names: readonly string[], path: string): string | undefined {
  for (const name of names) {
    for (const directory of path.split(delimiter).filter(Boolean)) {
      const candidate = join(directory, name);
      try {
        accessSync(candidate, fsConstants.X_OK);
        if (statSync(candidate).isFile()) return candidate;
      } catch {}
    }
  }
  return undefined;
}

/**
 * Which decompressor `decompressor("zst")` uses here:
 * - `zlib` where this Node.js has zstd and its decoder reads concatenated frames (Node.js 24;
 *   hoard's parallel compressor writes one frame per block, and so do pzstd and `zstd -T`'s long
 *   inputs), behind a frame walk that finds a cut or trailing bytes;
 * - `zlib-per-frame` where this Node.js has zstd but its decoder stops after the first frame
 *   without an error (Node.js 22): each frame then gets a decoder of its own (zstd-frames.ts), so
 *   a multi-frame backup never restores as its first block alone;
 * - `program`: the `zstd` program, where this Node.js has no zstd (before 22.15).
 * Asked once, of two tiny frames.
 */
export function zstdDecompressorKind(): "zlib" | "zlib-per-frame" | "program" {
  if (zstdDecoderVerdict === undefined) {
    const native = zlib as unknown as Partial<NativeZstd>;
    if (!native.createZstdDecompress || !native.zstdCompressSync || !native.zstdDecompressSync) zstdDecoderVerdict = "program";
    else {
      const frames = Buffer.concat([
        native.zstdCompressSync(Buffer.from("first frame,")),
        native.zstdCompressSync(Buffer.from(" second frame")),
      ]);
      let decoded = "";
      try {
        decoded = native.zstdDecompressSync(frames).toString();
      } catch {}
      zstdDecoderVerdict = decoded === "first frame, second frame" ? "zlib" : "zlib-per-frame";
    }
  }
  return zstdDecoderVerdict;
}

let zstdDecoderVerdict: "zlib" | "zlib-per-frame" | "program" | undefined;

/**
 * zlib's zstd decoder behind `zstdFrameCheck`: zlib checks each frame's content checksum, the frame
 * walker that the data ends where a frame ends (Node.js 22's zlib ends a truncated frame silently,
 * and no Node.js reports bytes after the last frame). An error on either side fails the whole.
 */
function checkedZstdDecompressor(): Duplex {
  const check = zstdFrameCheck();
  const decode = (zlib as unknown as NativeZstd).createZstdDecompress({ chunkSize: decodedPieceBytes });
  check.pipe(decode);
  check.on("error", (error) => decode.destroy(error));
  return Duplex.from({ writable: check, readable: decode });
}

/**
 * A program that filters stdin to stdout (`zstd -d -c`, `bzip2 -d -c`), as one duplex stream with
 * back-pressure through the pipes. Such programs report a truncated or damaged input only through
 * their exit status, after their stdout has ended: the readable side ends only once the status is
 * known to be 0, and otherwise fails with `failureCode` and the program's last stderr.
 */
function filterProgram(
  program: string,
  args: string[],
  failureCode: "CORRUPT_ARCHIVE" | "INTERNAL",
  missing?: string,
  explain?: (stderr: string) => string | undefined,
): Duplex {
  const label = program.slice(program.lastIndexOf("/") + 1);
  const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  const output = new PassThrough();
  child.stdout.pipe(output, { end: false });
  // A program that finds its input damaged exits without reading the rest: writing more then fails
  // with EPIPE, which must not stand for the reason. Its exit status (below) says what went wrong.
  let inputRefused = false;
  child.stdin.on("error", (error: NodeJS.ErrnoException) => {
    inputRefused = true;
    if (error.code !== "EPIPE") duplex.destroy(error);
  });
  const input = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (inputRefused || child.stdin.write(chunk)) return callback();
      const resume = () => {
        child.stdin.off("drain", resume);
        child.stdin.off("close", resume);
        callback();
      };
      child.stdin.on("drain", resume);
      child.stdin.on("close", resume);
    },
    final(callback) {
      if (!inputRefused) child.stdin.end();
      callback();
    },
  });
  const duplex = Duplex.from({ writable: input, readable: output });
  child.on("error", (error: NodeJS.ErrnoException) => {
    duplex.destroy(error.code === "ENOENT" && missing ? new HoardError("UNSUPPORTED_FORMAT", missing) : error);
  });
  child.on("close", (code, signal) => {
    if (code === 0 && !inputRefused) return output.end();
    if (code === 0) return duplex.destroy(new HoardError(failureCode, `${label} stopped reading its input before the end`));
    const status = code === null ? `killed by ${signal}` : `exit ${code}`;
    const said = stderr.trim().split("\n")[0] ?? "";
    const reason = explain?.(stderr) ?? (said.startsWith(`${label}: `) ? said.slice(label.length + 2) : said || status);
    duplex.destroy(new HoardError(failureCode, `${label}: ${reason}`));
  });
  duplex.on("close", () => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  return duplex;
}

/**
 * Turns a decompression error into CORRUPT_ARCHIVE naming the object. A CORRUPT_ARCHIVE that does
 * not name it yet (the zstd frame walk, a decompressing program's exit) gets the name too.
 */
export function archiveError(error: unknown, name: string): HoardError {
  if (HoardError.isInstance(error) && error.code === "CORRUPT_ARCHIVE" && !error.message.includes(name)) {
    return new HoardError("CORRUPT_ARCHIVE", `${name} is damaged or truncated (${error.message})`, { cause: error });
  }
  if (HoardError.isInstance(error) && error.code !== "INTERNAL") return error;
  const message = error instanceof Error ? error.message : String(error);
  return new HoardError("CORRUPT_ARCHIVE", `${name} is damaged or truncated (${message})`, { cause: error });
}
