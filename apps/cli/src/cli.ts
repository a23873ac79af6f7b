#!/usr/bin/env node
import { installSignalHandlers, receivedSignal } from "./interrupt.js";

// First thing, before the modules that take a while to load: a signal never finds hoard without its handlers.
installSignalHandlers();

// The AWS SDK warns on every run under Node.js 20, which hoard supports; keep stderr for hoard's own lines.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { main } = await import("./main.js");
const { guardStandardStreams } = await import("./output.js");
guardStandardStreams();
const status = await main(process.argv.slice(2));
// After a signal, requests the command stopped waiting for (a silent endpoint) must not keep it alive.
if (receivedSignal()) process.exit(status);
process.exitCode = status;
