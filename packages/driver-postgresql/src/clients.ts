import { readdir, realpath } from "node:fs/promises";
import { basename, delimiter, join } from "node:path";
import { HoardError } from "@hoard/core";
import { findExecutable, runTool } from "@hoard/core/plugin";
import { toolVersion } from "./inspect.js";

/** The PostgreSQL client tools hoard runs. */
export type ClientToolName = "pg_dump" | "pg_restore" | "psql";

/** One installed set of client tools (pg_dump, pg_restore, psql side by side in one directory). */
export interface PostgresClientTools {
  /** The directory holding them. */
  directory: string;
  /** pg_dump's version, e.g. `15.19`. */
  version: string;
  /** Its major version: 15 for 15.19, 9.6 for 9.6.24. */
  major: number;
  /** Path of one of the tools in {@link directory}. */
  path(name: ClientToolName): string;
}

/** A server's version as it reports it. */
export interface ServerVersion {
  /** `server_version`, e.g. `17.2` or `16.4 (Debian 16.4-1.pgdg120+1)`. */
  text: string;
  /** Its major version: 17, or 9.6. */
  major: number;
}

/** The major of a version string: `15.19` -> 15, `9.6.24` -> 9.6, `18beta1` -> 18. */
export function majorOfVersion(version: string): number {
  const [first = "0", second = "0"] = version.split(/[^\d]+/);
  const major = Number(first);
  return major >= 10 ? major : Number(`${major}.${second}`);
}

/** The server's version from `server_version_num` and `server_version` (one line each). */
export function parseServerVersion(numeric: string, text: string): ServerVersion {
  const number = Number(numeric.trim());
  // 170002 -> 17; before 10, two parts: 90624 -> 9.6.
  const major = number >= 100_000 ? Math.floor(number / 10_000) : Math.floor(number / 10_000) + (Math.floor(number / 100) % 100) / 10;
  return { text: toolVersion(text), major };
}

/** The Debian (and Ubuntu) package that carries the client tools of a major. */
export function clientPackage(major: number): string {
  return `postgresql-client-${major}`;
}

/**
 * Every set of client tools installed: the directory of `binDirectory` alone when given (the
 * user's choice, `--pg-bin-dir`); else each directory of PATH that holds pg_dump (but Debian's
 * pg_wrapper), then `/usr/lib/postgresql/<major>/bin` (Debian, Ubuntu) and
 * `/usr/pgsql-<major>/bin` (PGDG RPMs).
 * Each pg_dump is asked its version; a version found twice (Debian's `/usr/bin` wrapper and the
 * directory it leads to) counts once, as the first found. Newest first.
 */
export async function installedClients(binDirectory: string | undefined, signal?: AbortSignal): Promise<PostgresClientTools[]> {
  const directories = binDirectory !== undefined ? [binDirectory] : await searchedDirectories();
  const found = new Map<string, PostgresClientTools>();
  for (const directory of directories) {
    const pgDump = await findExecutable([join(directory, "pg_dump")]);
    if (pgDump === undefined) continue;
    // Debian's /usr/bin/pg_dump is pg_wrapper, which picks a version per call (the newest, or as
    // PGCLUSTER and ~/.postgresqlrc say): take the versioned directories it leads to instead.
    if (binDirectory === undefined && basename(await realpath(pgDump).catch(() => pgDump)) === "pg_wrapper") continue;
    let output: string;
    try {
      output = await runTool(pgDump, { label: "pg_dump", args: ["--version"], signal });
    } catch (error) {
      if (binDirectory !== undefined) throw error;
      continue;
    }
    const version = toolVersion(output);
    if (found.has(version)) continue;
    found.set(version, { directory, version, major: majorOfVersion(version), path: (name) => join(directory, name) });
  }
  return [...found.values()].sort((left, right) => compareVersions(right.version, left.version));
}

async function searchedDirectories(): Promise<string[]> {
  const onPath = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  const versioned = async (parent: string, pattern: RegExp, bin: (name: string) => string) => {
    const names = await readdir(parent).catch(() => [] as string[]);
    return names.filter((name) => pattern.test(name)).map((name) => join(parent, bin(name)));
  };
  return [
    ...onPath,
    ...(await versioned("/usr/lib/postgresql", /^\d+(\.\d+)?$/, (name) => join(name, "bin"))),
    ...(await versioned("/usr", /^pgsql-\d+(\.\d+)?$/, (name) => join(name, "bin"))),
  ];
}

/** Orders `15.19` after `15.4` and `16.0` after both. */
export function compareVersions(left: string, right: string): number {
  const parts = (version: string) =>
    version
      .split(/[^\d]+/)
      .filter(Boolean)
      .map(Number);
  const a = parts(left);
  const b = parts(right);
  for (let index = 0; index < Math.max(a.length, b.length); index += 1) {
    const difference = (a[index] ?? 0) - (b[index] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

const noClients = (binDirectory: string | undefined) =>
  new HoardError(
    "TOOL_NOT_FOUND",
    binDirectory !== undefined
      ? `postgresql: no pg_dump in ${binDirectory} (--pg-bin-dir)`
      : "postgresql: pg_dump not found on PATH or in /usr/lib/postgresql/*/bin: install the PostgreSQL client tools (Debian: postgresql-client) in a version at least as new as the server, or give --pg-bin-dir",
  );

/**
 * The tools that dump a server: pg_dump refuses a server of a newer major than its own, so one
 * whose major is at least the server's. Of those, the server's own major when installed (its
 * dump then carries no settings that only newer servers know, and restores into a server like
 * the one it came from), else the nearest newer one. None fits: TOOL_NOT_FOUND naming the
 * version needed, before anything runs.
 */
export function chooseDumpClient(clients: PostgresClientTools[], server: ServerVersion, binDirectory?: string): PostgresClientTools {
  if (clients.length === 0) throw noClients(binDirectory);
  const fitting = clients.filter((client) => client.major >= server.major).sort((left, right) => left.major - right.major);
  const chosen = fitting[0];
  if (chosen) return chosen;
  const newest = clients[0] as PostgresClientTools;
  const where = binDirectory !== undefined ? ` in ${binDirectory} (--pg-bin-dir)` : " is the newest installed";
  throw new HoardError(
    "TOOL_NOT_FOUND",
    `postgresql: the server is PostgreSQL ${server.text}; pg_dump ${newest.version}${where} and cannot dump it: install ${clientPackage(server.major)} or give --pg-bin-dir`,
  );
}

/** How a restore runs: the tools, and whether they are newer than the server (then their script goes through the settings filter). */
export interface RestoreClientChoice {
  client: PostgresClientTools;
  /** The tools' major is newer than the server's: what they write may set parameters the server does not know. */
  newerThanServer: boolean;
}

/**
 * The tools that restore a dump made by pg_dump of major `dumpedBy` (undefined: not known, e.g.
 * plain SQL) into `server`. pg_restore reads archives of its own major and older only, so the
 * tools must be at least `dumpedBy`. Of those: the server's own major, else the nearest newer one
 * (its script is filtered of settings the server rejects), else the newest older one (older tools
 * restore into newer servers). None fits: TOOL_NOT_FOUND naming the version needed.
 */
export function chooseRestoreClient(
  clients: PostgresClientTools[],
  server: ServerVersion,
  dumpedBy: { version: string; major: number } | undefined,
  binDirectory?: string,
): RestoreClientChoice {
  if (clients.length === 0) throw noClients(binDirectory);
  const readable = clients.filter((client) => dumpedBy === undefined || client.major >= dumpedBy.major);
  if (readable.length === 0) {
    const newest = clients[0] as PostgresClientTools;
    const where = binDirectory !== undefined ? ` in ${binDirectory} (--pg-bin-dir)` : " is the newest installed";
    throw new HoardError(
      "TOOL_NOT_FOUND",
      `postgresql: the backup was written by pg_dump ${dumpedBy?.version}; pg_restore ${newest.version}${where} and cannot read it: install ${clientPackage(dumpedBy?.major ?? 0)} or give --pg-bin-dir`,
    );
  }
  const same = readable.find((client) => client.major === server.major);
  const newer = readable.filter((client) => client.major > server.major).sort((left, right) => left.major - right.major)[0];
  const client = same ?? newer ?? (readable[0] as PostgresClientTools);
  return { client, newerThanServer: client.major > server.major };
}
