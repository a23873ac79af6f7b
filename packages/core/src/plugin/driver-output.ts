import { type Readable, Transform } from "node:stream";
import { HoardError } from "../errors.js";

/** How a dump tool's output must begin (and, optionally, end) to be stored. */
export interface DumpCheck {
  /** The tool, for the message: `pg_dump`. */
  tool: string;
  /** What it should have written, for the message: `custom-format dump`, `SQL dump`, `archive`. */
  format: string;
  /** Dump options that send the dump elsewhere, for the message: `--file`. */
  redirects: string;
  /** Put in front of the message when set: `mongodb` gives `mongodb: mongodump produced ...`. */
  plugin?: string;
  /** How many first bytes are held back and checked before anything is passed on. */
  length: number;
  /** Whether `head` begins the dump: `length` bytes, or fewer when the output ended sooner. */
  accepts(head: Buffer): boolean;
  /** Why `head` was refused, shown in the message: `it wrote nothing there`. */
  explain?(head: Buffer): string | undefined;
  /**
   * A check of the output's last bytes (at most `length` of them are kept, so memory stays flat),
   * once the output ended: returns the error when the dump is incomplete.
   */
  end?: { length: number; check(tail: Buffer): HoardError | undefined };
}

/**
 * TOOL_FAILED for a dump tool whose output is not a dump:
 * `pg_dump produced no custom-format dump on its output (does a --dump-option redirect it, e.g. --file?)`,
 * with the reason first when there is one:
 * `mongodb: mongodump produced no archive on its output (it wrote nothing there); does a --dump-option redirect it, e.g. --out?`
 */
export function noDumpOnOutput(check: Pick<DumpCheck, "tool" | "format" | "redirects" | "plugin">, reason?: string): HoardError {
  const question = `does a --dump-option redirect it, e.g. ${check.redirects}?`;
  const prefix = check.plugin ? `${check.plugin}: ` : "";
  const what = `${prefix}${check.tool} produced no ${check.format} on its output`;
  return new HoardError("TOOL_FAILED", reason ? `${what} (${reason}); ${question}` : `${what} (${question})`);
}

/**
 * Passes a dump tool's output on only once its first bytes are how the dump begins: a dump option
 * that redirects the dump (`--file`, `--result-file`, `--out`) or changes its format would
 * otherwise leave an empty or foreign backup that looks fine. Nothing is passed on before the
 * check; a refused start fails the stream with TOOL_FAILED ({@link noDumpOnOutput}).
 *
 * Errors of `source` (the tool failed) fail the returned stream, through `mapError`; destroying
 * the returned stream destroys `source` (which kills the tool).
 */
export function checkDumpOutput(source: Readable, check: DumpCheck, mapError: (error: unknown) => unknown = (error) => error): Readable {
  let head: Buffer | undefined = Buffer.alloc(0);
  let tail = Buffer.alloc(0);
  const refuse = (bytes: Buffer) => noDumpOnOutput(check, check.explain?.(bytes));
  const checked = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (check.end) {
        const keep = check.end.length;
        tail = chunk.length >= keep ? Buffer.from(chunk.subarray(-keep)) : Buffer.concat([tail, chunk]).subarray(-keep);
      }
      if (head === undefined) return callback(null, chunk);
      head = Buffer.concat([head, chunk]);
      if (head.length < check.length) return callback();
      if (!check.accepts(head)) return callback(refuse(head));
      const pending = head;
      head = undefined;
      callback(null, pending);
    },
    flush(callback) {
      if (head !== undefined) {
        if (!check.accepts(head)) return callback(refuse(head));
        if (head.length > 0) this.push(head);
        head = undefined;
      }
      callback(check.end?.check(tail) ?? null);
    },
  });
  // The check can fail before anyone reads (the output ended while a pipeline is still being set
  // up): consumers learn of it through the stream's errored state, which pipeline() and finished()
  // report; without this listener, the early 'error' event would crash the process instead.
  checked.on("error", () => {});
  source.on("error", (error) => checked.destroy(mapError(error) as Error));
  checked.on("close", () => source.destroy());
  source.pipe(checked);
  return checked;
}
