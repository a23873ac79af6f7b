import { readFile } from "node:fs/promises";
import {
  type DecryptionOptions,
  describeError,
  type EncryptionOptions,
  HoardError,
  validateIdentity,
  validateRecipient,
} from "@hoard/core";
import type { Argv } from "yargs";
import { UsageError } from "./arguments.js";
import { secretVariable, takeSecretVariables } from "./environment.js";

/** The passphrase (backup and restore) and the identities (restore, verify): secrets, so only variables, never flags. */
const passphraseVariable = "HOARD_ENCRYPTION_PASSPHRASE";
const identityVariable = "HOARD_AGE_IDENTITY";

// Read once at start-up and removed from the environment, so that dump and restore tools never inherit them.
takeSecretVariables([passphraseVariable, identityVariable]);

const group = "Encryption (age, https://age-encryption.org):";

/** yargs gives a string for one flag and an array for a repeated one (or one from the environment). */
function listOf(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map((item) => String(item).trim()).filter((item) => item !== "");
}

/** `--encrypt-to` values; each is checked by `encryptionFromArguments`, before anything is dumped. */
function parseRecipients(value: unknown): string[] {
  return listOf(value);
}

/**
 * The encryption options of `backup`: `--encrypt-to age1...` (repeatable), `--recipients-file`,
 * or a passphrase from HOARD_ENCRYPTION_PASSPHRASE / `--passphrase-file`. Secrets never on argv.
 */
export function withEncryptionOptions<T>(yargs: Argv<T>): Argv<T> {
  return yargs
    .option("encrypt-to", {
      type: "string",
      array: true,
      coerce: parseRecipients,
      group,
      describe: "encrypt the backup to this age public key, age1... (repeatable; any one of the keys decrypts it)",
    })
    .option("recipients-file", {
      type: "string",
      array: true,
      group,
      describe: "encrypt to the age public keys in this file: one per line, # comments (repeatable; as age -R)",
    })
    .option("passphrase-file", {
      type: "string",
      group,
      describe: `encrypt with the passphrase in this file (its first line), instead of keys; or set ${passphraseVariable}`,
    }) as Argv<T>;
}

/** The keys of `restore` and `verify`: `--identity-file`, HOARD_AGE_IDENTITY, the passphrase. */
export function withDecryptionOptions<T>(yargs: Argv<T>): Argv<T> {
  return yargs
    .option("identity-file", {
      type: "string",
      array: true,
      group,
      describe: `decrypt .age backups with the age identities (AGE-SECRET-KEY-1...) in this file, as age-keygen writes it (repeatable); or set ${identityVariable} to the file's contents`,
    })
    .option("passphrase-file", {
      type: "string",
      group,
      describe: `decrypt .age backups made with the passphrase in this file (its first line); or set ${passphraseVariable}`,
    }) as Argv<T>;
}

async function readOptionFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`${flag} ${path}: ${describeError(error).replace(/^[A-Z]+: /, "")}`);
  }
}

/** The meaningful lines of an age recipients or identity file: trimmed, without blank lines and # comments. */
function keyLines(text: string): Array<{ line: number; text: string }> {
  return text
    .split(/\r?\n/)
    .map((line, index) => ({ line: index + 1, text: line.trim() }))
    .filter((entry) => entry.text !== "" && !entry.text.startsWith("#"));
}

/** The passphrase from exactly one place; a file's first line (age and editors end it with a newline, which is not part of it). */
async function passphraseFrom(args: Record<string, unknown>): Promise<string | undefined> {
  const fromVariable = secretVariable(passphraseVariable);
  const file = args.passphraseFile as string | undefined;
  if (fromVariable !== undefined && file !== undefined) {
    throw new UsageError(`the passphrase is given twice (${passphraseVariable} and --passphrase-file): give it once`);
  }
  if (file === undefined) return fromVariable;
  const passphrase = (await readOptionFile("--passphrase-file", file)).split(/\r?\n/)[0] ?? "";
  if (passphrase === "") throw new UsageError(`--passphrase-file ${file}: the first line is empty`);
  return passphrase;
}

/** The core encryption options from parsed arguments and the environment, or undefined. */
export async function encryptionFromArguments(args: Record<string, unknown>): Promise<EncryptionOptions | undefined> {
  const recipients = [...listOf(args.encryptTo)];
  for (const recipient of recipients) {
    try {
      await validateRecipient(recipient);
    } catch (error) {
      throw new UsageError(`--encrypt-to: ${describeError(error)}`);
    }
  }
  for (const path of listOf(args.recipientsFile)) {
    const lines = keyLines(await readOptionFile("--recipients-file", path));
    if (lines.length === 0) throw new UsageError(`--recipients-file ${path} holds no recipient`);
    for (const { line, text } of lines) {
      try {
        await validateRecipient(text);
      } catch (error) {
        throw new UsageError(`--recipients-file ${path}, line ${line}: ${describeError(error)}`);
      }
      recipients.push(text);
    }
  }
  const passphrase = await passphraseFrom(args);
  if (passphrase !== undefined && recipients.length > 0) {
    throw new UsageError(
      "encrypt to keys (--encrypt-to, --recipients-file) or with a passphrase, not both: age allows a passphrase only on its own",
    );
  }
  if (passphrase !== undefined) return { passphrase };
  return recipients.length > 0 ? { recipients } : undefined;
}

/** The identities in an identity file or HOARD_AGE_IDENTITY; a bad line is named by number, never shown. */
async function identitiesIn(text: string, source: string): Promise<string[]> {
  const lines = keyLines(text);
  if (lines.length === 0) throw new UsageError(`${source} holds no age identity`);
  const identities: string[] = [];
  for (const { line, text: identity } of lines) {
    try {
      await validateIdentity(identity);
    } catch (error) {
      const reason = HoardError.isInstance(error) ? error.message : "invalid age identity";
      throw new UsageError(`${source}, line ${line}: ${reason}`);
    }
    identities.push(identity);
  }
  return identities;
}

/** The core decryption options from parsed arguments and the environment, or undefined. */
export async function decryptionFromArguments(args: Record<string, unknown>): Promise<DecryptionOptions | undefined> {
  const identities: string[] = [];
  const fromVariable = secretVariable(identityVariable);
  if (fromVariable !== undefined) identities.push(...(await identitiesIn(fromVariable, identityVariable)));
  for (const path of listOf(args.identityFile)) {
    identities.push(...(await identitiesIn(await readOptionFile("--identity-file", path), `--identity-file ${path}`)));
  }
  const passphrase = await passphraseFrom(args);
  if (identities.length === 0 && passphrase === undefined) return undefined;
  return { ...(identities.length > 0 && { identities }), ...(passphrase !== undefined && { passphrase }) };
}
