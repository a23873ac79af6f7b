import { type BackupWithManifest, listBackupsWithManifests } from "@hoard/core";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { createLogger, type GlobalArguments, openCliStorage, type StorageArguments, withStorageOptions } from "../context.js";
import { withEnvironment } from "../environment.js";
import { watchInterrupts } from "../interrupt.js";
import { formatBytes, formatTable, writeResult } from "../output.js";
import { commandSummaries } from "./summaries.js";

interface ListArguments extends GlobalArguments, StorageArguments {
  storageUrl: string;
  prefix?: string;
  json: boolean;
}

export const listCommand: CommandModule<GlobalArguments, ListArguments> = {
  command: commandSummaries.list.command,
  describe: commandSummaries.list.describe,
  builder: (yargs) =>
    withEnvironment(
      withStorageOptions(yargs as Argv<GlobalArguments>)
        .positional("storage-url", { type: "string", demandOption: true })
        .option("prefix", { type: "string", describe: "only backups named <prefix>-<timestamp>.<ext>" })
        .option("json", { type: "boolean", default: false, describe: "print JSON" })
        .example("$0 list s3://backups/shop --json", "list as JSON"),
    ) as unknown as Argv<ListArguments>,
  async handler(args: ArgumentsCamelCase<ListArguments>) {
    const logger = createLogger(args);
    const interrupt = watchInterrupts();
    try {
      const work = async () => {
        const storage = await openCliStorage(args.storageUrl, args);
        return { storage, backups: await listBackupsWithManifests(storage, { prefix: args.prefix, signal: interrupt.signal }) };
      };
      const { storage, backups } = await interrupt.run(work(), { waitForCleanup: false, state: () => "nothing was changed" });
      logger.finish();
      if (args.json) {
        const rows = backups.map(({ key, prefix, time, extension, size, manifest }) => ({
          key,
          prefix,
          time: time.toISOString(),
          extension,
          size,
          manifest: manifest.state,
          ...(manifest.state === "present" && { sha256: manifest.manifest.object.sha256, manifestSize: manifest.manifest.object.size }),
          ...(manifest.state === "unreadable" && { manifestError: manifest.reason }),
        }));
        await writeResult(`${JSON.stringify(rows, null, 2)}\n`);
      } else if (backups.length === 0) {
        process.stderr.write(`no backups in ${storage.url}${args.prefix ? ` with prefix ${args.prefix}` : ""}\n`);
      } else {
        const rows = backups.map((entry) => [
          entry.key,
          formatBytes(entry.size),
          entry.time.toISOString(),
          manifestColumn(entry),
          checksumColumn(entry),
        ]);
        await writeResult(`${formatTable(["KEY", "SIZE", "TIME (UTC)", "MANIFEST", "SHA-256"], rows)}\n`);
      }
    } finally {
      interrupt.dispose();
    }
  },
};

/** `yes`, `none` (incomplete, older than manifests, or another tool's) or `unreadable`; `size differs` when the object is not the size its manifest records. */
function manifestColumn(entry: BackupWithManifest): string {
  if (entry.manifest.state === "missing") return "none";
  if (entry.manifest.state === "unreadable") return "unreadable";
  return entry.manifest.manifest.object.size === entry.size ? "yes" : "size differs";
}

/** The first 16 hex digits of the recorded SHA-256 (all of it is in --json). */
function checksumColumn(entry: BackupWithManifest): string {
  return entry.manifest.state === "present" ? entry.manifest.manifest.object.sha256.slice(0, 16) : "-";
}
