#!/usr/bin/env node
import { enableCompileCache } from "./compile-cache.js";
import { installSignalHandlers, receivedSignal } from "./interrupt.js";
import { keepYoungGenerationSmall } from "./memory.js";

// First thing, before the modules that take a while to load: a signal never finds hoard without its handlers.
installSignalHandlers();
keepYoungGenerationSmall();
// Before the modules are loaded, so that their compiled code is kept for the next run.
enableCompileCache();

const { main } = await import("./main.js");
const { guardStandardStreams } = await import("./output.js");
guardStandardStreams();
const status = await main(process.argv.slice(2));
// After a signal, requests the command stopped waiting for (a silent endpoint) must not keep it alive.
if (receivedSignal()) process.exit(status);
process.exitCode = status;
