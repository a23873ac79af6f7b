import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import type { GlobalArguments } from "../context.js";
import { withEnvironment } from "../environment.js";
import { writeResult } from "../output.js";
import type { loadConfig } from "../service/config.js";
import { commandSummaries } from "./summaries.js";

interface ConfigArguments extends GlobalArguments {
  config: string;
}

const checkCommand: CommandModule<GlobalArguments, ConfigArguments> = {
  command: "check",
  describe: "Validate a config file without running anything: every problem, naming the job and the field",
  builder: (yargs) =>
    withEnvironment(
      (yargs as Argv<GlobalArguments>).option("config", { type: "string", demandOption: true, describe: "the config file" }),
    ) as unknown as Argv<ConfigArguments>,
  async handler(args: ArgumentsCamelCase<ConfigArguments>) {
    // Loaded here, not at start-up (yaml and zod cost every other command ~25 MiB).
    const { ConfigError, loadConfig } = await import("../service/config.js");
    let config: Awaited<ReturnType<typeof loadConfig>>;
    try {
      config = await loadConfig(args.config);
    } catch (error) {
      if (!(error instanceof ConfigError) || error.problems.length === 1) throw error;
      // Every problem at once, one line each; exit 2 like any bad input.
      process.stderr.write(error.problems.map((problem) => `hoard: ${problem}\n`).join(""));
      process.exitCode = 2;
      return;
    }
    const lines = config.jobs.map(
      (job) =>
        `${job.name}: on "${job.schedule}" (${job.timezone ?? "UTC"}) as ${job.prefix}${job.retention ? ", with retention" : ""}${
          job.notify.healthcheck || job.notify.webhooks.length > 0 ? ", with alerts" : ""
        }`,
    );
    await writeResult(`${config.file}: ${config.jobs.length} job${config.jobs.length === 1 ? "" : "s"}, valid\n${lines.join("\n")}\n`);
  },
};

const schemaCommand: CommandModule<GlobalArguments, GlobalArguments> = {
  command: "schema",
  describe: "Print the config file's JSON Schema (for editors: yaml-language-server)",
  async handler() {
    const { configJsonSchema } = await import("../service/config-schema.js");
    await writeResult(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  },
};

/** `hoard config check --config hoard.yaml`, `hoard config schema`. */
export const configCommand: CommandModule<GlobalArguments, GlobalArguments> = {
  command: commandSummaries.config.command,
  describe: commandSummaries.config.describe,
  builder: (yargs) =>
    (yargs as Argv<GlobalArguments>)
      .command(checkCommand)
      .command(schemaCommand)
      .demandCommand(1, "name a config command: check or schema") as unknown as Argv<GlobalArguments>,
  handler() {},
};
