import { Readable } from "node:stream";

/**
 * Reads the first `length` bytes of a stream (fewer if it ends sooner) and puts them back, so the
 * stream can still be consumed from the start. Used to recognise formats by their magic bytes.
 * Returns the stream to read from next: the same one, or a replacement when the input was shorter
 * than `length` and has already ended.
 */
export async function peekStream(stream: Readable, length: number): Promise<{ head: Buffer; stream: Readable }> {
  // A stream that already failed emits no more events: waiting for one would never end.
  if (stream.errored) throw stream.errored;
  if (stream.readableEnded) return { head: Buffer.alloc(0), stream: Readable.from([]) };
  if (stream.destroyed || stream.readableAborted) throw new Error("the stream was closed before it could be read");
  let ended = false;
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      stream.off("readable", onReadable);
      stream.off("end", onEnd);
      stream.off("error", onError);
    };
    const onEnd = () => {
      ended = true;
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onReadable = () => {
      for (let chunk = stream.read() as Buffer | null; chunk !== null; chunk = stream.read() as Buffer | null) {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= length) {
          cleanup();
          // Put the bytes back now, in this tick: had the stream just ended, its 'end' event is
          // only scheduled, and it is cancelled by data back in the buffer. Later would be too late.
          stream.unshift(Buffer.concat(chunks));
          resolve();
          return;
        }
      }
    };
    stream.on("readable", onReadable);
    stream.on("end", onEnd);
    stream.on("error", onError);
    onReadable();
  });
  const head = Buffer.concat(chunks);
  if (ended) return { head: head.subarray(0, length), stream: Readable.from(head.length > 0 ? [head] : []) };
  return { head: head.subarray(0, length), stream };
}
