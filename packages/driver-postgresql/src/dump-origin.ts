import { Transform, type TransformCallback } from "node:stream";
import { majorOfVersion } from "./clients.js";
import { toolVersion } from "./inspect.js";

/** The pg_dump that wrote a dump, as far as its first bytes tell. */
export interface DumpedBy {
  /** e.g. `15.19` */
  version: string;
  major: number;
}

/** How pg_dump compressed an archive's data (its header says): `none`, or the algorithm. */
export type ArchiveCompression = "none" | "gzip" | "lz4" | "zstd";

/** What an archive's header records: the pg_dump that wrote it and how it compressed the data. */
export interface ArchiveHeader {
  dumpedBy?: DumpedBy;
  /** Absent when the header names an algorithm newer than this code knows. */
  compression?: ArchiveCompression;
}

/** The algorithm byte of archive version 1.15 and later (pg_compress_algorithm). */
const compressionAlgorithms: readonly ArchiveCompression[] = ["none", "gzip", "lz4", "zstd"];

/**
 * An archive's header (custom format; the `toc.dat` of the tar and directory formats): `PGDMP`,
 * the archive version, int and offset sizes, the format, the compression (from archive version
 * 1.15, pg_dump 16, a byte naming the algorithm; before, an int giving gzip's level: 0 none, -1
 * zlib's default), seven ints of the time, then the database name, the server's version and
 * pg_dump's version as length-prefixed strings. Undefined when the header is cut short before the
 * compression or is not one; `dumpedBy` is missing when it is cut short after it.
 */
export function readArchiveHeader(head: Buffer): ArchiveHeader | undefined {
  if (head.subarray(0, 5).toString("latin1") !== "PGDMP") return undefined;
  const [major = 0, minor = 0] = [head[5], head[6]];
  let offset = major > 1 || minor > 0 ? 8 : 5;
  const intSize = head[offset];
  if (intSize === undefined || intSize < 1 || intSize > 8) return undefined;
  offset += 3; // intSize, offSize, format
  const readInt = (): number | undefined => {
    if (offset + 1 + intSize > head.length) return undefined;
    const negative = head[offset] !== 0;
    let value = 0;
    for (let index = 0; index < intSize; index += 1) value += (head[offset + 1 + index] ?? 0) * 2 ** (8 * index);
    offset += 1 + intSize;
    return negative ? -value : value;
  };
  const readString = (): string | undefined => {
    const length = readInt();
    if (length === undefined) return undefined;
    if (length < 0) return "";
    if (offset + length > head.length) return undefined;
    const text = head.subarray(offset, offset + length).toString("utf8");
    offset += length;
    return text;
  };
  const header: ArchiveHeader = {};
  if (major > 1 || (major === 1 && minor >= 15)) {
    const algorithm = head[offset];
    if (algorithm === undefined) return undefined;
    if (algorithm < compressionAlgorithms.length) header.compression = compressionAlgorithms[algorithm];
    offset += 1;
  } else {
    const level = readInt();
    if (level === undefined) return undefined;
    header.compression = level === 0 ? "none" : "gzip";
  }
  for (let field = 0; field < 7; field += 1) if (readInt() === undefined) return header;
  if (readString() === undefined || readString() === undefined) return header;
  const dumpedBy = readString();
  if (!dumpedBy) return header;
  const version = toolVersion(dumpedBy);
  return { ...header, dumpedBy: { version, major: majorOfVersion(version) } };
}

/** The pg_dump version recorded in an archive's header ({@link readArchiveHeader}); undefined when the header is cut short or not one. */
export function archiveDumpedBy(head: Buffer): DumpedBy | undefined {
  return readArchiveHeader(head)?.dumpedBy;
}

/** A tar-format dump: its first member is `toc.dat`, whose data starts after the 512-byte member header. */
export function tarDumpedBy(head: Buffer): DumpedBy | undefined {
  return archiveDumpedBy(head.subarray(512));
}

/** A plain SQL script: pg_dump writes `-- Dumped by pg_dump version 15.19 (...)` near its top. */
export function scriptDumpedBy(head: Buffer): DumpedBy | undefined {
  const line = /^-- Dumped by pg_dump(?:all)? version (\S+)/m.exec(head.toString("utf8"))?.[1];
  if (!line) return undefined;
  const version = toolVersion(line);
  return { version, major: majorOfVersion(version) };
}

/**
 * Run-time parameters that pg_dump and pg_restore set at the top of a script (and after each
 * `\connect` of a cluster script), with the first major that knows them: an older server rejects
 * `SET transaction_timeout = 0` ("unrecognized configuration parameter"), and in one transaction
 * that fails the whole restore.
 */
export const settingsIntroducedIn: Readonly<Record<string, number>> = {
  row_security: 9.5,
  idle_in_transaction_session_timeout: 9.6,
  default_table_access_method: 12,
  transaction_timeout: 17,
};

/** True when a server of `major` would reject one of {@link settingsIntroducedIn}. */
export function needsSettingsFilter(major: number): boolean {
  return Object.values(settingsIntroducedIn).some((introduced) => introduced > major);
}

/** How much of a line is looked at: the settings lines are short; a line of data may be huge. */
const keptLineBytes = 256;

/** Where a prelude starts again: a line that begins with `\connect` (the newline before it included). */
const connectLine = Buffer.from("\n\\connect", "latin1");

/**
 * Drops, from a script of pg_dump or pg_restore, the `SET <parameter> = ...;` lines of
 * {@link settingsIntroducedIn} that a server of `serverMajor` does not know. Only in the script's
 * preludes (from its start, and after each `\connect`, while the lines are blank, comments, SET,
 * `SELECT pg_catalog.set_config(...)` or psql's `\restrict`/`\connect`): never inside a
 * function's body or a table's data, whatever they hold. Streams with bounded memory: at most
 * {@link keptLineBytes} of a line are held.
 *
 * Outside the preludes (nearly all of a script) the chunks pass on as they are, without copying
 * or looking at each line: only a search for the next line that starts with `\connect`.
 */
export function settingsFilter(serverMajor: number, onDropped?: (line: string) => void): Transform {
  const rejected = new Set(Object.entries(settingsIntroducedIn).flatMap(([name, major]) => (major > serverMajor ? [name] : [])));
  let inPrelude = true;
  /** The start of the current line, held back until it can be decided; undefined while passing bytes on. */
  let pending: Buffer[] | undefined = [];
  let pendingBytes = 0;
  const decide = (line: string): "drop" | "keep" => {
    const text = line.replace(/\r$/, "");
    if (text.startsWith("\\connect")) {
      inPrelude = true;
      return "keep";
    }
    if (!inPrelude) return "keep";
    const set = /^SET\s+([a-z_]+)\s*(=|TO)\s*.*;\s*$/i.exec(text);
    if (set && rejected.has((set[1] ?? "").toLowerCase())) return "drop";
    if (
      !(
        set ||
        text.trim() === "" ||
        text.startsWith("--") ||
        /^SELECT pg_catalog\.set_config\(/.test(text) ||
        /^\\(un)?restrict\b/.test(text)
      )
    ) {
      inPrelude = false;
    }
    return "keep";
  };
  /** Whether `chunk` ends with the first `length` bytes of {@link connectLine}. */
  const endsWithStartOfConnect = (chunk: Buffer, length: number) =>
    chunk.length >= length && chunk.subarray(chunk.length - length).equals(connectLine.subarray(0, length));
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      let start = 0;
      /** Where a search for the next `\connect` line begins: the newline that ended the last held line. */
      let searchFrom = 0;
      while (start < chunk.length) {
        if (pending === undefined && inPrelude) {
          // The rest of a long prelude line: passed on; the next line is held again.
          const newline = chunk.indexOf(10, start);
          const end = newline < 0 ? chunk.length : newline + 1;
          this.push(chunk.subarray(start, end));
          start = end;
          if (newline >= 0) {
            pending = [];
            pendingBytes = 0;
          }
          continue;
        }
        if (pending === undefined) {
          // Passing bytes on: up to the newline before the next `\connect`, which is then held and decided.
          const found = chunk.indexOf(connectLine, searchFrom);
          if (found >= 0) {
            if (found + 1 > start) this.push(chunk.subarray(start, found + 1));
            start = found + 1;
            pending = [];
            pendingBytes = 0;
            continue;
          }
          // The chunk may end inside `\n\connect`: hold back from the newline on, to decide with the next chunk.
          let held = 0;
          for (let length = Math.min(connectLine.length - 1, chunk.length - searchFrom); length > 0; length -= 1) {
            if (endsWithStartOfConnect(chunk, length)) {
              held = length;
              break;
            }
          }
          if (held === 0) {
            this.push(start === 0 ? chunk : chunk.subarray(start));
            break;
          }
          const lineStart = chunk.length - held + 1;
          if (lineStart > start) this.push(chunk.subarray(start, lineStart));
          pending = lineStart < chunk.length ? [chunk.subarray(lineStart)] : [];
          pendingBytes = chunk.length - lineStart;
          break;
        }
        // Holding the current line from its start.
        const newline = chunk.indexOf(10, start);
        const end = newline < 0 ? chunk.length : newline + 1;
        const piece = chunk.subarray(start, end);
        start = end;
        pending.push(piece);
        pendingBytes += piece.length;
        if (newline >= 0) {
          const line = Buffer.concat(pending);
          if (decide(line.subarray(0, line.length - 1).toString("utf8")) === "drop") onDropped?.(line.toString("utf8").trim());
          else this.push(line);
          // At the end of the chunk, the next line starts the next chunk: hold it (it may be a `\connect`).
          pending = inPrelude || start === chunk.length ? [] : undefined;
          pendingBytes = 0;
          searchFrom = newline;
        } else if (pendingBytes > keptLineBytes) {
          // A long line: decided by its start (a prelude line is short), the rest passes on.
          const head = Buffer.concat(pending);
          decide(head.toString("utf8"));
          this.push(head);
          pending = undefined;
          searchFrom = start;
        }
      }
      done();
    },
    flush(done: TransformCallback) {
      if (pending && pendingBytes > 0) {
        const line = Buffer.concat(pending);
        if (decide(line.toString("utf8")) === "keep") this.push(line);
      }
      done();
    },
  });
}
