import type { Readable } from "node:stream";
import type { Logger } from "./logger.js";

/**
 * What a dump produced: a byte stream, or a directory for formats made of many files. Either may
 * say that its tool compressed it already ({@link DumpCompressed}).
 */
export type DumpOutput =
  | ({
      kind: "stream";
      /** The dump's bytes. The stream fails if the tool exits non-zero, and ends only after it exited 0. */
      stream: Readable;
    } & DumpCompressed)
  | ({
      kind: "directory";
      /** A directory the driver filled; the pipeline archives it and removes it. */
      path: string;
    } & DumpCompressed);

/** Whether a dump's tool compressed it itself, as its output tells. */
export interface DumpCompressed {
  /**
   * Set when the tool compressed the dump's data itself, saying how, for the log: `gzip, each
   * table's file by pg_dump`. Compressing such output again costs a pass over it and saves
   * nothing, so a backup that names no compression stores it as it is (compression `none` in the
   * manifest, no `.gz` in the name); a compression the backup names is still applied. Absent: the
   * output is uncompressed, and the backup's compression (gzip by default) applies.
   */
  compressed?: string;
}

export interface DumpContext {
  signal?: AbortSignal;
  logger?: Logger;
  /** A private scratch directory, removed by the pipeline, for drivers that need one. */
  workDirectory: string;
}

/** What a restore reads: a byte stream, or a directory unpacked from a `.tar` archive. */
export type RestoreInput =
  | { kind: "stream"; stream: Readable /** Set when the stream comes from a local file. */; path?: string }
  | { kind: "directory"; path: string };

export interface RestoreContext {
  signal?: AbortSignal;
  logger?: Logger;
  workDirectory: string;
  /**
   * false (the default): the driver checks the target first and fails with TARGET_NOT_EMPTY,
   * before changing anything, when it already holds data (tables, collections, ...).
   * true: restore over it; objects that the backup contains are dropped and replaced, others are
   * left alone. Set by `hoard restore --replace`.
   */
  replace?: boolean;
}

/** The server and the dump tool behind a backup, as its manifest records them. */
export interface DumpDescription {
  /** e.g. `{ product: "PostgreSQL", version: "15.19" }`, `{ product: "MongoDB", version: "7.0.77" }`. */
  server?: { product: string; version: string };
  /** What writes the dump: `{ name: "pg_dump", version: "15.19" }`, or `{ name: "hoard built-in engine", version }`. */
  tool?: { name: string; version: string };
}

/** One table or collection, with its row or document count where the driver knows it. */
export interface InventoryItem {
  /** The database (or schema-qualified container) that holds it, where a backup may hold several. */
  database?: string;
  name: string;
  kind: "table" | "collection" | "view" | "sequence";
  /** Rows or documents; absent when not known cheaply. */
  count?: number;
}

/** What a database or a dump holds, as far as a driver can tell cheaply. */
export interface Inventory {
  items: InventoryItem[];
  /** Whether `count`s are exact (read from the dump or in its snapshot) rather than estimates. */
  exactCounts: boolean;
}

/** What checking an archive's own structure, without a database, found. */
export interface ArchiveCheck {
  /** One line for people: `custom format, 42 entries in the table of contents`. */
  summary: string;
  /** What the archive holds, where its structure tells. */
  inventory?: Inventory;
}

/** For calls that only ask the database or read an archive. */
export interface InspectContext {
  signal?: AbortSignal;
  logger?: Logger;
  /** A private scratch directory, removed by the pipeline. */
  workDirectory: string;
  /**
   * For `inventory`: count rows or documents exactly (which reads every table), and say so with
   * `exactCounts`. Asked of a drill's scratch database after the restore; a backup asks for cheap
   * counts. @default false
   */
  exactCounts?: boolean;
}

/** A scratch database made ready for a restore drill. */
export interface ScratchDatabase {
  /** Whether hoard created it (and `release` drops it) or the user gave an existing, empty one. */
  created: boolean;
  /** Drops what hoard created; never touches any other database. */
  release(): Promise<void>;
}

/**
 * Speaks to one kind of database through its own dump and restore tools. A driver is created for
 * one database URL; it knows nothing about storage or compression.
 */
export interface Driver {
  /** Short name for messages, e.g. `postgresql`. */
  readonly name: string;
  /** The database URL with the password removed. */
  readonly url: string;
  /** The extension of what `dump` produces, without dot and without compression, e.g. `dump`. */
  readonly extension: string;
  /**
   * Whether a restore whose input fails before its end (damaged, truncated, tampered) leaves the
   * database as it was, e.g. because it runs in one transaction or writes a file that replaces the
   * target only at the end. When not (the default), the restore pipeline authenticates an
   * encrypted backup completely (download to a temporary file, decrypt it to nowhere) before the
   * driver sees any of it, so a tampered ciphertext never reaches the database.
   */
  readonly atomicRestore?: boolean;
  dump(context: DumpContext): Promise<DumpOutput>;
  restore(input: RestoreInput, context: RestoreContext): Promise<void>;
  /** The server's and the dump tool's versions, asked before a dump; for the manifest. Optional. */
  describe?(context: InspectContext): Promise<DumpDescription>;
  /** The tables or collections of the database this driver was opened for; for manifests and drills. Optional. */
  inventory?(context: InspectContext): Promise<Inventory>;
  /**
   * Reads an archive this driver's `dump` wrote (already decrypted and decompressed) to its end and
   * checks its structure without a database; fails with CORRUPT_ARCHIVE on damage. Optional.
   */
  checkArchive?(input: RestoreInput, context: InspectContext): Promise<ArchiveCheck>;
  /**
   * Makes the database this driver was opened for ready for a restore drill: creates it when it
   * does not exist and the server allows, or accepts it when it exists and is empty; fails with
   * TARGET_NOT_EMPTY otherwise. Optional.
   */
  prepareScratch?(context: InspectContext): Promise<ScratchDatabase>;
}
