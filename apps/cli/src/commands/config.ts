import type { CommandModule } from "yargs";
import { UsageError } from "../arguments.js";
import type { GlobalArguments } from "../context.js";

/** `hoard config check --config hoard.yaml`, `hoard config schema`. (Stub: being implemented.) */
export const configCommand: CommandModule<GlobalArguments, GlobalArguments> = {
  command: "config",
  describe: false,
  handler() {
    throw new UsageError("hoard config is not available yet");
  },
};
