import type { Readable } from "node:stream";
import type { Logger } from "./logger.js";

/** What a dump produced: a byte stream, or a directory for formats made of many files. */
export type DumpOutput =
  | {
      kind: "stream";
      /** The dump's bytes. The stream fails if the tool exits non-zero, and ends only after it exited 0. */
      stream: Readable;
    }
  | {
      kind: "directory";
      /** A directory the driver filled; the pipeline archives it and removes it. */
      path: string;
    };

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
  dump(context: DumpContext): Promise<DumpOutput>;
  restore(input: RestoreInput, context: RestoreContext): Promise<void>;
}
