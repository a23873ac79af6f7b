import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Runs `work` with a private temporary directory that is removed afterwards, whatever happens. */
export async function withWorkDirectory<T>(parent: string | undefined, work: (directory: string) => Promise<T>): Promise<T> {
  const directory = await mkdtemp(join(parent ?? tmpdir(), "hoard-"));
  try {
    return await work(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
