export { createDriverFromUrl, createSqliteDriver } from "./driver.js";
export { parseSqliteUrl, type SqliteDriverOptions } from "./options.js";
export { settings } from "./settings.js";
