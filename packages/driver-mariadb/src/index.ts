export { connectionArguments, type MariadbConnection, parseMariadbUrl } from "./connection.js";
export { createDriverFromUrl, createMariadbDriver } from "./driver.js";
export { explainMariadbFailure } from "./errors.js";
export type { MariadbDriverOptions } from "./options.js";
export { settings } from "./settings.js";
