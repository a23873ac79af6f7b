// Helpers for driver plugin authors (PostgreSQL, MariaDB, MongoDB, ...): what every driver needs
// besides its tools' arguments and its messages.
export { peekStream } from "../peek.js";
export * from "../process.js";
export * from "./driver-files.js";
export * from "./driver-messages.js";
export * from "./driver-output.js";
export * from "./driver-settings.js";
