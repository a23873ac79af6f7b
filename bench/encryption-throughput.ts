/**
 * Why hoard seals age's payload with node:crypto rather than the age-encryption library's own
 * streams: encrypts and decrypts the same random data (random, like gzip's output) with both, in
 * Node.js streams as hoard uses them, and prints wall seconds and MiB/s of each. The library's
 * streams are web streams, adapted with Readable.toWeb/fromWeb; hoard's are
 * `encryptor`/`decryptor` from @hoard/core (build first: pnpm build).
 *
 *   pnpm exec tsx bench/encryption-throughput.ts [--size-mb 64] [--repeat 3]
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { decryptor, encryptor } from "../packages/core/dist/index.js";
// age-encryption is @hoard/core's dependency, not the workspace root's: taken from core's node_modules.
import { Decrypter, Encrypter, generateIdentity, identityToRecipient } from "../packages/core/node_modules/age-encryption/dist/index.js";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((argument) => argument !== "--"),
  options: { "size-mb": { type: "string", default: "64" }, repeat: { type: "string", default: "3" } },
  strict: true,
});
const sizeMegabytes = Number(values["size-mb"]);
const repeat = Number(values.repeat);
const block = randomBytes(1024 * 1024);

function source(): Readable {
  return Readable.from(
    (function* () {
      for (let index = 0; index < sizeMegabytes; index++) yield block;
    })(),
  );
}

function collector(parts?: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts?.push(chunk);
      callback();
    },
  });
}

async function timed(action: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await action();
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  const rows: string[] = [];
  for (let round = 1; round <= repeat; round++) {
    const libraryEncrypt = await timed(async () => {
      const encrypter = new Encrypter();
      encrypter.addRecipient(recipient);
      const sealed = await encrypter.encrypt(Readable.toWeb(source()) as ReadableStream<Uint8Array>);
      await pipeline(Readable.fromWeb(sealed as import("node:stream/web").ReadableStream<Uint8Array>), collector());
    });
    const parts: Buffer[] = [];
    const hoardEncrypt = await timed(() => pipeline(source(), encryptor({ recipients: [recipient] }), collector(parts)));
    const sealed = Buffer.concat(parts);
    const libraryDecrypt = await timed(async () => {
      const decrypter = new Decrypter();
      decrypter.addIdentity(identity);
      const opened = await decrypter.decrypt(Readable.toWeb(Readable.from([sealed])) as ReadableStream<Uint8Array>);
      await pipeline(Readable.fromWeb(opened as import("node:stream/web").ReadableStream<Uint8Array>), collector());
    });
    const hoardDecrypt = await timed(() =>
      pipeline(Readable.from([sealed]), decryptor({ identities: [identity] }, "bench.age"), collector()),
    );
    const rate = (seconds: number) => `${seconds.toFixed(2)} s (${(sizeMegabytes / seconds).toFixed(0)} MiB/s)`;
    rows.push(`| ${round} | ${rate(libraryEncrypt)} | ${rate(hoardEncrypt)} | ${rate(libraryDecrypt)} | ${rate(hoardDecrypt)} |`);
  }
  process.stdout.write(
    [
      `${sizeMegabytes} MiB of random data, Node.js ${process.version}`,
      "",
      "| Round | encrypt: age-encryption streams | encrypt: hoard (node:crypto) | decrypt: age-encryption streams | decrypt: hoard (node:crypto) |",
      "| --- | --- | --- | --- | --- |",
      ...rows,
      "",
    ].join("\n"),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`encryption-throughput: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
