import { BSON } from "mongodb";
import { describe, expect, it } from "vitest";
import { documentSequenceClass, firstInvalidDocument } from "../src/raw-insert.ts";

describe("raw inserts of the built-in restore", () => {
  it("find the driver's OP_MSG document sequence (internal to mongodb 7.9: an upgrade that moves it must fail here, not slow every restore)", () => {
    expect(documentSequenceClass).toBeTypeOf("function");
  });

  it("name the first document that is not valid BSON, and nothing when every one is", () => {
    const good = BSON.serialize({ _id: 1, a: 2 });
    const bad = Buffer.from(BSON.serialize({ _id: 2, a: 3 }));
    // The type byte of "a" (int32, 0x10) becomes one that BSON does not have.
    bad[bad.indexOf(Buffer.from([0x10, 0x61, 0x00]))] = 0x99;
    expect(firstInvalidDocument([good, good], {})).toBeUndefined();
    expect(firstInvalidDocument([good, bad, bad], {})).toMatchObject({ index: 1, reason: expect.stringMatching(/unknown BSON type/i) });
  });
});
