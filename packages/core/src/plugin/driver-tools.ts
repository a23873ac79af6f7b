import { HoardError } from "../errors.js";
import { findExecutable, requireExecutable } from "../process.js";

export interface LocateToolOptions {
  /** The program the user configured: a name looked up on PATH, or a path. */
  configured?: string;
  /** The programs to look for on PATH when none is configured, in order: `["mariadb-dump", "mysqldump"]`. */
  names: readonly string[];
  /** What to install: `install the MariaDB client programs (Debian: apt install mariadb-client)`. */
  hint: string;
  /** The option that configures the program, for messages: `dumpExecutable`. */
  option?: string;
}

/**
 * The program a driver runs: the configured one, else the first of `names` on PATH. TOOL_NOT_FOUND
 * says what to install: `mariadb-dump or mysqldump not found on PATH: <hint>, or set dumpExecutable`,
 * or for a configured one `mariadb: dumpExecutable /opt/x is not an executable program: <hint>`.
 */
export async function locateTool(plugin: string, options: LocateToolOptions): Promise<string> {
  const { configured, names, hint, option } = options;
  if (configured === undefined) return requireExecutable(names, option ? `${hint}, or set ${option}` : hint);
  const found = await findExecutable([configured]);
  if (!found) {
    throw new HoardError("TOOL_NOT_FOUND", `${plugin}: ${option ? `${option} ` : ""}${configured} is not an executable program: ${hint}`);
  }
  return found;
}
