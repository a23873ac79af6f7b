import type { DecryptionOptions, EncryptionOptions } from "@hoard/core";
import type { Argv } from "yargs";

/**
 * The encryption options of `backup`: `--encrypt-to age1...` (repeatable), `--recipients-file`,
 * or a passphrase from HOARD_ENCRYPTION_PASSPHRASE / `--passphrase-file`. Secrets never on argv.
 * (Stub: being implemented.)
 */
export function withEncryptionOptions<T>(yargs: Argv<T>): Argv<T> {
  return yargs;
}

/** The keys of `restore` and `verify`: `--identity-file`, HOARD_AGE_IDENTITY, the passphrase. (Stub.) */
export function withDecryptionOptions<T>(yargs: Argv<T>): Argv<T> {
  return yargs;
}

/** The core encryption options from parsed arguments and the environment, or undefined. (Stub.) */
export async function encryptionFromArguments(_args: Record<string, unknown>): Promise<EncryptionOptions | undefined> {
  return undefined;
}

/** The core decryption options from parsed arguments and the environment, or undefined. (Stub.) */
export async function decryptionFromArguments(_args: Record<string, unknown>): Promise<DecryptionOptions | undefined> {
  return undefined;
}
