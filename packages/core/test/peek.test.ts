import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { peekStream } from "../src/peek.ts";

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function chunked(content: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < content.length; offset += size) chunks.push(content.subarray(offset, offset + size));
  return chunks;
}

/** A stream that delivers its chunks one per timer tick, as a network or a pipe would. */
function slowStream(chunks: Buffer[]): Readable {
  const queue = [...chunks];
  return new Readable({
    read() {
      setTimeout(() => this.push(queue.length > 0 ? queue.shift() : null), 2);
    },
  });
}

const content = Buffer.from(Array.from({ length: 10_000 }, (_, index) => (index * 7 + 3) % 256));

describe("peekStream", () => {
  it("returns the first bytes and leaves the whole stream readable", async () => {
    const { head, stream } = await peekStream(Readable.from([content]), 4);
    expect(head).toEqual(content.subarray(0, 4));
    expect(await readAll(stream)).toEqual(content);
  });

  it("collects the head across many small chunks", async () => {
    const { head, stream } = await peekStream(Readable.from(chunked(content, 3)), 512);
    expect(head).toEqual(content.subarray(0, 512));
    expect(await readAll(stream)).toEqual(content);
  });

  it("works with chunks that arrive over time", async () => {
    const { head, stream } = await peekStream(slowStream(chunked(content, 100)), 262);
    expect(head).toEqual(content.subarray(0, 262));
    expect(await readAll(stream)).toEqual(content);
  });

  it("returns fewer bytes when the stream is shorter than asked, and the content is still readable", async () => {
    const short = Buffer.from("PGDMP");
    const { head, stream } = await peekStream(Readable.from(chunked(short, 2)), 512);
    expect(head).toEqual(short);
    expect(await readAll(stream)).toEqual(short);
  });

  it("returns an empty head for an empty stream, and an empty stream to read", async () => {
    const { head, stream } = await peekStream(Readable.from([]), 16);
    expect(head.length).toBe(0);
    expect(await readAll(stream)).toEqual(Buffer.alloc(0));
  });

  it("handles a stream of exactly the asked length", async () => {
    const exact = content.subarray(0, 64);
    const { head, stream } = await peekStream(Readable.from(chunked(exact, 16)), 64);
    expect(head).toEqual(exact);
    expect(await readAll(stream)).toEqual(exact);
  });

  it("keeps every byte of a stream that was ended before the peek", async () => {
    for (const length of [4, 10, 11, 100]) {
      const source = new PassThrough();
      source.end(Buffer.from("0123456789"));
      const { head, stream } = await peekStream(source, length);
      expect(head.toString(), `length ${length}`).toBe("0123456789".slice(0, length));
      expect((await readAll(stream)).toString(), `length ${length}`).toBe("0123456789");
    }
  });

  it("can peek the same stream twice", async () => {
    const first = await peekStream(Readable.from(chunked(content, 5)), 8);
    const second = await peekStream(first.stream, 20);
    expect(second.head).toEqual(content.subarray(0, 20));
    expect(await readAll(second.stream)).toEqual(content);
  });

  it("keeps the stream usable with pipe after a peek", async () => {
    const { stream } = await peekStream(slowStream(chunked(content, 1000)), 10);
    const target = new PassThrough();
    stream.pipe(target);
    expect(await readAll(target)).toEqual(content);
  });

  it("does not wait for the end of a stream that is still open once it has enough bytes", async () => {
    const source = new PassThrough();
    source.write(Buffer.from("0123456789"));
    const { head, stream } = await peekStream(source, 4);
    expect(head.toString()).toBe("0123");
    source.end(Buffer.from("abc"));
    expect((await readAll(stream)).toString()).toBe("0123456789abc");
  });

  it("rejects when the stream fails before enough bytes arrive", async () => {
    const source = new PassThrough();
    const peeked = peekStream(source, 100);
    source.write(Buffer.from("abc"));
    setTimeout(() => source.destroy(new Error("download failed")), 5);
    await expect(peeked).rejects.toThrow("download failed");
  });

  it("rejects at once, with its error, a stream that failed before the peek (a decryptor that refused the key)", async () => {
    const source = new PassThrough();
    source.on("error", () => {});
    source.destroy(new Error("wrong key"));
    await new Promise((resolve) => setImmediate(resolve));
    const outcome = await Promise.race([
      peekStream(source, 100).then(
        () => "resolved",
        (error: Error) => error.message,
      ),
      new Promise((resolve) => setTimeout(() => resolve("still waiting after 1 s"), 1000)),
    ]);
    expect(outcome).toBe("wrong key");
  });

  it("rejects at once a stream that was closed before the peek", async () => {
    const source = new PassThrough();
    source.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    await expect(peekStream(source, 10)).rejects.toThrow("closed before it could be read");
  });
});
