import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scrypt } from "node:crypto";
import { type Duplex, Transform, type TransformCallback } from "node:stream";
import { describeError, HoardError } from "./errors.js";

/**
 * How a backup is encrypted, in the age format (https://age-encryption.org): to age recipients
 * (public keys, `age1...`), or with a passphrase (age's scrypt recipient, which age allows only
 * on its own). Secrets come from the caller; hoard never logs them.
 */
export interface EncryptionOptions {
  /** age recipients, `age1...`. */
  recipients?: readonly string[];
  /** A passphrase; cannot be combined with recipients. */
  passphrase?: string;
}

/** What can decrypt an age-encrypted backup. */
export interface DecryptionOptions {
  /** age identities, `AGE-SECRET-KEY-1...`. */
  identities?: readonly string[];
  /** The passphrase the backup was encrypted with. */
  passphrase?: string;
}

/** How a backup was encrypted, as the manifest records it: public keys or "passphrase", never a secret. */
export interface EncryptionDescription {
  format: "age";
  recipients?: string[];
  passphrase?: boolean;
}

/** Whether these options encrypt at all (an empty recipient list and no passphrase do not). */
export function isEncrypting(options: EncryptionOptions | undefined): options is EncryptionOptions {
  return (options?.recipients?.length ?? 0) > 0 || options?.passphrase !== undefined;
}

/** The manifest's description of `options`, or undefined when they do not encrypt. */
export function describeEncryption(options: EncryptionOptions | undefined): EncryptionDescription | undefined {
  if (!isEncrypting(options)) return undefined;
  return options.passphrase !== undefined
    ? { format: "age", passphrase: true }
    : { format: "age", recipients: [...(options.recipients ?? [])] };
}

/** age's STREAM: the payload is sealed in chunks of 64 KiB, each with a 16-byte Poly1305 tag. */
const chunkSize = 64 * 1024;
const tagSize = 16;
const sealedChunkSize = chunkSize + tagSize;
/** The random nonce between the header and the payload, from which the payload key is derived. */
const payloadNonceSize = 16;
const versionLine = "age-encryption.org/v1\n";
const armorLine = "-----BEGIN AGE ENCRYPTED FILE-----";
/** A header with thousands of recipients fits; anything longer is not an age header. */
const maximumHeaderSize = 1024 * 1024;

/**
 * The age library, loaded on first use: it (and the cryptography it carries) costs about 16 MiB
 * and a quarter of a second, which a backup that does not encrypt should not pay.
 */
let ageLibrary: Promise<typeof import("age-encryption")> | undefined;
function age(): Promise<typeof import("age-encryption")> {
  ageLibrary ??= import("age-encryption");
  return ageLibrary;
}

/**
 * Checks one age recipient (`age1...`); throws INVALID_ARGUMENT naming it (a public key is not a
 * secret) and saying what is wrong.
 */
export async function validateRecipient(recipient: string): Promise<void> {
  const { Encrypter } = await age();
  if (/^ssh-(ed25519|rsa) /.test(recipient)) {
    throw new HoardError("INVALID_ARGUMENT", `ssh recipients are not supported: use an age key (age1..., from age-keygen)`);
  }
  try {
    new Encrypter().addRecipient(recipient);
  } catch (error) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `invalid age recipient "${recipient}" (${describeError(error)}): expected a public key age1... as age-keygen prints it`,
      { cause: error },
    );
  }
}

/**
 * Checks one age identity (`AGE-SECRET-KEY-1...`). Neither the message nor a cause carries it:
 * the library's own errors quote the key.
 */
export async function validateIdentity(identity: string): Promise<void> {
  const { Decrypter } = await age();
  try {
    new Decrypter().addIdentity(identity);
  } catch {
    const reason = identity.startsWith("AGE-SECRET-KEY-") ? "its checksum or length is wrong" : "it does not start with AGE-SECRET-KEY-1";
    throw new HoardError("INVALID_ARGUMENT", `invalid age identity (${reason}): expected AGE-SECRET-KEY-1... as age-keygen writes it`);
  }
}

/** The checks that need no key parsing: not both recipients and a passphrase, not an empty one, not nothing. */
function checkEncryptionShape(options: EncryptionOptions): void {
  const recipients = options.recipients ?? [];
  if (options.passphrase !== undefined && recipients.length > 0) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      "encrypt to recipients or with a passphrase, not both (age allows a passphrase only on its own)",
    );
  }
  if (options.passphrase === "") throw new HoardError("INVALID_ARGUMENT", "the encryption passphrase is empty");
  if (!isEncrypting(options)) throw new HoardError("INVALID_ARGUMENT", "no age recipient or passphrase to encrypt with");
}

/** Checks encryption options before any work: recipients parse, and not both recipients and a passphrase. */
export async function validateEncryption(options: EncryptionOptions): Promise<void> {
  checkEncryptionShape(options);
  for (const recipient of options.recipients ?? []) await validateRecipient(recipient);
}

/**
 * A stream that encrypts what is written to it into an age file (https://age-encryption.org/v1),
 * which the `age` command decrypts. Options are checked at once, recipients by the first write
 * (INVALID_ARGUMENT; callers check them earlier with `validateEncryption`). The header
 * (recipient stanzas and MAC) is made by the age-encryption library; the payload is sealed with
 * node:crypto's ChaCha20-Poly1305 in age's 64 KiB STREAM chunks (about 25 times faster than the
 * library's JavaScript cipher). Memory holds one chunk, whatever the size.
 */
export function encryptor(options: EncryptionOptions): Duplex {
  checkEncryptionShape(options);
  const header = validateEncryption(options).then(() => makeHeader(options));
  // Awaited by the first write or the end; a failure is reported there.
  header.catch(() => {});
  let seal: ChunkSealer | undefined;
  const start = async (stream: Transform): Promise<ChunkSealer> => {
    const made = await header;
    stream.push(made.prefix);
    seal = chunkSealer(made.payloadKey, (data) => stream.push(data));
    return seal;
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (seal) return sealOrFail(() => seal?.write(chunk), callback);
      start(this).then(
        (sealer) => sealOrFail(() => sealer.write(chunk), callback),
        (error: unknown) => callback(encryptionError(error)),
      );
    },
    flush(callback: TransformCallback) {
      (seal ? Promise.resolve(seal) : start(this)).then(
        (sealer) => sealOrFail(() => sealer.end(), callback),
        (error: unknown) => callback(encryptionError(error)),
      );
    },
  });
}

function sealOrFail(action: () => void, callback: TransformCallback): void {
  try {
    action();
  } catch (error) {
    callback(encryptionError(error));
    return;
  }
  callback();
}

function encryptionError(error: unknown): HoardError {
  if (HoardError.isInstance(error)) return error;
  return new HoardError("INTERNAL", `encrypting the backup failed: ${describeError(error)}`, { cause: error });
}

interface Header {
  /** The header and the payload nonce: what precedes the payload. */
  prefix: Buffer;
  payloadKey: Buffer;
}

/**
 * The age header for `options`, and the payload key. The library draws the file key and writes
 * the header; hoard learns the file key from the library's public interfaces: as an extra
 * recipient that adds no stanza (recipients), or as hoard's own scrypt recipient (a passphrase,
 * derived off the event loop: see `passphraseKey`). The library's output for an empty file is
 * header, nonce and the 16-byte tag of an empty last chunk; that tag checks the derived key.
 */
async function makeHeader(options: EncryptionOptions): Promise<Header> {
  const { Encrypter, Stanza } = await age();
  const encrypter = new Encrypter();
  let fileKey: Uint8Array | undefined;
  const capture = (key: Uint8Array) => {
    fileKey = Uint8Array.from(key);
  };
  if (options.passphrase !== undefined) {
    encrypter.addRecipient(scryptRecipient(options.passphrase, Stanza, capture));
  } else {
    encrypter.addRecipient({
      wrapFileKey(key: Uint8Array) {
        capture(key);
        return [];
      },
    });
    for (const recipient of options.recipients ?? []) encrypter.addRecipient(recipient);
  }
  const empty = Buffer.from(await encrypter.encrypt(new Uint8Array(0)));
  const prefix = empty.subarray(0, empty.length - tagSize);
  const nonce = prefix.subarray(prefix.length - payloadNonceSize);
  if (!fileKey) throw new HoardError("INTERNAL", "the age library did not hand over the file key");
  const payloadKey = derivePayloadKey(fileKey, nonce);
  // The empty last chunk the library sealed must open with the key derived here.
  openChunk(payloadKey, lastNonce(), empty.subarray(empty.length - tagSize));
  return { prefix: Buffer.from(prefix), payloadKey };
}

/** age's scrypt recipient: the label its passphrase key is salted with, and the work factor age uses. */
const scryptLabel = "age-encryption.org/v1/scrypt";
const scryptLogN = 18;
/** The most work a header may ask of a passphrase (age's own limit: about 1 GiB and many seconds). */
const scryptMaximumLogN = 20;

type StanzaClass = typeof import("age-encryption")["Stanza"];
type AgeStanza = InstanceType<StanzaClass>;

/**
 * age's passphrase key, by node:crypto's scrypt: on libuv's thread pool, where the library's own
 * (pure JavaScript) holds the event loop for the whole derivation (about 2 s and 256 MiB at age's
 * work factor, far longer on a busy machine), which in `hoard run` stalls every other job, the
 * health check and the metrics.
 */
function passphraseKey(passphrase: string, salt: Uint8Array, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  const r = 8;
  return new Promise((resolve, reject) =>
    scrypt(passphrase, Buffer.concat([Buffer.from(scryptLabel), salt]), 32, { N, r, p: 1, maxmem: 129 * N * r }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/** The file key sealed under a passphrase key: age's stanza body (ChaCha20-Poly1305, zero nonce). */
function sealFileKey(fileKey: Uint8Array, key: Buffer): Buffer {
  return Buffer.concat(sealChunk(key, Buffer.alloc(12), Buffer.from(fileKey)));
}

/** An age recipient for a passphrase: one `scrypt` stanza, as `age -p` writes it. Hands the file key to `capture`. */
function scryptRecipient(passphrase: string, Stanza: StanzaClass, capture: (key: Uint8Array) => void) {
  return {
    async wrapFileKey(fileKey: Uint8Array): Promise<AgeStanza[]> {
      capture(fileKey);
      const salt = randomBytes(16);
      const key = await passphraseKey(passphrase, salt, scryptLogN);
      return [new Stanza(["scrypt", salt.toString("base64").replace(/=+$/, ""), String(scryptLogN)], sealFileKey(fileKey, key))];
    },
  };
}

/**
 * An age identity for a passphrase, with the checks age makes: the scrypt stanza must be the only
 * one, well formed, and ask for no more than 2^20 work; null when the passphrase does not open it.
 */
function scryptIdentity(passphrase: string) {
  return {
    async unwrapFileKey(stanzas: AgeStanza[]): Promise<Uint8Array | null> {
      for (const stanza of stanzas) {
        if (stanza.args[0] !== "scrypt") continue;
        if (stanzas.length !== 1) throw new Error("scrypt recipient is not the only one in the header");
        const [, encodedSalt = "", work = ""] = stanza.args;
        if (stanza.args.length !== 3 || !/^[1-9][0-9]*$/.test(work) || !/^[A-Za-z0-9+/]{22}$/.test(encodedSalt)) {
          throw new Error("invalid scrypt stanza");
        }
        const logN = Number(work);
        if (logN > scryptMaximumLogN) throw new Error("scrypt work factor is too high");
        if (stanza.body.length !== 32) throw new Error("invalid stanza");
        const key = await passphraseKey(passphrase, Buffer.from(encodedSalt, "base64"), logN);
        try {
          return openChunk(key, Buffer.alloc(12), Buffer.from(stanza.body));
        } catch {
          return null;
        }
      }
      return null;
    },
  };
}

function derivePayloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", fileKey, nonce, "payload", 32));
}

/** A chunk nonce: an 11-byte big-endian counter and a last-chunk flag. */
type ChunkNonce = Buffer;

function firstNonce(): ChunkNonce {
  return Buffer.alloc(12);
}

function lastNonce(): ChunkNonce {
  const nonce = Buffer.alloc(12);
  nonce[11] = 1;
  return nonce;
}

function advance(nonce: ChunkNonce): void {
  for (let index = 10; index >= 0; index -= 1) {
    nonce[index] = ((nonce[index] as number) + 1) & 0xff;
    if (nonce[index] !== 0) return;
  }
  throw new HoardError("INTERNAL", "the age chunk counter overflowed");
}

function sealChunk(key: Buffer, nonce: ChunkNonce, plaintext: Buffer): Buffer[] {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: tagSize });
  const sealed = cipher.update(plaintext);
  cipher.final();
  return [sealed, cipher.getAuthTag()];
}

/** Opens one sealed chunk; throws when its tag does not verify. Nothing is returned before it does. */
function openChunk(key: Buffer, nonce: ChunkNonce, sealed: Buffer): Buffer {
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: tagSize });
  decipher.setAuthTag(sealed.subarray(sealed.length - tagSize));
  const plaintext = decipher.update(sealed.subarray(0, sealed.length - tagSize));
  decipher.final();
  return plaintext;
}

interface ChunkSealer {
  write(data: Buffer): void;
  end(): void;
}

/**
 * Seals the payload in 64 KiB chunks. A full chunk is held until more data comes, because the
 * last chunk (which may be full, or empty for an empty file) carries the last-chunk flag.
 */
function chunkSealer(key: Buffer, emit: (data: Buffer) => void): ChunkSealer {
  const nonce = firstNonce();
  const pending = Buffer.allocUnsafe(chunkSize);
  let used = 0;
  return {
    write(data) {
      let offset = 0;
      while (offset < data.length) {
        if (used === chunkSize) {
          for (const part of sealChunk(key, nonce, pending)) emit(part);
          advance(nonce);
          used = 0;
        }
        const copied = data.copy(pending, used, offset, offset + Math.min(chunkSize - used, data.length - offset));
        used += copied;
        offset += copied;
      }
    },
    end() {
      nonce[11] = 1;
      for (const part of sealChunk(key, nonce, pending.subarray(0, used))) emit(part);
    },
  };
}

/**
 * A stream that decrypts an age file. The header is opened first, so a wrong key or passphrase
 * fails (ACCESS_DENIED) before any plaintext is emitted, and a missing one (INVALID_ARGUMENT) says
 * what to set. Each 64 KiB chunk is emitted only after its tag verified; a tampered, truncated or
 * foreign file fails with CORRUPT_ARCHIVE. `name` names the object in messages. Memory holds one
 * chunk, whatever the size.
 */
export function decryptor(options: DecryptionOptions | undefined, name: string): Duplex {
  const identities = options?.identities ?? [];
  const passphrase = options?.passphrase;
  let head: Buffer = Buffer.alloc(0);
  let fileKey: Uint8Array | undefined;
  let payload: ChunkOpener | undefined;

  const corrupt = (reason: string, cause?: unknown) =>
    new HoardError("CORRUPT_ARCHIVE", `${name} is damaged or truncated (${reason})`, cause === undefined ? {} : { cause });

  /**
   * Gathers the header (opened as soon as it is whole) and the payload nonce; returns what follows
   * them, or undefined while they are incomplete. Both are small: gathering them costs nothing.
   */
  const takeHeader = async (chunk: Buffer, stream: Transform): Promise<Buffer | undefined> => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    if (fileKey === undefined) {
      checkVersion(head, name);
      const footer = head.indexOf("\n--- ");
      const end = footer < 0 ? -1 : head.indexOf("\n", footer + 1);
      if (end < 0) {
        if (head.length > maximumHeaderSize) throw corrupt("no end of the age header in its first MiB");
        return undefined;
      }
      fileKey = await openHeader(head.subarray(0, end + 1), identities, passphrase, name);
      head = head.subarray(end + 1);
    }
    if (head.length < payloadNonceSize) return undefined;
    payload = chunkOpener(derivePayloadKey(fileKey, head.subarray(0, payloadNonceSize)), (data) => stream.push(data));
    return head.subarray(payloadNonceSize);
  };

  const open = (action: () => void, callback: TransformCallback) => {
    try {
      action();
    } catch (error) {
      callback(HoardError.isInstance(error) ? error : corrupt(describeError(error), error));
      return;
    }
    callback();
  };

  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (payload) return open(() => payload?.write(chunk), callback);
      takeHeader(chunk, this).then(
        (rest) => open(() => rest && payload?.write(rest), callback),
        (error: unknown) => callback(HoardError.isInstance(error) ? error : corrupt(describeError(error), error)),
      );
    },
    flush(callback: TransformCallback) {
      if (!payload) {
        const where =
          fileKey === undefined ? (head.length === 0 ? "it is empty" : "it ends inside the age header") : "it ends before the payload";
        return callback(corrupt(where));
      }
      open(() => payload?.end(), callback);
    },
  });
}

function checkVersion(seen: Buffer, name: string): void {
  const length = Math.min(seen.length, versionLine.length);
  if (seen.subarray(0, length).equals(Buffer.from(versionLine).subarray(0, length))) return;
  if (
    seen.subarray(0, Math.min(seen.length, armorLine.length)).toString("latin1") ===
    armorLine.slice(0, Math.min(seen.length, armorLine.length))
  ) {
    throw new HoardError("UNSUPPORTED_FORMAT", `${name} is an armored (PEM) age file: convert it with age -d, or re-encrypt without -a`);
  }
  throw new HoardError("CORRUPT_ARCHIVE", `${name} is not an age file (it does not start with "age-encryption.org/v1")`);
}

/** The recipient types of a header's stanzas (`X25519`, `scrypt`, ...), for messages. */
function stanzaTypes(header: Buffer): string[] {
  return header
    .toString("latin1")
    .split("\n")
    .filter((line) => line.startsWith("-> "))
    .map((line) => line.split(" ")[1] ?? "");
}

/** Opens the header with the keys given: the file key, or a one-line error saying what to do. */
async function openHeader(
  header: Buffer,
  identities: readonly string[],
  passphrase: string | undefined,
  name: string,
): Promise<Uint8Array> {
  const types = stanzaTypes(header);
  const byPassphrase = types.includes("scrypt");
  if (byPassphrase && passphrase === undefined) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `${name} is encrypted with a passphrase: set HOARD_ENCRYPTION_PASSPHRASE or --passphrase-file`,
    );
  }
  if (!byPassphrase && identities.length === 0) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `${name} is encrypted to age recipients: give the identity with --identity-file or HOARD_AGE_IDENTITY`,
    );
  }
  // Checked here, where the library is loaded: its own errors would quote the key.
  for (const identity of identities) await validateIdentity(identity);
  const { Decrypter } = await age();
  const decrypter = new Decrypter();
  for (const identity of identities) decrypter.addIdentity(identity);
  if (passphrase !== undefined) decrypter.addIdentity(scryptIdentity(passphrase));
  try {
    return await decrypter.decryptHeader(header);
  } catch (error) {
    const reason = describeError(error);
    if (/no identity matched/.test(reason)) {
      throw new HoardError(
        "ACCESS_DENIED",
        byPassphrase
          ? `the passphrase given does not decrypt ${name}`
          : `none of the age identities given can decrypt ${name} (it is encrypted to other recipients)`,
        { cause: error },
      );
    }
    throw new HoardError("CORRUPT_ARCHIVE", `${name} is damaged or truncated (its age header: ${reason})`, { cause: error });
  }
}

interface ChunkOpener {
  write(data: Buffer): void;
  end(): void;
}

/**
 * Opens the payload chunk by chunk. A full sealed chunk is held until more data comes: only then
 * is it known not to be the last one (whose nonce carries the last-chunk flag).
 */
function chunkOpener(key: Buffer, emit: (data: Buffer) => void): ChunkOpener {
  const nonce = firstNonce();
  const pending = Buffer.allocUnsafe(sealedChunkSize);
  let used = 0;
  let first = true;
  const openHeld = (last: boolean) => {
    if (last) nonce[11] = 1;
    let plaintext: Buffer;
    try {
      plaintext = openChunk(key, nonce, pending.subarray(0, used));
    } catch (error) {
      throw new Error(last ? "the last chunk does not verify: cut short or altered" : "a chunk does not verify: altered", { cause: error });
    }
    if (last && !first && plaintext.length === 0) throw new Error("an empty last chunk after others");
    emit(plaintext);
    advance(nonce);
    used = 0;
    first = false;
  };
  return {
    write(data) {
      let offset = 0;
      while (offset < data.length) {
        if (used === sealedChunkSize) openHeld(false);
        const copied = data.copy(pending, used, offset, offset + Math.min(sealedChunkSize - used, data.length - offset));
        used += copied;
        offset += copied;
      }
    },
    end() {
      if (used < tagSize) throw new Error("it ends inside a chunk's tag");
      openHeld(true);
    },
  };
}
