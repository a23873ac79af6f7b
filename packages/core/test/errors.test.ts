import { describe, expect, it } from "vitest";
import { describeError, HoardError, type HoardErrorCode, isHoardError, toHoardError } from "../src/errors.ts";

const codes: HoardErrorCode[] = [
  "INVALID_ARGUMENT",
  "UNKNOWN_SCHEME",
  "PLUGIN_NOT_INSTALLED",
  "TOOL_NOT_FOUND",
  "TOOL_FAILED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "ACCESS_DENIED",
  "UNAUTHENTICATED",
  "UNREACHABLE",
  "CORRUPT_ARCHIVE",
  "UNSUPPORTED_FORMAT",
  "ABORTED",
  "STORAGE_FAILED",
  "INTERNAL",
];

const foreignMarker = Symbol.for("hoard.error");

/**
 * What another copy of @hoard/core (a duplicate install) would create: a different class, so
 * `instanceof HoardError` is false, carrying the same global symbol.
 */
class ForeignHoardError extends Error {
  readonly code: HoardErrorCode;
  readonly detail: string | undefined = undefined;
  readonly [foreignMarker] = true;

  constructor(code: HoardErrorCode, message: string) {
    super(message);
    this.name = "HoardError";
    this.code = code;
  }
}

describe("HoardError", () => {
  it.each(codes)("carries code %s, message, name and stack", (code) => {
    const error = new HoardError(code, `something ${code}`);
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(HoardError);
    expect(error.code).toBe(code);
    expect(error.message).toBe(`something ${code}`);
    expect(error.name).toBe("HoardError");
    expect(error.stack).toContain("something");
    expect(String(error)).toBe(`HoardError: something ${code}`);
  });

  it("keeps cause and detail", () => {
    const cause = new Error("root cause");
    const error = new HoardError("TOOL_FAILED", "pg_dump failed", { cause, detail: "stderr tail" });
    expect(error.cause).toBe(cause);
    expect(error.detail).toBe("stderr tail");
  });

  it("has no cause property when none is given", () => {
    const error = new HoardError("NOT_FOUND", "missing");
    expect("cause" in error).toBe(false);
    expect(error.detail).toBeUndefined();
  });

  it("keeps a falsy cause", () => {
    expect(new HoardError("INTERNAL", "x", { cause: 0 }).cause).toBe(0);
    expect(new HoardError("INTERNAL", "x", { cause: null }).cause).toBeNull();
  });
});

describe("HoardError.isInstance and isHoardError", () => {
  it("recognise HoardErrors", () => {
    const error = new HoardError("NOT_FOUND", "missing");
    expect(HoardError.isInstance(error)).toBe(true);
    expect(isHoardError(error)).toBe(true);
    expect(isHoardError(error, "NOT_FOUND")).toBe(true);
    expect(isHoardError(error, "ACCESS_DENIED")).toBe(false);
  });

  it("recognise an error from another copy of the package by the Symbol.for marker", () => {
    const foreign = new ForeignHoardError("ACCESS_DENIED", "denied");
    expect(foreign instanceof HoardError).toBe(false);
    expect(HoardError.isInstance(foreign)).toBe(true);
    expect(isHoardError(foreign)).toBe(true);
    expect(isHoardError(foreign, "ACCESS_DENIED")).toBe(true);
    expect(isHoardError(foreign, "NOT_FOUND")).toBe(false);
  });

  it("recognise a plain object carrying the marker (e.g. across realms)", () => {
    const plain = { code: "NOT_FOUND", message: "gone", [Symbol.for("hoard.error")]: true };
    expect(HoardError.isInstance(plain)).toBe(true);
    expect(isHoardError(plain, "NOT_FOUND")).toBe(true);
  });

  it.each([
    ["a plain Error", new Error("x")],
    ["an error with a code property", Object.assign(new Error("x"), { code: "NOT_FOUND" })],
    ["a marker that is not exactly true", { [Symbol.for("hoard.error")]: "yes" }],
    ["a local symbol with the same description", { [Symbol("hoard.error")]: true }],
    ["a string key instead of the symbol", { "hoard.error": true }],
    ["null", null],
    ["undefined", undefined],
    ["a string", "HoardError"],
    ["a number", 42],
  ])("reject %s", (_name, value) => {
    expect(HoardError.isInstance(value)).toBe(false);
    expect(isHoardError(value)).toBe(false);
  });
});

describe("toHoardError", () => {
  it("returns a HoardError unchanged, whatever code is asked for", () => {
    const original = new HoardError("NOT_FOUND", "missing");
    expect(toHoardError(original, "INTERNAL", "wrapped")).toBe(original);
  });

  it("returns a foreign HoardError unchanged", () => {
    const foreign = new ForeignHoardError("UNREACHABLE", "cannot connect");
    expect(toHoardError(foreign, "INTERNAL", "wrapped")).toBe(foreign);
  });

  it("wraps an Error with the code, a prefixed message and the cause", () => {
    const cause = new Error("socket hang up");
    const error = toHoardError(cause, "STORAGE_FAILED", "upload failed");
    expect(error).toBeInstanceOf(HoardError);
    expect(error.code).toBe("STORAGE_FAILED");
    expect(error.message).toBe("upload failed: socket hang up");
    expect(error.cause).toBe(cause);
  });

  it("wraps non-Error values", () => {
    expect(toHoardError("a string", "INTERNAL", "failed").message).toBe("failed: a string");
    expect(toHoardError(42, "INTERNAL", "failed").message).toBe("failed: 42");
    expect(toHoardError(undefined, "INTERNAL", "failed").message).toBe("failed: undefined");
    expect(toHoardError({ reason: "x" }, "INTERNAL", "failed").cause).toEqual({ reason: "x" });
  });
});

describe("describeError", () => {
  it("gives the message of errors and the string of anything else", () => {
    expect(describeError(new Error("boom"))).toBe("boom");
    expect(describeError(new HoardError("INTERNAL", "inner"))).toBe("inner");
    expect(describeError("text")).toBe("text");
    expect(describeError(null)).toBe("null");
  });
});
