import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import { UsageError } from "../arguments.js";
import { type GlobalArguments, type StorageArguments, withDriverOptions, withStorageOptions } from "../context.js";
import { withEnvironment } from "../environment.js";
import { commandSummaries } from "./summaries.js";

interface RunArguments extends GlobalArguments, StorageArguments {
  config: string;
  listen?: string;
}

/** `--listen host:port`, or `false`/`off` for no server. */
function parseListen(value: unknown): { host: string; port: number } | false {
  const text = String(Array.isArray(value) ? value.at(-1) : value).trim();
  if (/^(false|off|no)$/i.test(text)) return false;
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65_535) throw new UsageError(`invalid --listen "${text}": use host:port, e.g. 127.0.0.1:9464, or off`);
  return { host: (match[1] as string).replace(/^\[(.*)\]$/, "$1"), port };
}

/** `hoard run --config hoard.yaml`: every job of a config file in one process. */
export const runCommand: CommandModule<GlobalArguments, RunArguments> = {
  command: commandSummaries.run.command,
  describe: commandSummaries.run.describe,
  builder: (yargs) =>
    withEnvironment(
      withDriverOptions(withStorageOptions(yargs as Argv<GlobalArguments>))
        .usage(
          "$0 run --config hoard.yaml\n\nRun every job of a config file on its schedule. The plugin options below are defaults for every job; a job's settings: win.",
        )
        .option("config", {
          type: "string",
          demandOption: true,
          describe: "the config file, e.g. /etc/hoard/hoard.yaml (see docs/unattended.md)",
        })
        .option("listen", {
          type: "string",
          describe: "serve /metrics and /healthz on host:port instead of the config's listen (off: none)",
        })
        .example("$0 run --config /etc/hoard/hoard.yaml", "back up every job on its schedule")
        .example("$0 config check --config /etc/hoard/hoard.yaml", "validate the file first"),
    ) as unknown as Argv<RunArguments>,
  async handler(args: ArgumentsCamelCase<RunArguments>) {
    const listen = args.listen === undefined ? undefined : parseListen(args.listen);
    // Loaded here, not at start-up: yaml, zod and prom-client cost every other command ~35 MiB and 0.5 s.
    const [{ loadConfig }, { runService }] = await Promise.all([import("../service/config.js"), import("../service/runner.js")]);
    const config = await loadConfig(args.config);
    const status = await runService(config, args, listen === undefined ? {} : { listen });
    if (status !== 0) process.exitCode = status;
  },
};
