export { createDriverFromUrl, createMongoDriver, DRIVER_NAME, validateMongoUrl } from "./driver.js";
export type { MongoDriverOptions, MongoDriverSettings, MongoEngine } from "./options.js";
export { settings } from "./settings.js";
