import { connect } from "node:net";

/** The BSON values that {@link encodeDocument} writes and {@link decodeDocument} reads. */
export type BsonValue = string | number | bigint | boolean | null | Date | Uint8Array | BsonValue[] | BsonDocument;

/** A BSON document as a plain object (field order is insertion order). */
export interface BsonDocument {
  [field: string]: BsonValue;
}

const operationMessageCode = 2013;
let nextRequestId = 1;

/**
 * Runs one command on a MongoDB-compatible server with an OP_MSG over a fresh TCP connection
 * (no authentication, no TLS) and returns the reply document. Throws when the reply has ok != 1.
 * Enough to check that a server answers (`hello`, `ping`, `listDatabases`) without a driver.
 */
export function runMongoCommand(
  host: string,
  port: number,
  command: BsonDocument,
  options: { database?: string | undefined; timeoutMs?: number | undefined } = {},
): Promise<BsonDocument> {
  const message = encodeOperationMessage({ ...command, $db: options.database ?? "admin" });
  return new Promise((resolveReply, reject) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    let received = 0;
    const fail = (error: Error): void => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(options.timeoutMs ?? 5_000, () => fail(new Error(`no reply from ${host}:${port} in time`)));
    socket.once("error", fail);
    socket.once("connect", () => socket.write(message));
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      const data = Buffer.concat(chunks, received);
      if (data.length < 4 || data.length < data.readInt32LE(0)) {
        return;
      }
      socket.destroy();
      try {
        const reply = decodeOperationMessage(data.subarray(0, data.readInt32LE(0)));
        if (reply.ok !== 1) {
          reject(new Error(`command ${Object.keys(command)[0]} failed: ${JSON.stringify(reply, jsonReplacer)}`));
          return;
        }
        resolveReply(reply);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    socket.once("end", () => fail(new Error(`${host}:${port} closed the connection without a full reply`)));
  });
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

function encodeOperationMessage(command: BsonDocument): Buffer {
  const body = encodeDocument(command);
  const header = Buffer.alloc(21);
  header.writeInt32LE(header.length + body.length, 0);
  header.writeInt32LE(nextRequestId++, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(operationMessageCode, 12);
  header.writeUInt32LE(0, 16); // flag bits
  header.writeUInt8(0, 20); // section kind 0: the command body
  return Buffer.concat([header, body]);
}

function decodeOperationMessage(message: Buffer): BsonDocument {
  const operationCode = message.readInt32LE(12);
  if (operationCode !== operationMessageCode) {
    throw new Error(`expected an OP_MSG reply, got operation code ${operationCode}`);
  }
  const checksumPresent = (message.readUInt32LE(16) & 1) === 1;
  const end = message.length - (checksumPresent ? 4 : 0);
  let offset = 20;
  while (offset < end) {
    const kind = message.readUInt8(offset);
    offset += 1;
    const sectionLength = message.readInt32LE(offset);
    if (kind === 0) {
      return decodeDocument(message.subarray(offset, offset + sectionLength));
    }
    offset += sectionLength; // kind 1: size, identifier, documents
  }
  throw new Error("OP_MSG reply without a body section");
}

/** Encodes a document: integers that fit become int32, other numbers doubles, bigints int64. */
export function encodeDocument(document: BsonDocument): Buffer {
  const elements = Object.entries(document).map(([name, value]) => encodeElement(name, value));
  const body = Buffer.concat([...elements, Buffer.from([0])]);
  const length = Buffer.alloc(4);
  length.writeInt32LE(body.length + 4, 0);
  return Buffer.concat([length, body]);
}

function encodeElement(name: string, value: BsonValue): Buffer {
  const [type, payload] = encodeValue(value);
  return Buffer.concat([Buffer.from([type]), Buffer.from(name, "utf8"), Buffer.from([0]), payload]);
}

function encodeValue(value: BsonValue): [number, Buffer] {
  if (typeof value === "string") {
    const text = Buffer.from(value, "utf8");
    const length = Buffer.alloc(4);
    length.writeInt32LE(text.length + 1, 0);
    return [0x02, Buffer.concat([length, text, Buffer.from([0])])];
  }
  if (typeof value === "number") {
    const isInt32 = Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;
    const payload = Buffer.alloc(isInt32 ? 4 : 8);
    if (isInt32) {
      payload.writeInt32LE(value, 0);
    } else {
      payload.writeDoubleLE(value, 0);
    }
    return [isInt32 ? 0x10 : 0x01, payload];
  }
  if (typeof value === "bigint") {
    const payload = Buffer.alloc(8);
    payload.writeBigInt64LE(value, 0);
    return [0x12, payload];
  }
  if (typeof value === "boolean") {
    return [0x08, Buffer.from([value ? 1 : 0])];
  }
  if (value === null) {
    return [0x0a, Buffer.alloc(0)];
  }
  if (value instanceof Date) {
    const payload = Buffer.alloc(8);
    payload.writeBigInt64LE(BigInt(value.getTime()), 0);
    return [0x09, payload];
  }
  if (value instanceof Uint8Array) {
    const header = Buffer.alloc(5);
    header.writeInt32LE(value.length, 0);
    return [0x05, Buffer.concat([header, value])]; // subtype 0: generic binary
  }
  if (Array.isArray(value)) {
    const asDocument: BsonDocument = {};
    value.forEach((item, index) => {
      asDocument[String(index)] = item;
    });
    return [0x04, encodeDocument(asDocument)];
  }
  return [0x03, encodeDocument(value)];
}

/**
 * Decodes a document. Reads the types that command replies use: double, string, document, array,
 * binary, ObjectId (as a hex string), boolean, date, null, int32, timestamp and int64 (bigint).
 */
export function decodeDocument(data: Buffer): BsonDocument {
  const document: BsonDocument = {};
  const end = data.readInt32LE(0) - 1;
  let offset = 4;
  while (offset < end) {
    const type = data.readUInt8(offset);
    const nameEnd = data.indexOf(0, offset + 1);
    const name = data.toString("utf8", offset + 1, nameEnd);
    const [value, length] = decodeValue(type, data, nameEnd + 1);
    document[name] = value;
    offset = nameEnd + 1 + length;
  }
  return document;
}

function decodeValue(type: number, data: Buffer, offset: number): [BsonValue, number] {
  switch (type) {
    case 0x01:
      return [data.readDoubleLE(offset), 8];
    case 0x02: {
      const length = data.readInt32LE(offset);
      return [data.toString("utf8", offset + 4, offset + 4 + length - 1), 4 + length];
    }
    case 0x03:
    case 0x04: {
      const length = data.readInt32LE(offset);
      const nested = decodeDocument(data.subarray(offset, offset + length));
      return [type === 0x04 ? Object.values(nested) : nested, length];
    }
    case 0x05: {
      const length = data.readInt32LE(offset);
      return [Uint8Array.from(data.subarray(offset + 5, offset + 5 + length)), 5 + length];
    }
    case 0x07:
      return [data.toString("hex", offset, offset + 12), 12];
    case 0x08:
      return [data.readUInt8(offset) === 1, 1];
    case 0x09:
      return [new Date(Number(data.readBigInt64LE(offset))), 8];
    case 0x0a:
      return [null, 0];
    case 0x10:
      return [data.readInt32LE(offset), 4];
    case 0x11:
      return [data.readBigUInt64LE(offset), 8];
    case 0x12:
      return [data.readBigInt64LE(offset), 8];
    default:
      throw new Error(`BSON type 0x${type.toString(16)} is not supported by this minimal decoder`);
  }
}
