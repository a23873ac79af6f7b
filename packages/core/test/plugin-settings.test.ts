import { describe, expect, it } from "vitest";
import { isHoardError } from "../src/errors.ts";
import {
  commonSettings,
  defineSettings,
  environmentVariableOf,
  flagOf,
  parseByteSize,
  parseSetting,
  readSettings,
  type SettingDeclaration,
} from "../src/plugin/settings.ts";

const declared = defineSettings("demo", "Demo", [
  { name: "demoEndpoint", kind: "string", help: "endpoint" },
  { name: "demoPathStyle", kind: "boolean", help: "path style" },
  { name: "demoQueueSize", kind: "integer", help: "parts at once", minimum: 1, maximum: 64, default: 3 },
  { name: "demoPartSize", kind: "bytes", help: "part size", minimum: 5 * 1024 * 1024 },
  { name: "demoWait", kind: "duration", help: "wait" },
  { name: "demoMode", kind: "choice", help: "mode", choices: ["fast", "safe"] },
  {
    name: "demoPassword",
    kind: "string",
    help: "secret",
    secret: true,
    check: (value) => (String(value).length < 4 ? "too short" : undefined),
  },
]);

function setting(name: string): SettingDeclaration {
  const found = declared.settings.find((candidate) => candidate.name === name);
  if (!found) throw new Error(name);
  return found;
}

function rejection(name: string, raw: unknown): string {
  try {
    parseSetting(setting(name), raw);
  } catch (error) {
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
    return (error as Error).message;
  }
  throw new Error(`${name}=${String(raw)} was accepted`);
}

describe("plugin settings", () => {
  it("derives the flag and the environment variable from the name", () => {
    expect(flagOf(setting("demoPartSize"))).toBe("demo-part-size");
    expect(environmentVariableOf(setting("demoPartSize"))).toBe("HOARD_DEMO_PART_SIZE");
    const timeout = commonSettings.settings[0] as SettingDeclaration;
    expect(flagOf(timeout)).toBe("timeout");
    expect(environmentVariableOf(timeout)).toBe("HOARD_TIMEOUT");
  });

  it("parses each kind from text and keeps typed values", () => {
    expect(parseSetting(setting("demoEndpoint"), "  http://x  ")).toBe("http://x");
    expect(parseSetting(setting("demoPathStyle"), "yes")).toBe(true);
    expect(parseSetting(setting("demoPathStyle"), "0")).toBe(false);
    expect(parseSetting(setting("demoPathStyle"), false)).toBe(false);
    expect(parseSetting(setting("demoQueueSize"), "8")).toBe(8);
    expect(parseSetting(setting("demoPartSize"), "16MiB")).toBe(16 * 1024 * 1024);
    expect(parseSetting(setting("demoPartSize"), "16M")).toBe(16 * 1024 * 1024);
    expect(parseSetting(setting("demoPartSize"), 8 * 1024 * 1024)).toBe(8 * 1024 * 1024);
    expect(parseSetting(setting("demoWait"), "1m30s")).toBe(90_000);
    expect(parseSetting(setting("demoMode"), "SAFE")).toBe("safe");
    expect(parseSetting(setting("demoEndpoint"), "  ")).toBeUndefined();
    expect(parseSetting(setting("demoEndpoint"), undefined)).toBeUndefined();
  });

  it("rejects bad values with one line naming the flag", () => {
    expect(rejection("demoPathStyle", "maybe")).toBe('invalid --demo-path-style: "maybe" is not true or false');
    expect(rejection("demoQueueSize", "1.5")).toContain("not a whole number");
    expect(rejection("demoQueueSize", "abc")).toContain("not a whole number");
    expect(rejection("demoQueueSize", "0")).toContain("below the minimum of 1");
    expect(rejection("demoQueueSize", "65")).toContain("above the maximum of 64");
    expect(rejection("demoPartSize", "16 parsecs")).toContain("not a size");
    expect(rejection("demoPartSize", "1M")).toContain("below the minimum");
    expect(rejection("demoWait", "-5d")).toContain("invalid duration");
    expect(rejection("demoMode", "slow")).toContain("not one of fast, safe");
  });

  it("never quotes a secret's value", () => {
    const message = rejection("demoPassword", "abc");
    expect(message).toBe("invalid --demo-password: too short");
    expect(message).not.toContain("abc");
  });

  it("reads a bag: declared keys parsed, defaults filled, others left out", () => {
    expect(readSettings(declared, { demoPartSize: "8MiB", unrelated: "x" })).toEqual({
      demoEndpoint: undefined,
      demoPathStyle: undefined,
      demoQueueSize: 3,
      demoPartSize: 8 * 1024 * 1024,
      demoWait: undefined,
      demoMode: undefined,
      demoPassword: undefined,
    });
  });

  it("refuses broken declarations at once", () => {
    expect(() => defineSettings("x", "X", [{ name: "Bad-Name", kind: "string", help: "" }])).toThrow(/camelCase/);
    expect(() =>
      defineSettings("x", "X", [
        { name: "same", kind: "string", help: "" },
        { name: "same", kind: "string", help: "" },
      ]),
    ).toThrow(/twice/);
    expect(() => defineSettings("x", "X", [{ name: "pick", kind: "choice", help: "" }])).toThrow(/no choices/);
  });

  it("parses byte sizes in powers of 1024 and refuses the rest", () => {
    expect(parseByteSize("512KiB")).toBe(512 * 1024);
    expect(parseByteSize("1g")).toBe(1024 ** 3);
    expect(parseByteSize("1024")).toBe(1024);
    expect(parseByteSize("1.5M")).toBeUndefined();
    expect(parseByteSize("-1")).toBeUndefined();
    expect(parseByteSize("99999999999999T")).toBeUndefined();
  });
});
