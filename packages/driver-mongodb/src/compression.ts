import { type Duplex, PassThrough, type Readable, type Transform } from "node:stream";
import { archiveError, decompressor, peekStream } from "@hoard/core/plugin";

/** A compression recognised by its first bytes. */
export type ContentCompression = "gzip" | "zstd" | "bzip2";

/**
 * Recognises gzip (1F 8B), zstd (28 B5 2F FD) and bzip2 ("BZh") by their magic numbers. A mongodump
 * archive starts with 6D E2 99 81 and so is never mistaken for one of them.
 */
export function detectCompression(head: Uint8Array): ContentCompression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bzip2";
  return undefined;
}

/**
 * Undoes compression found by content, so that an archive from `mongodump --gzip --archive` (or one
 * compressed again by hand) restores whatever its name says. Core has already undone what the
 * extension names (.gz, .bz2, .zst); this looks at the bytes that are left, a few layers deep.
 * Damaged compressed data fails the returned stream with CORRUPT_ARCHIVE.
 */
export async function decompressByContent(stream: Readable, name: string): Promise<{ stream: Readable; layers: ContentCompression[] }> {
  const layers: ContentCompression[] = [];
  let current = stream;
  for (let depth = 0; depth < 3; depth++) {
    const peeked = await peekStream(current, 4);
    current = peeked.stream;
    const compression = detectCompression(peeked.head);
    if (!compression) break;
    layers.push(compression);
    current = through(current, decompressor(compression === "gzip" ? "gz" : compression === "zstd" ? "zst" : "bz2"), name);
  }
  return { stream: current, layers };
}

/**
 * Pipes `source` through `transform`; a failure of either fails the output with CORRUPT_ARCHIVE,
 * and closing the output early stops both.
 */
function through(source: Readable, transform: Transform | Duplex, name: string): Readable {
  const output = new PassThrough();
  const stop = () => {
    source.destroy();
    transform.destroy();
  };
  // The listeners stay for the streams' whole life: an error emitted after a first one is handled too.
  const fail = (error: unknown) => {
    output.destroy(archiveError(error, name));
    stop();
  };
  source.on("error", fail);
  transform.on("error", fail);
  output.on("close", () => {
    if (!output.readableEnded) stop();
  });
  source.pipe(transform).pipe(output);
  return output;
}
