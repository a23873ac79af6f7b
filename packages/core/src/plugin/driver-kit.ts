// Helpers for driver plugin authors (PostgreSQL, MariaDB, MongoDB, ...): what every driver needs
// besides its tools' arguments and its messages.

// Formats by content: the decompressor of a layer, and the CORRUPT_ARCHIVE error for a damaged one.
export { archiveError, decompressor } from "../codecs.js";
export { peekStream } from "../peek.js";
export * from "../process.js";
export * from "./driver-files.js";
export * from "./driver-messages.js";
export * from "./driver-output.js";
export * from "./driver-settings.js";
export * from "./driver-tools.js";
