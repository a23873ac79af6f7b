export { connectTimeoutSeconds, type PostgresConnection, parsePostgresUrl } from "./connection.js";
export { createDriverFromUrl, createPostgresDriver, customFormatCheck, detectDumpFormat, type PostgresDumpFormat } from "./driver.js";
export { connectTimeoutFailure, explainPostgresFailure } from "./errors.js";
export type { PostgresDriverOptions } from "./options.js";
export { settings } from "./settings.js";
