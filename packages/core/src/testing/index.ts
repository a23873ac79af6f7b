export { describeStorageContract, randomStream, sha256Of, type StorageContractOptions } from "./storage-contract.js";
export { describeDriverRoundTrip, type DriverRoundTripOptions } from "./driver-round-trip.js";
