/**
 * CRC-64 as Go's `hash/crc64` computes it with `crc64.MakeTable(crc64.ECMA)`: the reflected
 * polynomial 0xC96C5795D7870F42, initial value and final XOR all ones (the catalogue calls this
 * CRC-64/XZ; check value for "123456789" is 0x995DC9BBDF1939FA). mongodump feeds it every document
 * of a namespace and writes the result, as a signed int64, in the namespace's EOF header
 * (mongo-tools common/archive/multiplexer.go and demultiplexer.go).
 *
 * The 64-bit state is kept as two unsigned 32-bit halves so that the loop stays on small integers.
 */
export interface Crc64 {
  update(bytes: Uint8Array): void;
  /** The checksum of everything given so far as an unsigned 64-bit value. */
  value(): bigint;
  /** The same checksum as a signed 64-bit value, the way mongodump stores it (Go's `int64(hash.Sum64())`). */
  signedValue(): bigint;
}

const polynomialHigh = 0xc96c5795;
const polynomialLow = 0xd7870f42;

const [tableLow, tableHigh] = buildTable();

function buildTable(): [Uint32Array, Uint32Array] {
  const low = new Uint32Array(256);
  const high = new Uint32Array(256);
  for (let index = 0; index < 256; index++) {
    let crcLow = index;
    let crcHigh = 0;
    for (let bit = 0; bit < 8; bit++) {
      const carry = crcLow & 1;
      crcLow = ((crcLow >>> 1) | ((crcHigh & 1) << 31)) >>> 0;
      crcHigh = crcHigh >>> 1;
      if (carry) {
        crcLow = (crcLow ^ polynomialLow) >>> 0;
        crcHigh = (crcHigh ^ polynomialHigh) >>> 0;
      }
    }
    low[index] = crcLow;
    high[index] = crcHigh;
  }
  return [low, high];
}

/** A running CRC-64/ECMA (Go) over a sequence of byte arrays. */
export function createCrc64(): Crc64 {
  // The state is kept inverted, as Go does between calls, so that `value()` only inverts it back.
  let low = 0xffffffff;
  let high = 0xffffffff;
  const value = (): bigint => (BigInt(~high >>> 0) << 32n) | BigInt(~low >>> 0);
  return {
    update(bytes) {
      let currentLow = low;
      let currentHigh = high;
      for (let offset = 0; offset < bytes.length; offset++) {
        const index = (currentLow ^ (bytes[offset] as number)) & 0xff;
        currentLow = (((currentLow >>> 8) | (currentHigh << 24)) ^ (tableLow[index] as number)) >>> 0;
        currentHigh = ((currentHigh >>> 8) ^ (tableHigh[index] as number)) >>> 0;
      }
      low = currentLow;
      high = currentHigh;
    },
    value,
    signedValue: () => BigInt.asIntN(64, value()),
  };
}
