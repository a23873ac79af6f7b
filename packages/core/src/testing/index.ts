export { type DriverRoundTripOptions, describeDriverRoundTrip } from "./driver-round-trip.js";
export { describeStorageContract, randomStream, type StorageContractOptions, sha256Of } from "./storage-contract.js";
