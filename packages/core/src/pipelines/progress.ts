import { Transform } from "node:stream";
import type { HoardEvent, Logger } from "../logger.js";

/** A pass-through that counts bytes and reports progress at most every `intervalMs`. */
export function progressMeter(logger: Logger | undefined, phase: Extract<HoardEvent, { type: "progress" }>["phase"], intervalMs = 1000) {
  let bytes = 0;
  let reported = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      const now = Date.now();
      if (now - reported >= intervalMs) {
        reported = now;
        logger?.event({ type: "progress", phase, bytes });
      }
      callback(null, chunk);
    },
    flush(callback) {
      logger?.event({ type: "progress", phase, bytes });
      callback();
    },
  });
  return { meter, bytes: () => bytes };
}
