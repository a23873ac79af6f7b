import { randomBytes } from "node:crypto";
import {
  Binary,
  BSON,
  BSONRegExp,
  Code,
  DBRef,
  type Db,
  Decimal128,
  type Document,
  Double,
  Int32,
  Long,
  MaxKey,
  MinKey,
  MongoClient,
  ObjectId,
  Timestamp,
  UUID,
} from "mongodb";
import { formatMongoUrl, parseMongoUrl } from "../src/connection-string.ts";

const { EJSON } = BSON;

/** Read options that keep every BSON type as it is, so that the snapshot sees Int32 versus Double. */
const exactBson = { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true } as const;

/** Something the fixture covers that FerretDB v1.24 cannot store; seeded only on a real MongoDB. */
export interface FixtureFeature {
  name: string;
  /** What FerretDB v1.24.2 answers or does (observed against it). */
  reason: string;
  seed(database: Db): Promise<void>;
}

/**
 * Parts of the fixture left out when the server is FerretDB (it reports `ferretdbVersion` in
 * buildInfo), so that the same fixture runs whole against a real MongoDB (HOARD_TEST_MONGODB_URL).
 */
export const unsupportedByFerretDb: readonly FixtureFeature[] = [
  {
    name: "views",
    reason: 'create: support for field "viewOn" is not implemented yet',
    seed: async (database) => {
      await database.command({ create: "adults", viewOn: "people", pipeline: [{ $match: { age: { $gte: new Int32(18) } } }] });
    },
  },
  {
    name: "validators",
    reason: 'create: support for field "validator" is not implemented yet',
    seed: async (database) => {
      await database.command({
        create: "validated",
        validator: { $jsonSchema: { bsonType: "object", required: ["sku"], properties: { sku: { bsonType: "string" } } } },
        validationLevel: "moderate",
        validationAction: "error",
      });
      await insert(database, "validated", [{ _id: new Int32(1), sku: "A-1" }]);
    },
  },
  {
    name: "collation",
    reason: 'create: support for field "collation" is not implemented yet',
    seed: async (database) => {
      await database.command({ create: "collated", collation: { locale: "fr", strength: new Int32(2) } });
      await insert(database, "collated", [{ _id: "é" }, { _id: "e" }]);
      await database.collection("collated").createIndex({ word: 1 }, { name: "word_fr", collation: { locale: "fr" } });
    },
  },
  {
    name: "TTL index",
    reason: 'Index option "expireAfterSeconds" is not implemented yet',
    // On a field no document has, so the server never deletes anything while the test runs.
    seed: async (database) => {
      await database.collection("everything").createIndex({ expiresAt: 1 }, { name: "expires", expireAfterSeconds: 3600 });
    },
  },
  {
    name: "partial index",
    reason: 'Index option "partialFilterExpression" is not implemented yet',
    seed: async (database) => {
      await database
        .collection("people")
        .createIndex({ age: 1 }, { name: "adults_by_age", partialFilterExpression: { age: { $gte: 18 } } });
    },
  },
  {
    name: "nested arrays",
    reason: "invalid value: nested arrays are not supported",
    seed: async (database) => {
      await insert(database, "exotic", [{ _id: "matrix", value: [[new Int32(1), new Int32(2)], [new Int32(3)]] }]);
    },
  },
  {
    name: "NUL in strings",
    reason: "PostgreSQL: unsupported Unicode escape sequence (SQLSTATE 22P05)",
    seed: async (database) => {
      await insert(database, "exotic", [{ _id: "nul", value: "before\u0000after" }]);
    },
  },
  {
    name: "NaN and Infinity",
    reason: "FerretDB closes the connection",
    seed: async (database) => {
      await insert(database, "exotic", [
        {
          _id: "not-finite",
          nan: new Double(Number.NaN),
          infinity: new Double(Number.POSITIVE_INFINITY),
          minus: new Double(Number.NEGATIVE_INFINITY),
        },
      ]);
    },
  },
  {
    name: "Decimal128",
    reason: "FerretDB closes the connection (wirebson: unsupported tag Decimal128)",
    seed: async (database) => {
      await insert(database, "exotic", [{ _id: "decimal", value: Decimal128.fromString("1234567890.123456789012345678901234") }]);
    },
  },
  {
    name: "MinKey and MaxKey",
    reason: "FerretDB closes the connection (wirebson: unsupported tag MinKey)",
    seed: async (database) => {
      await insert(database, "exotic", [{ _id: "bounds", low: new MinKey(), high: new MaxKey() }]);
    },
  },
  {
    name: "JavaScript code",
    reason: "FerretDB closes the connection",
    seed: async (database) => {
      await insert(database, "exotic", [{ _id: "code", value: new Code("function () { return 1; }") }]);
    },
  },
  {
    name: "DBRef",
    reason: "invalid key: \"$ref\" (key must not start with '$' sign)",
    seed: async (database) => {
      await insert(database, "exotic", [
        { _id: "reference", value: new DBRef("people", new ObjectId("65a1b2c3d4e5f60718293a4b"), "elsewhere") },
      ]);
    },
  },
];

/** True when the server is FerretDB (its buildInfo carries `ferretdbVersion`). */
export async function isFerretDb(client: MongoClient): Promise<boolean> {
  const info = await client.db("admin").command({ buildInfo: 1 });
  return Object.keys(info).some((key) => key.toLowerCase().startsWith("ferretdb"));
}

/** The server URL with `database` as its database. */
export function databaseUrl(serverUrl: string, database: string | undefined): string {
  return formatMongoUrl({ ...parseMongoUrl(serverUrl), database });
}

/** A fresh database name on the server (`hoard_<random>`) and its URL. */
export function newDatabaseUrl(serverUrl: string): string {
  return databaseUrl(serverUrl, `hoard_${randomBytes(5).toString("hex")}`);
}

/** Inserts documents of any shape (the driver's types assume ObjectId _ids). */
export async function insert(database: Db, collection: string, documents: Document[]): Promise<void> {
  await database.collection(collection).insertMany(documents);
}

export async function withClient<T>(url: string, work: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(url);
  try {
    await client.connect();
    return await work(client);
  } finally {
    await client.close();
  }
}

function person(index: number): Document {
  return {
    _id: new ObjectId(index.toString(16).padStart(24, "0")),
    email: `person${index}@example.com`,
    first: `First${index % 97}`,
    last: `Last${index % 89}`,
    age: new Int32(index % 90),
    score: new Double(index / 7),
    ...(index % 3 === 0 ? { nickname: `nick${index}` } : {}),
    joined: new Date(Date.UTC(2000, 0, 1) + index * 86_400_000),
  };
}

/** Every BSON type FerretDB v1.24 stores, with edge values. */
function everything(): Document[] {
  return [
    {
      _id: new ObjectId("65a1b2c3d4e5f60718293a4b"),
      int32: new Int32(-2147483648),
      int64: Long.fromString("9007199254740993"),
      double: new Double(1),
      fraction: new Double(0.1),
      negativeZero: new Double(-0),
      huge: new Double(1.7976931348623157e308),
      text: "héllo wörld ✓ 🎉 \u2028",
      empty: "",
      yes: true,
      no: false,
      nothing: null,
      epoch: new Date(0),
      before1970: new Date(-86_400_000 * 365),
      farFuture: new Date(Date.UTC(2999, 11, 31, 23, 59, 59, 999)),
      timestamp: new Timestamp({ t: 1_700_000_000, i: 7 }),
      pattern: new BSONRegExp("^a.b$", "im"),
      binary: new Binary(Buffer.from([0, 1, 2, 253, 254, 255]), 0),
      uuid: new UUID("123e4567-e89b-12d3-a456-426614174000").toBinary(),
      md5: new Binary(Buffer.from("0123456789abcdef0123456789abcdef", "hex"), 5),
      userDefined: new Binary(Buffer.from("custom"), 128),
      nested: { level1: { level2: { level3: "deep", list: [new Int32(1), "two", { three: new Double(3) }] } } },
      emptyDocument: {},
      emptyArray: [],
      mixedArray: [new Int32(1), Long.fromNumber(2), new Double(3.5), "four", null, true, new Date(5), { six: 6 }],
    },
    { _id: new ObjectId("65a1b2c3d4e5f60718293a4c"), big: "x".repeat(2 * 1024 * 1024) },
  ];
}

/**
 * Seeds a database: documents of every supported type, 3,000 people (more than one insert batch and
 * one archive chunk) with a unique, a compound and a sparse index, a capped collection, an empty
 * collection with an index, odd collection names and _ids of several types; plus, on a real
 * MongoDB, everything in {@link unsupportedByFerretDb}.
 */
export async function seedFixture(url: string): Promise<void> {
  await withClient(url, async (client) => {
    const database = client.db();
    await database.collection("everything").insertMany(everything());
    await database.collection("people").insertMany(Array.from({ length: 3000 }, (_, index) => person(index)));
    await database.collection("people").createIndex({ email: 1 }, { name: "email_unique", unique: true });
    await database.collection("people").createIndex({ last: 1, first: -1 }, { name: "last_first" });
    await database.collection("people").createIndex({ nickname: 1 }, { name: "nickname_sparse", sparse: true });
    await database.createCollection("log", { capped: true, size: 1024 * 1024, max: 100 });
    await insert(
      database,
      "log",
      Array.from({ length: 10 }, (_, index) => ({ _id: new Int32(index), line: `entry ${index}` })),
    );
    await database.createCollection("nothing");
    await database.collection("nothing").createIndex({ never: 1 }, { name: "never" });
    await insert(database, "odd.name-with dash", [{ _id: "dotted" }]);
    await insert(database, "ünïcode ✓", [{ _id: "unicode" }]);
    await insert(database, "identifiers", [
      { _id: "text" },
      { _id: new Int32(42) },
      { _id: Long.fromNumber(43) },
      { _id: new Double(44.5) },
      { _id: { compound: "key", part: new Int32(2) } },
      { _id: new Date(1) },
    ]);
    if (!(await isFerretDb(client))) {
      for (const feature of unsupportedByFerretDb) await feature.seed(database);
    }
  });
}

/**
 * Everything a restore must bring back, in canonical Extended JSON: per collection its type,
 * options, indexes (without ns and v, sorted by name) and documents (sorted by _id).
 */
export async function snapshotFixture(url: string): Promise<unknown> {
  return withClient(url, (client) => snapshotDatabase(client, parseMongoUrl(url).database));
}

export async function snapshotDatabase(client: MongoClient, name: string | undefined): Promise<unknown> {
  const database = client.db(name);
  const infos = await database.listCollections({}, { nameOnly: false, ...exactBson }).toArray();
  infos.sort((left, right) => (left.name < right.name ? -1 : left.name > right.name ? 1 : 0));
  const collections: Record<string, unknown> = {};
  for (const info of infos) {
    if (info.name.startsWith("system.")) continue;
    const isView = info.type === "view";
    const indexes = isView
      ? []
      : (await database.collection(info.name).listIndexes(exactBson).toArray())
          .map(({ ns: _namespace, v: _version, ...index }) => index)
          .sort((left, right) => String(left.name).localeCompare(String(right.name)));
    const documents = await database.collection(info.name).find({}, exactBson).sort({ _id: 1 }).toArray();
    collections[info.name] = {
      type: info.type,
      options: EJSON.stringify(info.options ?? {}, { relaxed: false }),
      indexes: indexes.map((index) => EJSON.stringify(index, { relaxed: false })),
      documents: documents.map((document) => EJSON.stringify(document, { relaxed: false })),
    };
  }
  return collections;
}
