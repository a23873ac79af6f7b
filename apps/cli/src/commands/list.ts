import { listBackups } from "@hoard/core";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { createLogger, type GlobalArguments, openCliStorage, type StorageArguments, withStorageOptions } from "../context.js";
import { withEnvironment } from "../environment.js";
import { watchInterrupts } from "../interrupt.js";
import { formatBytes, formatTable, writeResult } from "../output.js";

interface ListArguments extends GlobalArguments, StorageArguments {
  storageUrl: string;
  prefix?: string;
  json: boolean;
}

export const listCommand: CommandModule<GlobalArguments, ListArguments> = {
  command: "list <storage-url>",
  describe: "List the backups in storage, newest first",
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
        return { storage, backups: await listBackups(storage, { prefix: args.prefix, signal: interrupt.signal }) };
      };
      const { storage, backups } = await interrupt.run(work(), { waitForCleanup: false, state: () => "nothing was changed" });
      logger.finish();
      if (args.json) {
        const rows = backups.map(({ key, prefix, time, extension, size }) => ({ key, prefix, time: time.toISOString(), extension, size }));
        await writeResult(`${JSON.stringify(rows, null, 2)}\n`);
      } else if (backups.length === 0) {
        process.stderr.write(`no backups in ${storage.url}${args.prefix ? ` with prefix ${args.prefix}` : ""}\n`);
      } else {
        const rows = backups.map((entry) => [entry.key, formatBytes(entry.size), entry.time.toISOString()]);
        await writeResult(`${formatTable(["KEY", "SIZE", "TIME (UTC)"], rows)}\n`);
      }
    } finally {
      interrupt.dispose();
    }
  },
};
