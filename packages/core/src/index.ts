/**
 * `@hoard/core`: what users of hoard call: the pipelines (backup, restore, list, prune, schedule),
 * local storage, the registry that opens drivers and storages by URL, errors, naming and
 * retention, and the Storage and Driver contracts. Plugin authors' helpers (processes, codecs,
 * settings declarations, ...) are in `@hoard/core/plugin`; the conformance suites in
 * `@hoard/core/testing`.
 */
export type * from "./driver.js";
export * from "./duration.js";
export * from "./encryption.js";
export * from "./errors.js";
export * from "./logger.js";
export * from "./manifest.js";
export * from "./naming.js";
export { type BackupMode, type BackupOptions, type BackupResult, backup } from "./pipelines/backup.js";
export { compareInventories, type DrillDifference, type DrillOptions, type DrillResult, drill } from "./pipelines/drill.js";
export {
  type BackupWithManifest,
  type LatestBackupOptions,
  type ListOptions,
  latestBackup,
  listBackups,
  listBackupsWithManifests,
  type ManifestState,
} from "./pipelines/list.js";
export { type PruneOptions, type PruneResult, prune } from "./pipelines/prune.js";
export { type RestoreOptions, type RestoreResult, restore } from "./pipelines/restore.js";
export { type Schedule, type ScheduleOptions, schedule, validateCron } from "./pipelines/schedule.js";
export { type ArchiveDriverOpener, guessKind, type VerifyOptions, type VerifyResult, verify } from "./pipelines/verify.js";
export * from "./registry.js";
export * from "./retention.js";
export { createLocalStorage, type LocalStorageOptions } from "./storage/local.js";
export * from "./storage.js";
export { downloadFile, transfer, uploadFile } from "./transfer.js";
export * from "./url.js";
