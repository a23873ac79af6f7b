import { randomBytes } from "node:crypto";

/** A server started (or found) by the harness. */
export interface RunningServer {
  /** Stops the server if the harness started it, and removes what the harness made. Idempotent. */
  stop(): Promise<void>;
}

/** Where a database server came from. */
export type ServerOrigin =
  /** Given by an environment variable (HOARD_TEST_*_URL). */
  | "environment"
  /** Already running on the machine at its standard port. */
  | "machine"
  /** Started by the harness on a free port with a temporary data directory. */
  | "throwaway";

/** Wraps a stop function so that it runs at most once. */
export function stopOnce(stop: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= stop();
    return stopping;
  };
}

/** A random lowercase name with a prefix, for databases and buckets. */
export function randomName(prefix: string, separator = "_"): string {
  return `${prefix}${separator}${randomBytes(6).toString("hex")}`;
}

/** Throws unless the name is a plain SQL identifier (letters, digits, underscore). */
export function assertPlainIdentifier(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`not a plain database name (letters, digits and _ only, at most 63): ${JSON.stringify(name)}`);
  }
}
