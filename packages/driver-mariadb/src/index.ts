export { connectionArguments, type MariadbConnection, parseMariadbUrl } from "./connection.js";
export { explainMariadbFailure } from "./failures.js";
export { createDriverFromUrl, createMariadbDriver, type MariadbDriverOptions } from "./mariadb-driver.js";
