import { HoardError, type Logger } from "@hoard/core";
import { log } from "@hoard/core/plugin";
import type { ArchiveCollectionMetadata } from "./archive-format.js";
import { namespaceKey } from "./archive-format.js";
import { type ConnectOptions, createClient } from "./client.js";
import { toMongoError } from "./errors.js";
import { indexesToCreate, parseMetadata } from "./metadata.js";
import { nsRejected, readToolFailure } from "./tools.js";

/**
 * What FerretDB v1 (observed with v1.24.2) rejects from mongorestore 100.18: mongorestore adds
 * `ns: "<db>.<collection>"` to every index spec it sends with createIndexes
 * (mongorestore/metadata.go `CreateIndexes`), and FerretDB answers `(BadValue) Index option "ns" is
 * unknown` (FerretDB#4638). mongorestore builds indexes last, after the data, users, roles and
 * oplog, so when it fails this way every document is in and only the indexes are missing: the
 * tools engine then creates the archive's indexes itself (without ns and v), as the built-in engine
 * does. Nothing of this runs against a real MongoDB, which accepts ns: no extra connection, no
 * detection, only a few kilobytes of prelude kept while the archive streams by.
 */
export const ferretdbIndexIssue = "FerretDB#4638";

/** Options with which mongorestore itself picks or renames namespaces, so hoard cannot know where indexes go. */
export function choosesNamespaces(restoreOptions: readonly string[]): boolean {
  return restoreOptions.some(
    (option) =>
      /^--(nsFrom|nsTo|nsInclude|nsExclude|db|collection|excludeCollection|excludeCollectionsWithPrefix)(=|$)/.test(option) ||
      /^-[dc]/.test(option),
  );
}

/** One collection whose indexes hoard creates, and where. */
export interface IndexPlan {
  database: string;
  collection: string;
  indexes: Record<string, unknown>[];
}

/**
 * The indexes of every collection in the archive's prelude (views, time-series collections, users,
 * roles, the oplog and `system.*` collections aside), each going where mongorestore put the
 * collection: into `targetDatabase` when the URL names one, else into the archive's database.
 */
export function planIndexes(
  collections: readonly ArchiveCollectionMetadata[],
  targetDatabase: string | undefined,
  archiveName: string,
): IndexPlan[] {
  const plans: IndexPlan[] = [];
  for (const collection of collections) {
    if (collection.database === "" || collection.collection.startsWith("$admin.") || collection.collection.startsWith("system.")) continue;
    if (collection.type !== "" && collection.type !== "collection") continue;
    const metadata = parseMetadata(collection.metadata, collection.collection, archiveName);
    if (metadata.type !== undefined && metadata.type !== "collection") continue;
    const indexes = indexesToCreate(metadata.indexes);
    if (indexes.length === 0) continue;
    plans.push({ database: targetDatabase ?? collection.database, collection: collection.collection, indexes });
  }
  return plans;
}

/**
 * Creates the planned indexes after mongorestore --noIndexRestore succeeded. A failure says that the
 * documents are restored and which collection's indexes are missing.
 */
export async function createPlannedIndexes(options: ConnectOptions & { logger?: Logger }, plans: readonly IndexPlan[]): Promise<void> {
  if (plans.length === 0) return;
  const { client, context } = createClient(options);
  let current: IndexPlan | undefined;
  try {
    await client.connect();
    for (const plan of plans) {
      current = plan;
      await client.db(plan.database).command({ createIndexes: plan.collection, indexes: plan.indexes });
    }
  } catch (error) {
    const where = current ? namespaceKey(current) : "the first collection";
    const cause = toMongoError(error, `restore (creating the indexes of ${where})`, options.url, context);
    throw new HoardError(
      cause.code === "TOOL_FAILED" ? "TOOL_FAILED" : cause.code,
      `${cause.message}; mongorestore had restored every document, but the indexes of ${where} and of the collections after it are missing`,
      { cause },
    );
  } finally {
    await client.close().catch(() => {});
  }
  const count = plans.reduce((total, plan) => total + plan.indexes.length, 0);
  log(
    options.logger,
    "info",
    `mongodb: created ${count} index(es) on ${plans.length} collection(s) in place of mongorestore (${ferretdbIndexIssue})`,
  );
}

/**
 * True when mongorestore failed only because the server rejected the `ns` field of its index specs:
 * its stderr says so and its summary reports no document that failed to restore.
 */
export function rejectedIndexNamespace(error: unknown): boolean {
  if (!HoardError.isInstance(error) || error.detail === undefined) return false;
  if (!nsRejected.test(error.detail)) return false;
  const { failed } = readToolFailure(error.detail);
  return failed === 0;
}
