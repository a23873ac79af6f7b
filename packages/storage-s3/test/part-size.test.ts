import { describe, expect, it } from "vitest";
import { defaultPartGrowth } from "../src/options.ts";
import { maximumPartSize, minimumPartSize } from "../src/settings.ts";
import { maximumObjectSize, nextPartSize } from "../src/upload.ts";

const mebibyte = 1024 * 1024;
const gibibyte = 1024 * mebibyte;

/** The sizes of the 10,000 parts a long enough stream is cut into, and the bytes they hold. */
function schedule(configured: number, growth = defaultPartGrowth): { sizes: number[]; total: number } {
  const sizes: number[] = [];
  let total = 0;
  for (let part = 0; part < 10_000; part += 1) {
    const size = nextPartSize(total, configured, growth);
    sizes.push(size);
    total += size;
  }
  return { sizes, total };
}

/** The size of the part that holds byte `offset` of a long stream. */
function partSizeAt(offset: number, configured: number): number {
  let sent = 0;
  for (;;) {
    const size = nextPartSize(sent, configured);
    if (sent + size > offset) return size;
    sent += size;
  }
}

describe("the part sizes of a stream upload", () => {
  it.each([5 * mebibyte, 8 * mebibyte, 64 * mebibyte, 1 * gibibyte, maximumPartSize])(
    "fit any stream up to 5 TiB in 10,000 parts of 5 MiB to 5 GiB, never shrinking (from %d)",
    (configured) => {
      const { sizes, total } = schedule(configured);
      expect(total).toBeGreaterThanOrEqual(maximumObjectSize);
      for (const [index, size] of sizes.entries()) {
        expect(size).toBeGreaterThanOrEqual(minimumPartSize);
        expect(size).toBeLessThanOrEqual(maximumPartSize);
        if (index > 0) expect(size).toBeGreaterThanOrEqual(sizes[index - 1] as number);
      }
    },
  );

  it("keep the default 8 MiB for the first 800 parts (6.25 GiB), then grow by MiBs", () => {
    const { sizes } = schedule(8 * mebibyte);
    expect(sizes.slice(0, 801)).toEqual(Array(801).fill(8 * mebibyte));
    expect(sizes[801]).toBe(9 * mebibyte);
    expect(sizes.every((size) => size % mebibyte === 0)).toBe(true);
  });

  it("reach 128 MiB at 100 GiB and stop growing at 1 GiB, from 800 GiB", () => {
    expect(partSizeAt(10 * gibibyte, 8 * mebibyte)).toBe(13 * mebibyte);
    expect(partSizeAt(100 * gibibyte, 8 * mebibyte)).toBe(128 * mebibyte);
    expect(partSizeAt(500 * gibibyte, 8 * mebibyte)).toBe(640 * mebibyte);
    expect(partSizeAt(799 * gibibyte, 8 * mebibyte)).toBeLessThan(gibibyte);
    expect(partSizeAt(801 * gibibyte, 8 * mebibyte)).toBe(gibibyte);
    expect(Math.max(...schedule(8 * mebibyte).sizes)).toBe(gibibyte);
  });

  it("keep a configured size above 1 GiB unchanged", () => {
    expect(new Set(schedule(2 * gibibyte).sizes)).toEqual(new Set([2 * gibibyte]));
  });

  it("grow sooner with a smaller growth, as the tests use it", () => {
    expect(
      schedule(5 * mebibyte, 2)
        .sizes.slice(0, 6)
        .map((size) => size / mebibyte),
    ).toEqual([5, 5, 5, 8, 12, 18]);
  });
});
