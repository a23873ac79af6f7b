import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Binaries that scripts/install-tools.sh builds into `.cache/bin`. */
export type ToolName = "mongodump" | "mongorestore" | "versitygw" | "fake-gcs-server" | "ferretdb";

/** Absolute path of the repository root (packages/test-harness/src is three levels below it). */
export function repoRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
}

/** Absolute path of a tool in `.cache/bin`, whether or not it has been built yet. */
export function toolPath(name: ToolName): string {
  return join(repoRoot(), ".cache", "bin", name);
}

/** True when scripts/install-tools.sh has built the tool. */
export function hasTool(name: ToolName): boolean {
  return isExecutable(toolPath(name));
}

/** Path of a built tool; throws an error that says how to build it when it is missing. */
export function requireTool(name: ToolName): string {
  const path = toolPath(name);
  if (!isExecutable(path)) {
    throw new Error(
      `${name} is not built: expected ${path}. Run scripts/install-tools.sh (it builds the test servers with Go into .cache/bin).`,
    );
  }
  return path;
}

/** The MongoDB Database Tools that scripts/install-tools.sh builds from ../shared/third_party. */
export interface MongoTools {
  mongodump: string;
  mongorestore: string;
}

/**
 * Paths of mongodump and mongorestore in `.cache/bin`; throws, saying how to build them, when
 * either is missing. Tests hand these paths to the driver (mongodumpPath, mongorestorePath) rather
 * than changing PATH, so the built-in engine's tests never pick the tools up by accident.
 */
export function requireMongoTools(): MongoTools {
  const missing = (["mongodump", "mongorestore"] as const).filter((name) => !hasTool(name));
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(" and ")} not built: expected them in ${join(repoRoot(), ".cache", "bin")}. Run scripts/install-tools.sh ` +
        "(it builds them offline from ../shared/third_party/build-mongo-tools.sh; the Go module proxy refuses mongo-tools).",
    );
  }
  return { mongodump: toolPath("mongodump"), mongorestore: toolPath("mongorestore") };
}

/** True when the path is an executable file. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds an executable by name: first on PATH, then in the extra directories given (in order).
 * Returns the path as found (symbolic links kept: Debian's psql is a link to a wrapper that
 * looks at the name it was started by) or undefined.
 */
export function findExecutable(name: string, extraDirectories: readonly string[] = []): string | undefined {
  const pathDirectories = (process.env.PATH ?? "").split(delimiter).filter((entry) => entry !== "");
  for (const directory of [...pathDirectories, ...extraDirectories]) {
    const candidate = join(directory, name);
    if (existsSync(candidate) && isExecutable(candidate)) {
      return candidate;
    }
  }
  return undefined;
}
