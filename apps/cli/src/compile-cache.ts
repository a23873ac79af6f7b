import module from "node:module";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";

/**
 * Keeps V8's compiled code of hoard's modules (the CLI, core, yargs, the plugin the command loads)
 * between runs, so that a run does not compile them again: Node.js' module compile cache.
 *
 * hoard is run from cron and a restore is judged on its wall time, of which starting up is a fixed
 * part (docs/benchmarks.md). The cache lives in the user's own cache directory,
 * `$XDG_CACHE_HOME/hoard/compile-cache` (else `~/.cache/hoard/compile-cache`), never Node.js'
 * default of a shared directory under the system's temporary directory, where another local user
 * could place compiled code for hoard to load. NODE_COMPILE_CACHE=dir chooses another directory and
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off, as for any Node.js program.
 *
 * It is an optimisation only: where the directory cannot be created or written (a read-only root
 * file system, no home), Node.js reports that in the returned status, which is ignored, and hoard
 * compiles as before. Node.js versions without the API are left alone.
 */
export function enableCompileCache(): void {
  // With NODE_COMPILE_CACHE set, Node.js enabled the cache in that directory before hoard started.
  if (typeof module.enableCompileCache !== "function" || process.env.NODE_COMPILE_CACHE) return;
  const directory = compileCacheDirectory(process.env);
  if (directory !== undefined) module.enableCompileCache(directory);
}

/** `$XDG_CACHE_HOME/hoard/compile-cache`, else `~/.cache/hoard/compile-cache`; undefined without an absolute base. */
export function compileCacheDirectory(environment: NodeJS.ProcessEnv): string | undefined {
  const xdg = environment.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, "hoard", "compile-cache");
  let home: string;
  try {
    home = environment.HOME || homedir();
  } catch {
    return undefined;
  }
  return isAbsolute(home) ? join(home, ".cache", "hoard", "compile-cache") : undefined;
}
