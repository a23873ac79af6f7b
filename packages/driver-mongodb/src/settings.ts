import { defineSettings } from "@hoard/core/plugin";

/** The engines, as the `mongodbEngine` setting names them. */
export const mongoEngines = ["auto", "tools", "builtin"] as const;

/**
 * The MongoDB driver's settings, besides the common ones (dump and restore options,
 * `connectTimeoutMs` from `--timeout`): which engine dumps and restores (`--mongodb-engine`,
 * HOARD_MONGODB_ENGINE).
 */
export const settings = defineSettings("mongodb", "MongoDB", [
  {
    name: "mongodbEngine",
    kind: "choice",
    choices: mongoEngines,
    default: "auto",
    help: "what dumps and restores: tools (mongodump/mongorestore, required), builtin (hoard's own engine, same archive format) or auto (the tools when on PATH, else builtin)",
  },
]);
