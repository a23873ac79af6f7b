/**
 * `@hoard/core/plugin`: what plugin authors use. Users of hoard import `@hoard/core`; tests
 * import `@hoard/core/testing`. A plugin imports its contracts (Storage, Driver, HoardError) from
 * `@hoard/core` and its helpers from here, and nothing from another plugin.
 */

export { describeError, diskFullError, downloadError, HoardError, isNetworkError, toHoardError } from "../errors.js";
export { log } from "../logger.js";
export { parseUrl, redactUrl } from "../url.js";
export * from "./driver-kit.js";
export * from "./settings.js";
export * from "./storage-kit.js";
