import { describe, expect, it } from "vitest";
import { createCrc64 } from "../src/crc64.ts";

describe("CRC-64 (Go hash/crc64, ECMA table)", () => {
  it("gives the catalogue check value for 123456789", () => {
    // CRC-64/XZ check value; Go's crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64.ECMA)) agrees.
    const checksum = createCrc64();
    checksum.update(Buffer.from("123456789"));
    expect(checksum.value()).toBe(0x995dc9bbdf1939fan);
    // What mongodump stores in the EOF header: Go's int64(hash.Sum64()).
    expect(checksum.signedValue()).toBe(-7395533204333446662n);
  });

  it("is 0 for no data, as an empty namespace's EOF header says", () => {
    expect(createCrc64().signedValue()).toBe(0n);
  });

  it("does not depend on how the data is split into updates", () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, index) => (index * 7919) & 0xff));
    const whole = createCrc64();
    whole.update(data);
    const pieces = createCrc64();
    for (let offset = 0; offset < data.length; offset += 13) pieces.update(data.subarray(offset, offset + 13));
    expect(pieces.value()).toBe(whole.value());
  });

  it("matches the reference on every length from 0 to 40 and every split of a longer input (the 8-byte steps and the tail)", () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, index) => (index * 2654435761) >>> 24));
    for (let length = 0; length <= 40; length++) {
      const checksum = createCrc64();
      checksum.update(data.subarray(0, length));
      expect(checksum.value(), `${length} bytes`).toBe(referenceCrc64(data.subarray(0, length)));
    }
    for (let split = 0; split <= 17; split++) {
      const checksum = createCrc64();
      checksum.update(data.subarray(0, split));
      checksum.update(data.subarray(split));
      expect(checksum.value(), `split at ${split}`).toBe(referenceCrc64(data));
    }
  });

  it("matches a bit-by-bit reference implementation on every byte value", () => {
    const data = Buffer.from(Array.from({ length: 512 }, (_, index) => index & 0xff));
    const checksum = createCrc64();
    checksum.update(data);
    expect(checksum.value()).toBe(referenceCrc64(data));
  });
});

/** The textbook reflected CRC, one bit at a time, with BigInt: slow and obviously right. */
function referenceCrc64(data: Uint8Array): bigint {
  const polynomial = 0xc96c5795d7870f42n;
  const mask = 0xffffffffffffffffn;
  let crc = mask;
  for (const byte of data) {
    crc ^= BigInt(byte);
    for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ polynomial : crc >> 1n;
  }
  return (crc ^ mask) & mask;
}
