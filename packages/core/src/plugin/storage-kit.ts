// Helpers for storage plugin authors (S3, GCS, ...): what every store needs besides its SDK calls.
export { checkKey } from "../naming.js";
export { joinKey, parseStorageUrl, trimSlashes } from "../url.js";
