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

/**
 * Slicing-by-8 tables (Intel's "slicing-by-N", also what Go's crc64 uses for long inputs): table k
 * gives the effect of a byte followed by k zero bytes, so eight bytes take eight lookups per half
 * instead of eight rounds. Kept as 32-bit halves: `low[k * 256 + i]`, `high[k * 256 + i]`.
 */
const [tableLow, tableHigh] = buildTables();

function buildTables(): [Uint32Array, Uint32Array] {
  const [low0, high0] = buildTable();
  const low = new Uint32Array(8 * 256);
  const high = new Uint32Array(8 * 256);
  low.set(low0);
  high.set(high0);
  for (let table = 1; table < 8; table++) {
    for (let index = 0; index < 256; index++) {
      const previousLow = low[(table - 1) * 256 + index] as number;
      const previousHigh = high[(table - 1) * 256 + index] as number;
      const byte = previousLow & 0xff;
      // (previous >>> 8) ^ table0[previous & 0xff], on halves.
      low[table * 256 + index] = (((previousLow >>> 8) | (previousHigh << 24)) ^ (low0[byte] as number)) >>> 0;
      high[table * 256 + index] = ((previousHigh >>> 8) ^ (high0[byte] as number)) >>> 0;
    }
  }
  return [low, high];
}

/** The byte-at-a-time table (Go's `makeTable`), as halves. */
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
      let offset = 0;
      const whole = bytes.length - (bytes.length % 8);
      for (; offset < whole; offset += 8) {
        const a =
          (currentLow ^
            ((bytes[offset] as number) |
              ((bytes[offset + 1] as number) << 8) |
              ((bytes[offset + 2] as number) << 16) |
              ((bytes[offset + 3] as number) << 24))) >>>
          0;
        const b =
          (currentHigh ^
            ((bytes[offset + 4] as number) |
              ((bytes[offset + 5] as number) << 8) |
              ((bytes[offset + 6] as number) << 16) |
              ((bytes[offset + 7] as number) << 24))) >>>
          0;
        const i7 = 7 * 256 + (a & 0xff);
        const i6 = 6 * 256 + ((a >>> 8) & 0xff);
        const i5 = 5 * 256 + ((a >>> 16) & 0xff);
        const i4 = 4 * 256 + (a >>> 24);
        const i3 = 3 * 256 + (b & 0xff);
        const i2 = 2 * 256 + ((b >>> 8) & 0xff);
        const i1 = 256 + ((b >>> 16) & 0xff);
        const i0 = b >>> 24;
        currentLow =
          ((tableLow[i7] as number) ^
            (tableLow[i6] as number) ^
            (tableLow[i5] as number) ^
            (tableLow[i4] as number) ^
            (tableLow[i3] as number) ^
            (tableLow[i2] as number) ^
            (tableLow[i1] as number) ^
            (tableLow[i0] as number)) >>>
          0;
        currentHigh =
          ((tableHigh[i7] as number) ^
            (tableHigh[i6] as number) ^
            (tableHigh[i5] as number) ^
            (tableHigh[i4] as number) ^
            (tableHigh[i3] as number) ^
            (tableHigh[i2] as number) ^
            (tableHigh[i1] as number) ^
            (tableHigh[i0] as number)) >>>
          0;
      }
      for (; offset < bytes.length; offset++) {
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
