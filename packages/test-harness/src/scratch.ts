import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/*
 * Scratch names: every database, user or account a test run makes on a shared server carries the
 * run's tag (`hoard_pg_<tag>_<random>`), so the run's teardown can find and drop all of them, even
 * those made by a test worker that crashed, and can prove that none is left.
 */

/** A new run tag: 8 lowercase hex digits. */
export function newRunTag(): string {
  return randomBytes(4).toString("hex");
}

/** `<prefix>_<tag>_<random>`, e.g. `hoard_pg_1a2b3c4d_5e6f708192`: a plain identifier that teardown recognises. */
export function scratchName(prefix: string, runTag: string, separator = "_"): string {
  if (!/^[0-9a-f]{8}$/.test(runTag)) {
    throw new Error(`not a run tag (8 hex digits): ${JSON.stringify(runTag)}`);
  }
  return `${prefix}${separator}${runTag}${separator}${randomBytes(5).toString("hex")}`;
}

/** True when a name on a server was made by the run with this tag (it starts with `hoard` and carries the tag). */
export function madeByRun(name: string, runTag: string): boolean {
  return isTestName(name) && (name.includes(`_${runTag}_`) || name.includes(`-${runTag}-`));
}

/** True for names that hoard's tests own (the `hoard` prefix), whichever run made them. */
export function isTestName(name: string): boolean {
  return /^hoard[_-]/.test(name);
}

const runsDirectory = join(tmpdir(), "hoard-test-runs");

/**
 * Marks a run as live (a file named for the tag holding the pid) until the returned function is
 * called, so that another run's leftover check knows it is not alone on the shared servers.
 */
export function registerLiveRun(runTag: string): () => void {
  mkdirSync(runsDirectory, { recursive: true });
  const marker = join(runsDirectory, runTag);
  writeFileSync(marker, String(process.pid));
  return () => rmSync(marker, { force: true });
}

/** Tags of other runs whose process is still alive. */
export function otherLiveRuns(runTag: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(runsDirectory);
  } catch {
    return [];
  }
  return entries.filter((tag) => {
    if (tag === runTag) return false;
    try {
      process.kill(Number(readFileSync(join(runsDirectory, tag), "utf8")), 0);
      return true;
    } catch {
      return false;
    }
  });
}
