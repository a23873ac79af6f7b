// Helpers for driver plugin authors (PostgreSQL, MariaDB, MongoDB, ...): what every driver needs
// besides its tools' arguments.
export { peekStream } from "../peek.js";
export * from "../process.js";
