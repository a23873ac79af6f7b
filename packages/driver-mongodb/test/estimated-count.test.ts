import type { Document } from "mongodb";
import { describe, expect, it } from "vitest";
import { type CountableCollection, estimatedCount } from "../src/inspect.ts";

/** A collection that answers $collStats with `stats` (or refuses it) and records what it was asked. */
function collection(stats: Document[] | Error, estimated = 7): CountableCollection & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    aggregate(pipeline) {
      asked.push(`aggregate ${JSON.stringify(pipeline)}`);
      return { toArray: async () => (stats instanceof Error ? Promise.reject(stats) : stats) };
    },
    async estimatedDocumentCount() {
      asked.push("estimatedDocumentCount");
      return estimated;
    },
  };
}

describe("estimatedCount (the inventory's count that reads no document)", () => {
  it("takes the count of a $collStats stage and does not send the count command", async () => {
    const answering = collection([{ ns: "shop.orders", count: 36000 }]);
    expect(await estimatedCount(answering)).toBe(36000);
    expect(answering.asked).toEqual(['aggregate [{"$collStats":{"count":{}}}]']);
  });

  it("adds up the shards of a sharded collection", async () => {
    expect(
      await estimatedCount(
        collection([
          { shard: "a", count: 10 },
          { shard: "b", count: 32 },
        ]),
      ),
    ).toBe(42);
  });

  it("falls back to estimatedDocumentCount when the stage is refused or answers nothing usable", async () => {
    const refused = collection(Object.assign(new Error("$collStats is not in API version 1"), { code: 323 }));
    expect(await estimatedCount(refused)).toBe(7);
    expect(refused.asked.at(-1)).toBe("estimatedDocumentCount");
    expect(await estimatedCount(collection([]))).toBe(7);
    expect(await estimatedCount(collection([{ ns: "shop.orders" }]))).toBe(7);
  });
});
