import type { Duplex } from "node:stream";
import { HoardError } from "./errors.js";

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

/** A stream that encrypts what is written to it into an age file. (Stub: being implemented.) */
export function encryptor(_options: EncryptionOptions): Duplex {
  throw new HoardError("INTERNAL", "encryption is not implemented yet");
}

/**
 * A stream that decrypts an age file; a wrong key fails before any plaintext is emitted, a
 * tampered or truncated file fails with CORRUPT_ARCHIVE. `name` names the object in messages.
 * (Stub: being implemented.)
 */
export function decryptor(_options: DecryptionOptions | undefined, _name: string): Duplex {
  throw new HoardError("INTERNAL", "decryption is not implemented yet");
}
