import { HoardError } from "../errors.js";
import { defaultNetworkTimeoutMs } from "../storage.js";

/** `15 s`, `1.5 s`: a duration in milliseconds as seconds, for messages. */
export function secondsText(milliseconds: number): string {
  return `${Number((milliseconds / 1000).toFixed(3))} s`;
}

/**
 * A driver's connect timeout, checked: `milliseconds`, or the default (15 000) when unset.
 * INVALID_ARGUMENT `<plugin>: connectTimeoutMs must be a positive number of milliseconds, not 0`
 * for anything else.
 */
export function connectTimeoutMsOf(plugin: string, milliseconds: number | undefined): number {
  const value = milliseconds ?? defaultNetworkTimeoutMs;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new HoardError(
      "INVALID_ARGUMENT",
      `${plugin}: connectTimeoutMs must be a positive number of milliseconds, not ${String(milliseconds)}`,
    );
  }
  return value;
}

/**
 * The connect timeout in whole seconds, rounded up, for tools that take seconds
 * (`PGCONNECT_TIMEOUT`, `--connect-timeout`); at least `minimum` (libpq raises 1 to 2).
 */
export function connectTimeoutSecondsOf(plugin: string, milliseconds: number | undefined, minimum = 1): number {
  return Math.max(minimum, Math.ceil(connectTimeoutMsOf(plugin, milliseconds) / 1000));
}

/**
 * UNREACHABLE for a database host that took no connection or never answered within the connect
 * timeout: `postgresql: no answer from 127.0.0.1:5432 within 15 s`. The tool's error, if any, is
 * kept as the cause, and its stderr as the detail.
 */
export function noAnswerError(plugin: string, address: string, timeoutMs: number, cause?: unknown): HoardError {
  const detail = HoardError.isInstance(cause) ? cause.detail : undefined;
  return new HoardError("UNREACHABLE", `${plugin}: no answer from ${address} within ${secondsText(timeoutMs)}`, { cause, detail });
}

/**
 * Decodes a percent-encoded part of a database URL (user name, password, database name). A bad
 * encoding fails with INVALID_ARGUMENT naming the part, and never the text or the URL, which may
 * hold (part of) the password: `mariadb: the password in the database URL is badly percent-encoded: write % as %25`.
 */
export function decodeUrlPart(plugin: string, text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    throw new HoardError("INVALID_ARGUMENT", `${plugin}: the ${what} in the database URL is badly percent-encoded: write % as %25`, {
      cause: error,
    });
  }
}

/** Whether a text is well percent-encoded (`decodeURIComponent` takes it). */
export function percentDecodes(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

/** What a restore target holds, of one kind: `{ kind: "table", count: 3, examples: ["a", "b"] }`. */
export interface FoundObjects {
  kind: string;
  count: number;
  /** A few names, in the order to show them. */
  examples: readonly string[];
  /** @default `${kind}s` */
  plural?: string;
}

export interface DescribeFoundOptions {
  /** How many names are shown at most, over all kinds. @default 2 */
  examples?: number;
  /** Names the only object when there is one: `1 collection: notes` instead of `1 collection, e.g. notes`. */
  nameTheOnlyOne?: boolean;
}

/** `3 tables, 1 view, e.g. customers, orders`: counts per kind in the order given, then a few names. */
export function describeFound(found: readonly FoundObjects[], options: DescribeFoundOptions = {}): string {
  const counts = found.map(({ kind, count, plural }) => `${count} ${count === 1 ? kind : (plural ?? `${kind}s`)}`);
  const examples = found.flatMap((entry) => entry.examples).slice(0, options.examples ?? 2);
  if (options.nameTheOnlyOne && found.length === 1 && found[0]?.count === 1 && examples.length === 1) {
    return `${counts[0]}: ${examples[0]}`;
  }
  return `${counts.join(", ")}${examples.length > 0 ? `, e.g. ${examples.join(", ")}` : ""}`;
}

/**
 * TARGET_NOT_EMPTY, the restore's refusal to write over data:
 * `mariadb: shop is not empty (3 tables, e.g. a, b); use --replace to restore over it`. `target`
 * is what was checked, `found` what it holds ({@link describeFound}); `many` when `target` names
 * several databases (`... are not empty; use --replace to restore over them`).
 */
export function targetNotEmpty(plugin: string, target: string, found?: string, many = false): HoardError {
  return targetNotEmptyError(plugin, `${target} ${many ? "are" : "is"} not empty${found ? ` (${found})` : ""}`, many);
}

/** TARGET_NOT_EMPTY with a statement of the driver's own: `<plugin>: <statement>; use --replace to restore over it`. */
export function targetNotEmptyError(plugin: string, statement: string, many = false): HoardError {
  return new HoardError("TARGET_NOT_EMPTY", `${plugin}: ${statement}; use --replace to restore over ${many ? "them" : "it"}`);
}
