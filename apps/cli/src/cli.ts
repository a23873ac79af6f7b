#!/usr/bin/env node
import { installSignalHandlers, receivedSignal } from "./interrupt.js";
import { keepYoungGenerationSmall } from "./memory.js";

// First thing, before the modules that take a while to load: a signal never finds hoard without its handlers.
installSignalHandlers();
keepYoungGenerationSmall();

const { main } = await import("./main.js");
const { guardStandardStreams } = await import("./output.js");
guardStandardStreams();
const status = await main(process.argv.slice(2));
// After a signal, requests the command stopped waiting for (a silent endpoint) must not keep it alive.
if (receivedSignal()) process.exit(status);
process.exitCode = status;
