#!/usr/bin/env node
import { main } from "./main.js";

// The AWS SDK warns on every run under Node.js 20, which hoard supports; keep stderr for hoard's own lines.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

process.exitCode = await main(process.argv.slice(2));
