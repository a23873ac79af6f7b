import { type Readable, Transform } from "node:stream";
import { HoardError } from "@hoard/core";
import type { DumpCheck } from "@hoard/core/plugin";

/** How mariadb-dump and mysqldump output begins: the sandbox-mode line (MariaDB 10.11.8 and later) or the banner comment. */
const dumpStarts = ["/*M!999999", "-- MariaDB dump", "-- MySQL dump"];

/**
 * What the dump must look like (the kit's `checkDumpOutput` checks it as it passes):
 * - its first bytes must be how mariadb-dump starts (see `dumpStarts`; with comments turned off,
 *   older versions start with a `/*!` versioned comment instead): a dump option that redirects
 *   the output (`--result-file`) would otherwise leave an empty backup that looks fine. Nothing is
 *   passed on before this is checked.
 * - with `completion`, its last line must be `-- Dump completed`: a tool killed in a way that
 *   still exits 0 leaves a truncated dump that would otherwise be stored as a good one. Only the
 *   last bytes are kept, so memory stays flat.
 */
export function sqlDumpCheck(label: string, options: { completion: boolean; lenientStart: boolean }): DumpCheck {
  return {
    tool: label,
    format: "SQL dump",
    redirects: "--result-file",
    length: Math.max(...dumpStarts.map((start) => start.length)),
    accepts(head) {
      const text = head.toString("latin1");
      return dumpStarts.some((start) => text.startsWith(start)) || (options.lenientStart && text.startsWith("/*!"));
    },
    end: options.completion
      ? {
          length: 256,
          check: (tail) =>
            /(^|\n)-- Dump completed[^\n]*\n*$/.test(tail.toString("latin1"))
              ? undefined
              : new HoardError(
                  "TOOL_FAILED",
                  `${label} exited successfully, but its output does not end with "-- Dump completed": the dump is incomplete and was not stored`,
                ),
        }
      : undefined,
  };
}

/** Counts the bytes that pass, reporting the running total; errors of `source` are passed on. */
export function countBytes(source: Readable, onCount: (bytes: number) => void): Readable {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      onCount(bytes);
      callback(null, chunk);
    },
  });
  source.on("error", (error) => counter.destroy(error));
  counter.on("close", () => source.destroy());
  return source.pipe(counter);
}
