import type { CommandModule } from "yargs";
import { UsageError } from "../arguments.js";
import type { GlobalArguments } from "../context.js";

/** `hoard verify`: proves a stored backup intact (and with --drill, restorable). (Stub: being implemented.) */
export const verifyCommand: CommandModule<GlobalArguments, GlobalArguments> = {
  command: "verify",
  describe: false,
  handler() {
    throw new UsageError("hoard verify is not available yet");
  },
};
