import { type FSWatcher, lstatSync, readdirSync, watch } from "node:fs";
import { join } from "node:path";

/** What a directory held while it was watched. */
export interface DirectoryUsage {
  /** The most bytes the files under the directory took at once (allocated blocks, as `du` counts them). */
  peakBytes: number;
  /** The most files (not directories) under it at once. */
  peakFiles: number;
  /**
   * Files (paths relative to the directory) that the watcher saw created or removed, however
   * short-lived (at most 20 kept); directories are left out.
   */
  files: string[];
  /** How many different files the watcher saw. */
  fileCount: number;
}

/** How often to look. */
export interface DirectoryUsageOptions {
  /** Milliseconds between two walks of the directory. @default 50 */
  sampleIntervalMs?: number;
}

const keptNames = 20;

/**
 * Watches the temporary directory a process was given (its TMPDIR) for what it writes there:
 * the directory is walked every 50 ms for the bytes and files under it (the peak is kept), and
 * an inotify watch (`fs.watch`, recursive) records every name created or removed, so even a file
 * that lived for less than one interval is seen (a name removed before it could be looked at, and
 * never seen as a directory, counts as a file). Only files count as disk: the empty work directory hoard
 * makes for every run is 4 KiB of directory entry, not data.
 */
export class DirectoryUsageSampler {
  readonly #directory: string;
  readonly #timer: NodeJS.Timeout;
  readonly #watcher: FSWatcher | undefined;
  readonly #usage: DirectoryUsage = { peakBytes: 0, peakFiles: 0, files: [], fileCount: 0 };
  /** Entries seen as directories, and entries that may be files (not seen as directories when reported). */
  readonly #directories = new Set<string>();
  readonly #entries = new Set<string>();

  constructor(directory: string, options: DirectoryUsageOptions = {}) {
    this.#directory = directory;
    this.#watcher = this.#watch();
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), options.sampleIntervalMs ?? 50);
  }

  /** Takes a last sample, stops watching and returns what was seen. */
  stop(): DirectoryUsage {
    this.#sample();
    clearInterval(this.#timer);
    this.#watcher?.close();
    const files = [...this.#entries].filter((name) => !this.#directories.has(name));
    return { ...this.#usage, files: files.slice(0, keptNames), fileCount: files.length };
  }

  #watch(): FSWatcher | undefined {
    try {
      const watcher = watch(this.#directory, { recursive: true }, (event, name) => {
        if (event !== "rename" || name === null) return;
        this.#entries.add(name);
        try {
          if (lstatSync(join(this.#directory, name)).isDirectory()) this.#directories.add(name);
        } catch {}
      });
      // A directory removed while watched ends the watch with an error: what was seen stays.
      watcher.on("error", () => {});
      return watcher;
    } catch {
      return undefined;
    }
  }

  #sample(): void {
    const { bytes, files } = walk(this.#directory, "", (name) => this.#directories.add(name));
    this.#usage.peakBytes = Math.max(this.#usage.peakBytes, bytes);
    this.#usage.peakFiles = Math.max(this.#usage.peakFiles, files);
  }
}

/**
 * Bytes allocated to the files under a directory and how many there are; entries that vanish while
 * walking are skipped. `onDirectory` gets each directory's path relative to the top.
 */
function walk(directory: string, relative: string, onDirectory: (name: string) => void): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  let entries: string[];
  try {
    entries = readdirSync(directory);
  } catch {
    return { bytes, files };
  }
  for (const entry of entries) {
    const path = join(directory, entry);
    try {
      const stats = lstatSync(path);
      if (stats.isDirectory()) {
        const name = relative === "" ? entry : join(relative, entry);
        onDirectory(name);
        const inner = walk(path, name, onDirectory);
        bytes += inner.bytes;
        files += inner.files;
      } else {
        bytes += stats.blocks * 512;
        files += 1;
      }
    } catch {}
  }
  return { bytes, files };
}
