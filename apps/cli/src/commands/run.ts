import type { CommandModule } from "yargs";
import { UsageError } from "../arguments.js";
import type { GlobalArguments } from "../context.js";

/** `hoard run --config hoard.yaml`: every job of a config file in one process. (Stub: being implemented.) */
export const runCommand: CommandModule<GlobalArguments, GlobalArguments> = {
  command: "run",
  describe: false,
  handler() {
    throw new UsageError("hoard run is not available yet");
  },
};
