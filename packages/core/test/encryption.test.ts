import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { decryptor, encryptor, validateIdentity, validateRecipient } from "../src/encryption.ts";
import { freshDirectories, prng } from "./helpers.ts";

const run = promisify(execFile);
const freshDirectory = freshDirectories("encryption");
const chunk = 64 * 1024;

/** Runs a program (no shell) with `input` on stdin and returns its stdout; fails with its stderr. */
function runProgram(program: string, args: string[], input: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (data: Buffer) => chunks.push(data));
    child.stderr.on("data", (data: Buffer) => {
      stderr += data.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${program} exited ${code}: ${stderr}`))));
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
}

/**
 * Runs `age` on a pseudo-terminal (util-linux `script`), typing `typed`: age reads a passphrase
 * only from a terminal. `script` takes one command line for its shell; the command is built from
 * fixed words and our own temporary paths, quoted.
 */
async function ageOnTerminal(args: string[], typed: string): Promise<void> {
  const quoted = ["age", ...args].map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
  const child = spawn("script", ["--quiet", "--return", "--command", quoted, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (data: Buffer) => {
    output += data.toString();
  });
  child.stderr.on("data", (data: Buffer) => {
    output += data.toString();
  });
  child.stdin.write(typed);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  child.stdin.destroy();
  if (code !== 0) throw new Error(`age on a terminal exited ${code}: ${output}`);
}

/** Splits `content` into pieces of varied sizes, so chunk boundaries fall everywhere. */
function pieces(content: Buffer, seed: number): Buffer[] {
  const random = prng(seed);
  const parts: Buffer[] = [];
  for (let offset = 0; offset < content.length; ) {
    const size = 1 + Math.floor(random() * 100_000);
    parts.push(content.subarray(offset, offset + size));
    offset += size;
  }
  return parts;
}

async function through(stream: NodeJS.ReadWriteStream, input: Buffer, seed = 1): Promise<Buffer> {
  const output: Buffer[] = [];
  await pipeline(
    Readable.from(pieces(input, seed)),
    stream,
    new Writable({
      write(data: Buffer, _encoding, callback) {
        output.push(data);
        callback();
      },
    }),
  );
  return Buffer.concat(output);
}

/** Decrypts and returns what came out before the failure, and the failure. */
async function decryptFailing(input: Buffer, options: Parameters<typeof decryptor>[0], name = "backup-1.dump.gz.age") {
  const output: Buffer[] = [];
  let failure: unknown;
  await pipeline(
    Readable.from(pieces(input, 7)),
    decryptor(options, name),
    new Writable({
      write(data: Buffer, _encoding, callback) {
        output.push(data);
        callback();
      },
    }),
  ).catch((error: unknown) => {
    failure = error;
  });
  return { plaintext: Buffer.concat(output), failure };
}

interface Key {
  identity: string;
  recipient: string;
  file: string;
}

let directory: string;
let alice: Key;
let bob: Key;
let mallory: Key;

async function generateKey(name: string): Promise<Key> {
  const file = join(directory, `${name}.key`);
  await run("age-keygen", ["-o", file]);
  const text = await readFile(file, "utf8");
  const identity = text.split("\n").find((line) => line.startsWith("AGE-SECRET-KEY-1")) as string;
  const recipient = (await run("age-keygen", ["-y", file])).stdout.trim();
  return { identity, recipient, file };
}

beforeAll(async () => {
  directory = await freshDirectory("keys");
  [alice, bob, mallory] = await Promise.all([generateKey("alice"), generateKey("bob"), generateKey("mallory")]);
});

const sizes = [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * 1024 * 1024 + 12_345];

describe("hoard encrypts, age decrypts", () => {
  it.each(sizes)("%i bytes to two recipients: age -d with either identity gives them back", async (size) => {
    const plaintext = randomBytes(size);
    const sealed = await through(encryptor({ recipients: [alice.recipient, bob.recipient] }), plaintext, size);
    expect(sealed.subarray(0, 22).toString()).toBe("age-encryption.org/v1\n");
    const file = join(directory, `to-recipients-${size}.age`);
    await writeFile(file, sealed);
    expect((await runProgram("age", ["-d", "-i", alice.file, file])).equals(plaintext)).toBe(true);
    expect((await runProgram("age", ["-d", "-i", bob.file, file])).equals(plaintext)).toBe(true);
    await expect(runProgram("age", ["-d", "-i", mallory.file, file])).rejects.toThrow(/no identity matched/);
  });

  it("with a passphrase: age -d, typing it on a terminal, gives them back", async () => {
    const plaintext = randomBytes(chunk * 2 + 99);
    const sealed = await through(encryptor({ passphrase: "correct horse battery staple" }), plaintext);
    expect(sealed.toString("latin1")).toMatch(/^age-encryption\.org\/v1\n-> scrypt /);
    const file = join(directory, "passphrase.age");
    const out = join(directory, "passphrase.out");
    await writeFile(file, sealed);
    await ageOnTerminal(["-d", "-o", out, file], "correct horse battery staple\n");
    expect((await readFile(out)).equals(plaintext)).toBe(true);
  });
});

describe("passphrases off the event loop", () => {
  /** Counts 20 ms timer ticks while `work` runs: a synchronous scrypt lets none through. */
  async function ticksDuring(work: () => Promise<unknown>): Promise<number> {
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 20);
    try {
      await work();
    } finally {
      clearInterval(timer);
    }
    return ticks;
  }

  it("derives the passphrase key without holding the event loop, encrypting and decrypting", async () => {
    // age's scrypt at work factor 2^18 takes about a second even on a quiet machine; the library's
    // own JavaScript scrypt held the event loop for all of it (0 ticks), node:crypto's does not.
    let sealed: Buffer = Buffer.alloc(0);
    const sealing = await ticksDuring(async () => {
      sealed = await through(encryptor({ passphrase: "tick tock" }), Buffer.from("x"));
    });
    expect(sealing).toBeGreaterThanOrEqual(3);
    const opening = await ticksDuring(() => through(decryptor({ passphrase: "tick tock" }, "t.age"), sealed));
    expect(opening).toBeGreaterThanOrEqual(3);
  });
});

describe("age encrypts, hoard decrypts", () => {
  it.each(sizes)("%i bytes from age -r: hoard gives them back", async (size) => {
    const plaintext = randomBytes(size);
    const sealed = await runProgram("age", ["-e", "-r", mallory.recipient, "-r", alice.recipient], plaintext);
    expect((await through(decryptor({ identities: [bob.identity, alice.identity] }, "x.age"), sealed, size + 1)).equals(plaintext)).toBe(
      true,
    );
  });

  it("from age -p with a passphrase typed on a terminal", async () => {
    const plaintext = randomBytes(chunk + 5);
    const input = join(directory, "typed.in");
    const file = join(directory, "typed.age");
    await writeFile(input, plaintext);
    await ageOnTerminal(["-e", "-p", "-o", file, input], "hunter2 hunter2\nhunter2 hunter2\n");
    const sealed = await readFile(file);
    expect((await through(decryptor({ passphrase: "hunter2 hunter2" }, "typed.age"), sealed)).equals(plaintext)).toBe(true);
    const wrong = await decryptFailing(sealed, { passphrase: "hunter3" }, "typed.age");
    expect(wrong.failure).toMatchObject({ code: "ACCESS_DENIED", message: "the passphrase given does not decrypt typed.age" });
    expect(wrong.plaintext.length).toBe(0);
  });
});

describe("decryption failures", () => {
  let plaintext: Buffer;
  let sealed: Buffer;
  /** Where the payload starts: after the header and the 16-byte nonce. */
  let payloadAt: number;

  beforeAll(async () => {
    plaintext = randomBytes(3 * chunk + 100);
    sealed = await runProgram("age", ["-e", "-r", alice.recipient], plaintext);
    payloadAt = sealed.indexOf("\n", sealed.indexOf("\n--- ") + 1) + 1 + 16;
    expect(sealed.length).toBe(payloadAt + plaintext.length + 4 * 16);
  });

  it("a wrong identity is ACCESS_DENIED before any plaintext", async () => {
    const { plaintext: out, failure } = await decryptFailing(sealed, { identities: [mallory.identity] });
    expect(failure).toMatchObject({
      code: "ACCESS_DENIED",
      message: "none of the age identities given can decrypt backup-1.dump.gz.age (it is encrypted to other recipients)",
    });
    expect(out.length).toBe(0);
  });

  it("no key at all says what to set, for recipients and for a passphrase", async () => {
    const { failure } = await decryptFailing(sealed, undefined);
    expect(failure).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect((failure as Error).message).toMatch(/encrypted to age recipients: give the identity with --identity-file or HOARD_AGE_IDENTITY/);
    const byPassphrase = await through(encryptor({ passphrase: "pw" }), Buffer.from("x"));
    const { failure: noPassphrase } = await decryptFailing(byPassphrase, { identities: [alice.identity] });
    expect(noPassphrase).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect((noPassphrase as Error).message).toMatch(/encrypted with a passphrase: set HOARD_ENCRYPTION_PASSPHRASE or --passphrase-file/);
  });

  it("a changed header byte fails before any plaintext: a stanza as a key that does not fit, the MAC as CORRUPT_ARCHIVE", async () => {
    const tampered = Buffer.from(sealed);
    // A letter of the X25519 stanza's body (the wrapped file key), kept base64: like age itself,
    // hoard cannot tell a damaged stanza from one for another key.
    const at = sealed.indexOf("\n", 23) + 3;
    tampered[at] = tampered[at] === 0x41 ? 0x42 : 0x41;
    const { plaintext: out, failure } = await decryptFailing(tampered, { identities: [alice.identity] });
    expect(failure).toMatchObject({ code: "ACCESS_DENIED" });
    expect(out.length).toBe(0);
    const macAt = sealed.indexOf("\n--- ") + 6;
    const badMac = Buffer.from(sealed);
    badMac[macAt] = badMac[macAt] === 0x41 ? 0x42 : 0x41;
    const mac = await decryptFailing(badMac, { identities: [alice.identity] });
    expect(mac.failure).toMatchObject({ code: "CORRUPT_ARCHIVE" });
    expect((mac.failure as Error).message).toMatch(
      /^backup-1\.dump\.gz\.age is damaged or truncated \(its age header: invalid header HMAC\)$/,
    );
    expect(mac.plaintext.length).toBe(0);
  });

  it("a flipped payload byte is CORRUPT_ARCHIVE; only the chunks before it come out", async () => {
    for (const [chunkIndex, expected] of [
      [0, 0],
      [1, chunk],
      [3, 3 * chunk],
    ] as const) {
      const tampered = Buffer.from(sealed);
      const at = payloadAt + chunkIndex * (chunk + 16) + 10;
      tampered[at] = (sealed[at] as number) ^ 0x01;
      const { plaintext: out, failure } = await decryptFailing(tampered, { identities: [alice.identity] });
      expect(failure).toMatchObject({ code: "CORRUPT_ARCHIVE" });
      expect((failure as Error).message).toMatch(/^backup-1\.dump\.gz\.age is damaged or truncated \(/);
      expect(out.length).toBe(expected);
      expect(out.equals(plaintext.subarray(0, expected))).toBe(true);
    }
  });

  it("a truncated file is CORRUPT_ARCHIVE wherever it is cut, and so is one with bytes appended", async () => {
    const cuts = [
      0,
      10,
      payloadAt - 20,
      payloadAt - 5,
      payloadAt,
      payloadAt + 1000,
      payloadAt + chunk + 16,
      payloadAt + 3 * (chunk + 16),
      sealed.length - 1,
    ];
    for (const cut of cuts) {
      const { plaintext: out, failure } = await decryptFailing(sealed.subarray(0, cut), { identities: [alice.identity] });
      expect(failure, `cut at ${cut}`).toMatchObject({ code: "CORRUPT_ARCHIVE" });
      expect(out.equals(plaintext.subarray(0, out.length))).toBe(true);
      expect(out.length).toBeLessThan(plaintext.length);
    }
    const longer = await decryptFailing(Buffer.concat([sealed, Buffer.from("more")]), { identities: [alice.identity] });
    expect(longer.failure).toMatchObject({ code: "CORRUPT_ARCHIVE" });
  });

  it("something that is not an age file is CORRUPT_ARCHIVE, an armored one UNSUPPORTED_FORMAT", async () => {
    const gzip = await decryptFailing(Buffer.from("1f8b0800000000000003", "hex"), { identities: [alice.identity] }, "b.dump.gz.age");
    expect(gzip.failure).toMatchObject({
      code: "CORRUPT_ARCHIVE",
      message: 'b.dump.gz.age is not an age file (it does not start with "age-encryption.org/v1")',
    });
    const armored = await runProgram("age", ["-e", "-a", "-r", alice.recipient], Buffer.from("hello"));
    expect((await decryptFailing(armored, { identities: [alice.identity] })).failure).toMatchObject({ code: "UNSUPPORTED_FORMAT" });
  });
});

describe("options", () => {
  it("a mistyped recipient fails, naming it: validateRecipient before any work, the stream on its first write", async () => {
    const typo = `${alice.recipient.slice(0, -1)}${alice.recipient.endsWith("q") ? "p" : "q"}`;
    const stream = encryptor({ recipients: [bob.recipient, typo] });
    const failed = new Promise<unknown>((resolve) => stream.on("error", resolve));
    stream.end(Buffer.from("data"));
    stream.resume();
    expect(await failed).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringContaining(typo) });
    await expect(validateRecipient(typo)).rejects.toThrow(new RegExp(`^invalid age recipient "${typo}" \\(`));
    await expect(validateRecipient("ssh-ed25519 AAAAC3Nza")).rejects.toThrow(/ssh recipients are not supported/);
    expect(() => encryptor({ recipients: [alice.recipient], passphrase: "x" })).toThrow(/not both/);
    expect(() => encryptor({ passphrase: "" })).toThrow(/passphrase is empty/);
  });

  it("an invalid identity fails without repeating it", async () => {
    const broken = `${alice.identity.slice(0, -3)}AAA`;
    let failure: unknown;
    try {
      await validateIdentity(broken);
    } catch (error) {
      failure = error;
    }
    expect(failure).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect((failure as Error).message).not.toContain(broken.slice(16, 40));
    const stream = decryptor({ identities: [broken] }, "x.age");
    const failed = new Promise<Error>((resolve) => stream.on("error", resolve));
    stream.end(await through(encryptor({ recipients: [alice.recipient] }), Buffer.from("data")));
    stream.resume();
    const error = await failed;
    expect(error.message).toMatch(/invalid age identity/);
    expect(error.message).not.toContain(broken.slice(16, 40));
  });
});

describe("streaming", () => {
  it("holds at most a chunk or two plus the stream buffers when nobody reads (back-pressure)", async () => {
    const stream = encryptor({ recipients: [alice.recipient] });
    let produced = 0;
    const source = new Readable({
      read() {
        produced += 16 * 1024;
        this.push(randomBytes(16 * 1024));
      },
    });
    source.pipe(stream);
    // Nobody reads from `stream`: the source must be stopped by back-pressure.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const held = produced;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(produced).toBe(held);
    expect(held).toBeLessThan(512 * 1024);
    source.destroy();
    stream.destroy();
  });

  it("a 64 MiB stream round-trips through encryptor and decryptor, never holding more than the stream buffers", async () => {
    const total = 64 * 1024 * 1024;
    let made = 0;
    let seen = 0;
    let mismatch = false;
    let mostHeld = 0;
    const pattern = (offset: number, length: number) => {
      const data = Buffer.allocUnsafe(length);
      for (let index = 0; index < length; index += 1) data[index] = (offset + index) % 251;
      return data;
    };
    const sealing = encryptor({ recipients: [alice.recipient] });
    const opening = decryptor({ identities: [alice.identity] }, "big.age");
    const held = () => sealing.writableLength + sealing.readableLength + opening.writableLength + opening.readableLength;
    await pipeline(
      new Readable({
        read() {
          if (made >= total) return this.push(null);
          const length = Math.min(100_003, total - made);
          this.push(pattern(made, length));
          made += length;
        },
      }),
      sealing,
      opening,
      new Writable({
        highWaterMark: 1,
        write(data: Buffer, _encoding, callback) {
          if (!data.equals(pattern(seen, data.length))) mismatch = true;
          seen += data.length;
          mostHeld = Math.max(mostHeld, held());
          // A slow reader: the source must wait rather than pile up in between.
          setImmediate(callback);
        },
      }),
    );
    expect(mismatch).toBe(false);
    expect(seen).toBe(total);
    // The streams' buffers hold a few chunks at most (their high-water marks plus one 64 KiB chunk each).
    expect(mostHeld).toBeLessThan(1024 * 1024);
  });
});
