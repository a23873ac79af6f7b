import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ArchiveCheck, Driver, RestoreInput } from "../driver.js";
import type { DecryptionOptions } from "../encryption.js";
import { describeError, HoardError, toHoardError } from "../errors.js";
import { type Logger, log } from "../logger.js";
import { checksumMeter, type Manifest, manifestKey, readManifest } from "../manifest.js";
import { parseBackupKey } from "../naming.js";
import { peekStream } from "../peek.js";
import type { Storage } from "../storage.js";
import { resolveKey } from "./restore.js";
import { openInput } from "./unpack.js";
import { withWorkDirectory } from "./work-directory.js";

/** Opens the driver that checks archives of a kind (`postgresql`, ...), without a database connection; undefined when there is none. */
export type ArchiveDriverOpener = (kind: string) => Promise<Driver | undefined>;

export interface VerifyOptions {
  storage: Storage;
  /** The backup to verify. Give either this or `latest`. */
  key?: string;
  /** Verify the newest backup with this prefix. */
  latest?: { prefix: string };
  /** The manifest to check against, when the caller holds it (a backup that was just stored); read from storage otherwise. */
  manifest?: Manifest;
  /**
   * For a backup without a manifest (made before manifests, or by another tool): check only that it
   * decrypts, decompresses and has a sound structure, instead of failing. Size and checksum cannot
   * be checked then. A manifest that is there is checked all the same. @default false
   */
  structureOnly?: boolean;
  /**
   * The driver whose `checkArchive` reads the unpacked dump, or a function that opens one for the
   * manifest's database kind (or the kind the name and first bytes suggest). Without one, or when
   * the driver has no `checkArchive`, the dump is only decompressed to its end.
   */
  driver?: Driver | ArchiveDriverOpener;
  /** Keys for an encrypted (`.age`) backup. */
  decryption?: DecryptionOptions;
  /**
   * Check only the stored bytes against the manifest (size and SHA-256), without decrypting or
   * decompressing: for an encrypted backup when no key is at hand. Needs a manifest. @default false
   */
  checksumOnly?: boolean;
  logger?: Logger;
  signal?: AbortSignal;
  /** Where temporary files go (a `.tar` backup is unpacked there). @default os.tmpdir() */
  temporaryDirectory?: string;
}

export interface VerifyResult {
  key: string;
  /** The manifest it was checked against; absent for a structure-only check of a backup without one. */
  manifest?: Manifest;
  /** Bytes and SHA-256 of the stored object, as read. */
  size: number;
  sha256: string;
  /** The database kind whose archive check ran (from the manifest, or guessed); absent when none could tell. */
  kind?: string;
  /** What the driver's archive check found; absent when no driver could check this kind of archive. */
  archive?: ArchiveCheck;
  durationMs: number;
}

/**
 * Proves a stored backup intact without a database: streams the object once, checks its size and
 * SHA-256 against its manifest, decrypts and decompresses it to the end, and has the driver check
 * the archive's own structure. Memory stays flat (a `.tar` backup is unpacked to the temporary
 * directory). Fails with NOT_FOUND for a backup without a manifest (unless `structureOnly`), and
 * CORRUPT_ARCHIVE for anything that does not hold.
 */
export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  const { storage, logger, signal } = options;
  const started = Date.now();
  const key = await resolveKey(storage, options.key, options.latest, signal, logger, "verify");
  const name = key.slice(key.lastIndexOf("/") + 1);
  const manifest = options.manifest ?? (await readManifest(storage, key, { signal }));
  if (!manifest && !options.structureOnly) {
    throw new HoardError(
      "NOT_FOUND",
      `${key} has no manifest (${manifestKey(key).slice(key.lastIndexOf("/") + 1)}): it is incomplete, older than manifests or made by another tool; check its structure alone with structure-only (--structure-only)`,
    );
  }
  if (manifest) {
    const found = await storage.stat(key, { signal });
    if (found && found.size !== manifest.object.size && found.size !== 0) {
      throw new HoardError(
        "CORRUPT_ARCHIVE",
        `${name} is ${found.size} bytes, its manifest says ${manifest.object.size}: it is truncated or was replaced`,
      );
    }
  }
  try {
    return await withWorkDirectory(options.temporaryDirectory, async (workDirectory) => {
      const checksum = checksumMeter();
      if (options.checksumOnly) {
        if (!manifest) throw new HoardError("INVALID_ARGUMENT", `${name}: a checksum-only check needs a manifest`);
        const body = await storage.download(key, { signal });
        await pipeline(body, checksum.meter, new Writable({ write: (_chunk, _encoding, done) => done() }), { signal });
        const { size, sha256 } = checksum.result();
        checkAgainst(manifest, name, size, sha256);
        // Asked to verify, and able to check less than that: said every time, not left to be assumed.
        log(
          logger,
          "warn",
          `${name}: only its size and SHA-256 were verified against the manifest: it is encrypted to age recipients and no identity was given to decrypt it, so its contents were not checked`,
        );
        return { key, manifest, size, sha256, durationMs: Date.now() - started };
      }
      let input = await openInput({
        storage,
        key,
        mode: "stream",
        workDirectory,
        logger,
        signal,
        decryption: options.decryption,
        observe: checksum.meter,
      });
      let kind = manifest?.database.kind;
      if (input.kind === "stream") {
        const peeked = await peekStream(input.stream, 64);
        input = { ...input, stream: peeked.stream };
        kind ??= guessKind(key, peeked.head);
      }
      const driver = await driverFor(options.driver, kind);
      if (!manifest && !driver?.checkArchive) {
        throw new HoardError(
          "UNSUPPORTED_FORMAT",
          `${name}: cannot tell which database's archive it is${kind ? ` (${kind} has no archive check)` : ""}, so its structure cannot be checked`,
        );
      }
      let archive: ArchiveCheck | undefined;
      if (driver?.checkArchive) {
        archive = await driver.checkArchive(input, { signal, logger, workDirectory });
      }
      await readToEnd(input, name);
      const { size, sha256 } = checksum.result();
      if (manifest) checkAgainst(manifest, name, size, sha256);
      return {
        key,
        ...(manifest && { manifest }),
        size,
        sha256,
        ...(kind && driver?.checkArchive && { kind }),
        ...(archive && { archive }),
        durationMs: Date.now() - started,
      };
    });
  } catch (error) {
    if (signal?.aborted) throw new HoardError("ABORTED", `verification of ${key} aborted (${describeError(error)})`, { cause: error });
    throw toHoardError(error, "INTERNAL", `verification of ${key} failed`);
  }
}

function checkAgainst(manifest: Manifest, name: string, size: number, sha256: string): void {
  if (size === manifest.object.size && sha256 === manifest.object.sha256) return;
  throw new HoardError(
    "CORRUPT_ARCHIVE",
    `${name} does not match its manifest: ${size} bytes with SHA-256 ${sha256}, the manifest says ${manifest.object.size} bytes with ${manifest.object.sha256}`,
  );
}

async function driverFor(given: VerifyOptions["driver"], kind: string | undefined): Promise<Driver | undefined> {
  if (typeof given !== "function") return given;
  return kind === undefined ? undefined : given(kind);
}

/** Reads what the archive check left of a stream input, so the checksum sees every byte. */
async function readToEnd(input: RestoreInput, name: string): Promise<void> {
  if (input.kind !== "stream" || input.stream.readableEnded) return;
  if (input.stream.destroyed) {
    if (input.stream.errored) throw input.stream.errored;
    throw new HoardError("INTERNAL", `${name}: the archive check stopped reading before the end`);
  }
  await pipeline(input.stream, new Writable({ write: (_chunk, _encoding, done) => done() }));
}

/**
 * Which database made a backup without a manifest, from its name and first bytes: `dump` is
 * PostgreSQL, `archive` MongoDB, and `sql` whichever tool's banner it starts with.
 */
export function guessKind(key: string, head: Buffer): string | undefined {
  const extension = parseBackupKey(key.slice(key.lastIndexOf("/") + 1))?.extension ?? key.slice(key.indexOf(".") + 1);
  const payload = extension.split(".")[0]?.toLowerCase();
  if (payload === "dump") return "postgresql";
  if (payload === "archive") return "mongodb";
  const text = head.toString("latin1");
  if (/^(\/\*M!999999|-- MariaDB dump|-- MySQL dump)/.test(text)) return "mariadb";
  if (/^(PRAGMA |BEGIN TRANSACTION;)/.test(text)) return "sqlite";
  if (text.startsWith("PGDMP") || /^(--\s*\n)?--\s*PostgreSQL database/.test(text)) return "postgresql";
  return undefined;
}
