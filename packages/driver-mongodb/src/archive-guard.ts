import { Transform, type TransformCallback } from "node:stream";
import { HoardError } from "@hoard/core";
import { type ArchiveNamespace, namespaceKey } from "./archive-format.js";
import { type ArchiveEvent, readArchive } from "./archive-reader.js";
import { type ConnectOptions, createClient } from "./client.js";
import { parseMongoUrl } from "./connection-string.js";

/** A pass-through that checks a mongodump archive with hoard's reader as it goes by. */
export interface ArchiveGuard {
  /**
   * Passes the archive on, each chunk only once the reader has checked everything in it that it
   * can (so the block that shows the damage, such as a namespace's EOF header with a CRC that
   * disagrees, is never passed on), and ends only after the reader accepted the whole archive.
   * Fails with the reader's CORRUPT_ARCHIVE or UNSUPPORTED_FORMAT otherwise.
   */
  stream: Transform;
  /** How many bytes were passed on. */
  forwardedBytes(): number;
  /** The namespaces of which at least one document was read, in order. */
  namespacesWithData(): ArchiveNamespace[];
  /** What the reader failed with, if it did. */
  failure(): unknown;
}

/**
 * Puts hoard's archive reader ({@link readArchive}) beside a consumer that does not check an
 * archive as well, mongorestore (100.18 restores a namespace whose CRC disagrees): the consumer
 * gets the bytes only as fast as the reader checks them (back-pressure, one chunk in flight), and
 * never sees the end of a damaged archive, so it can be stopped before it reports success.
 */
export function guardArchive(options: { name: string }): ArchiveGuard {
  // The reader's pending request for a chunk, and the transform's wait for such a request.
  let requested: ((result: IteratorResult<Buffer>) => void) | undefined;
  let wake: (() => void) | undefined;
  let settled = false;
  let failure: unknown;
  // Set when the consumer went away first: what the reader says after that is of no interest.
  let stopped = false;
  let forwarded = 0;
  const withData = new Map<string, ArchiveNamespace>();

  const feed: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => ({
      next: () =>
        new Promise<IteratorResult<Buffer>>((resolve) => {
          // The consumer went away: the reader gets no more input.
          if (stopped) return resolve({ done: true, value: undefined });
          requested = resolve;
          wake?.();
          wake = undefined;
        }),
      return: async () => ({ done: true, value: undefined }),
    }),
  };
  // The reader gives every document of a namespace the same namespace object.
  let lastWithData: ArchiveNamespace | undefined;
  const onEvent = (event: ArchiveEvent) => {
    if (event.kind === "document" && event.namespace !== lastWithData) {
      lastWithData = event.namespace;
      const key = namespaceKey(event.namespace);
      if (!withData.has(key)) withData.set(key, event.namespace);
    }
  };
  const reading = (async () => {
    try {
      for await (const event of readArchive(feed, { name: options.name })) onEvent(event);
    } catch (error) {
      if (!stopped) failure = error;
    } finally {
      settled = true;
      wake?.();
      wake = undefined;
    }
  })();
  /** Resolves once the reader asks for a chunk or has finished (with or without a failure). */
  const readerReady = () =>
    new Promise<void>((resolve) => {
      if (requested !== undefined || settled) resolve();
      else wake = resolve;
    });
  const give = (result: IteratorResult<Buffer>) => {
    const resolve = requested;
    requested = undefined;
    resolve?.(result);
  };

  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      (async () => {
        await readerReady();
        if (settled) return callback((failure as Error | undefined) ?? new Error("the archive reader stopped before the input ended"));
        give({ done: false, value: chunk });
        await readerReady();
        if (failure !== undefined) return callback(failure as Error);
        forwarded += chunk.length;
        callback(null, chunk);
      })().catch(callback);
    },
    flush(callback: TransformCallback) {
      (async () => {
        await readerReady();
        if (!settled) give({ done: true, value: undefined });
        await reading;
        callback(failure as Error | undefined);
      })().catch(callback);
    },
    destroy(error, callback) {
      // Lets a reader still waiting for input end (its complaint is of no interest then).
      stopped = true;
      if (!settled) give({ done: true, value: undefined });
      callback(error);
    },
  });
  return {
    stream,
    forwardedBytes: () => forwarded,
    namespacesWithData: () => [...withData.values()],
    failure: () => failure,
  };
}

const maximumNamedNamespaces = 5;

/**
 * The error for a restore whose archive the guard found damaged after mongorestore was stopped:
 * the reader's message (which names the archive and the namespace), then what state the target is
 * in: untouched when mongorestore received none of the archive, else how many documents each
 * target collection that received data held when it was stopped (counted, where the server
 * answers), since the documents before the damage went in and may themselves be damaged.
 */
export async function damagedRestoreError(
  guard: ArchiveGuard,
  options: ConnectOptions & { renamesNamespaces: boolean },
): Promise<HoardError> {
  const cause = guard.failure();
  const code = HoardError.isInstance(cause) ? cause.code : "CORRUPT_ARCHIVE";
  const reason = cause instanceof Error ? cause.message : String(cause);
  const fail = (state: string) => new HoardError(code, `${reason}; ${state}`, { cause });
  if (guard.forwardedBytes() === 0) {
    return fail("mongorestore was stopped before it received any of the archive: the database was not changed");
  }
  const stopped = "mongorestore was stopped before the end of the archive";
  const advice = "drop what it restored, or restore an intact backup with --replace";
  const sources = guard
    .namespacesWithData()
    .filter(
      (namespace) =>
        namespace.database !== "" && !namespace.collection.startsWith("system.") && !namespace.collection.startsWith("$admin."),
    );
  if (sources.length === 0) {
    return fail(`${stopped}: the database may be partially restored (collections and indexes without documents); ${advice}`);
  }
  const database = parseMongoUrl(options.url).database;
  if (options.renamesNamespaces) {
    const names = sources.slice(0, maximumNamedNamespaces).map(namespaceKey).join(", ");
    return fail(
      `${stopped}: the database may be partially restored (mongorestore received documents of ${names}, damaged ones among them perhaps); ${advice}`,
    );
  }
  const targets = sources.map((source) => ({ database: database ?? source.database, collection: source.collection }));
  const { client } = createClient(options);
  try {
    const held: string[] = [];
    for (const target of targets.slice(0, maximumNamedNamespaces)) {
      const count = await client
        .db(target.database)
        .collection(target.collection)
        .countDocuments({}, { maxTimeMS: options.connectTimeoutMs });
      held.push(`${namespaceKey(target)} held ${count} document(s)`);
    }
    const more = targets.length > maximumNamedNamespaces ? ` and ${targets.length - maximumNamedNamespaces} more collection(s)` : "";
    return fail(
      `${stopped}: the database is partially restored (when mongorestore was stopped, ${held.join(", ")}${more}); documents read before the damage was found may be damaged too: ${advice}`,
    );
  } catch {
    const names = targets.slice(0, maximumNamedNamespaces).map(namespaceKey).join(", ");
    return fail(
      `${stopped}: the database may be partially restored (${names} received documents, damaged ones among them perhaps); ${advice}`,
    );
  } finally {
    await client.close().catch(() => {});
  }
}
