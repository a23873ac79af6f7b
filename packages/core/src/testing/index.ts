export { describeStorageContract, randomStream, sha256Of, type StorageContractOptions } from "./storage-contract.js";
