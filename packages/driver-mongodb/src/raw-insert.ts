import { createRequire } from "node:module";
import { BSON, type Db, type Document, MongoClient } from "mongodb";

/**
 * The official driver's OP_MSG "document sequence" (a payload of type 1: a field name and BSON
 * documents laid end to end), which mongodb 7.9's own insertMany sends its documents in. It is
 * internal to the driver (lib/cmap/commands.js, not exported from the package's index), so it is
 * looked up once here, with checks; the package is pinned to an exact version, and
 * test/raw-insert.test.ts fails when an upgrade moves it. When it cannot be found (a bundler that
 * left out the file, another driver build), the built-in restore falls back to insertMany.
 */
export interface DocumentSequence {
  /** Appends a document: `document` is only what command monitoring shows, `bytes` is what is sent. */
  push(document: Document, bytes: Uint8Array): number;
}

type DocumentSequenceClass = new (field: string) => DocumentSequence;

function findDocumentSequence(): DocumentSequenceClass | undefined {
  try {
    const require = createRequire(import.meta.url);
    // The same module instance as the driver this package imports (the connection recognises a
    // sequence with instanceof): both resolve to one file of one installed package.
    const main = require("mongodb") as { MongoClient?: unknown };
    if (main.MongoClient !== MongoClient) return undefined;
    const commands = require("mongodb/lib/cmap/commands.js") as { DocumentSequence?: unknown };
    const found = commands.DocumentSequence;
    if (typeof found !== "function" || typeof (found.prototype as { push?: unknown }).push !== "function") return undefined;
    return found as DocumentSequenceClass;
  } catch {
    return undefined;
  }
}

/** The driver's document sequence class, or undefined when this driver build does not have it where expected. */
export const documentSequenceClass: DocumentSequenceClass | undefined = findDocumentSequence();

/** What the server answered to an insert: how many documents it stored and what it refused. */
export interface RawInsertReply {
  inserted: number;
  /** The documents refused (index in the batch, code, message), in the server's order. */
  writeErrors: { index: number; code?: number; message: string }[];
  /** The write concern could not be satisfied (the documents may still be stored). */
  writeConcernError?: { code?: number; message: string };
}

/** Placeholder that command monitoring shows for each raw document (nothing is decoded to show it). */
const notDecoded: Document = Object.freeze({});

/**
 * Sends one `insert` command whose documents are `documents` exactly as they are (raw BSON, never
 * decoded and encoded again), unordered, in a document sequence, with the database's write concern
 * (from the URL or the client's options). Throws what `Db.command` throws (network errors, `ok: 0`);
 * refused documents are returned, not thrown.
 */
export async function insertRawDocuments(
  database: Db,
  collection: string,
  documents: readonly Uint8Array[],
  options: { bypassDocumentValidation: boolean; sequence: DocumentSequenceClass },
): Promise<RawInsertReply> {
  const sequence = new options.sequence("documents");
  for (const document of documents) sequence.push(notDecoded, document);
  const command: Document = { insert: collection, documents: sequence, ordered: false };
  if (options.bypassDocumentValidation) command.bypassDocumentValidation = true;
  const concern = database.writeConcern;
  if (concern !== undefined) {
    const sent: Document = {};
    if (concern.w !== undefined) sent.w = concern.w;
    if (concern.wtimeoutMS !== undefined) sent.wtimeout = concern.wtimeoutMS;
    if (concern.journal !== undefined) sent.j = concern.journal;
    if (Object.keys(sent).length > 0) command.writeConcern = sent;
  }
  const reply = await database.command(command);
  return {
    inserted: typeof reply.n === "number" ? reply.n : Number(reply.n ?? 0),
    writeErrors: Array.isArray(reply.writeErrors)
      ? reply.writeErrors.map((error: Document) => ({
          index: Number(error.index),
          ...(typeof error.code === "number" && { code: error.code }),
          message: typeof error.errmsg === "string" ? error.errmsg : "refused",
        }))
      : [],
    ...(reply.writeConcernError !== undefined && {
      writeConcernError: {
        ...(typeof reply.writeConcernError.code === "number" && { code: reply.writeConcernError.code }),
        message: typeof reply.writeConcernError.errmsg === "string" ? reply.writeConcernError.errmsg : "write concern failed",
      },
    }),
  };
}

/**
 * The first document of `documents` that is not valid BSON (what the server may have refused a
 * batch for), with the decoder's complaint; undefined when every one decodes.
 */
export function firstInvalidDocument(
  documents: readonly Uint8Array[],
  options: BSON.DeserializeOptions,
): { index: number; reason: string } | undefined {
  for (const [index, document] of documents.entries()) {
    try {
      BSON.deserialize(document, options);
    } catch (error) {
      return { index, reason: error instanceof Error ? error.message : String(error) };
    }
  }
  return undefined;
}
