import type { DriverSettingsBag } from "@hoard/core/plugin";
import { describe, expect, it } from "vitest";
import { createDriverFromUrl, parseSqliteUrl, settings } from "../src/index.ts";

describe("parseSqliteUrl", () => {
  it("takes absolute paths, percent-decoded", () => {
    expect(parseSqliteUrl("sqlite:///srv/data/shop.db")).toBe("/srv/data/shop.db");
    expect(parseSqliteUrl("sqlite://localhost/srv/shop.db")).toBe("/srv/shop.db");
    expect(parseSqliteUrl("sqlite:/srv/shop.db")).toBe("/srv/shop.db");
    expect(parseSqliteUrl("sqlite:///srv/my%20shop%3F%23%25.db")).toBe("/srv/my shop?#%.db");
    expect(parseSqliteUrl("SQLITE:///srv/./a/../shop.db")).toBe("/srv/shop.db");
  });

  it("resolves relative paths against the working directory, so sqlite3 never sees :memory:, file: or an option", () => {
    expect(parseSqliteUrl("sqlite:data/shop.db")).toBe(`${process.cwd()}/data/shop.db`);
    expect(parseSqliteUrl("sqlite::memory:")).toBe(`${process.cwd()}/:memory:`);
    expect(parseSqliteUrl("sqlite:-bail")).toBe(`${process.cwd()}/-bail`);
  });

  it.each([
    ["sqlite://db.example.com/srv/shop.db", "it names a host (db.example.com)"],
    ["sqlite:///srv/shop.db?mode=ro", "it has a query or a fragment"],
    ["sqlite:///srv/shop.db#x", "it has a query or a fragment"],
    ["sqlite:///srv/100%.db", "badly percent-encoded"],
    ["sqlite://", "it names no file"],
    ["sqlite:///", "it names no file"],
    ["postgresql:///srv/shop.db", "it does not start with sqlite:"],
  ])("rejects %s with INVALID_ARGUMENT", (url, reason) => {
    expect(() => parseSqliteUrl(url)).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT", message: expect.stringContaining(reason) }),
    );
  });
});

describe("createDriverFromUrl", () => {
  it("makes a driver from the registry's arguments, with the common --timeout as the lock timeout", () => {
    // As text, the way a flag, the environment or a config file gives it.
    const asText = (value: string) => ({ connectTimeoutMs: value }) as unknown as DriverSettingsBag;
    const driver = createDriverFromUrl("sqlite:///srv/my shop.db", asText("30s"));
    expect(driver).toMatchObject({ name: "sqlite", extension: "sql", url: "sqlite:///srv/my%20shop.db" });
    expect(() => createDriverFromUrl("sqlite:///srv/shop.db", asText("soon"))).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT", message: expect.stringContaining("--timeout") }),
    );
  });

  it("refuses dump and restore options, which sqlite3 has no use for, instead of ignoring them", () => {
    expect(() => createDriverFromUrl("sqlite:///srv/shop.db", { dumpOptions: ["--data-only"] })).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
    expect(() => createDriverFromUrl("sqlite:///srv/shop.db", { dumpOptions: [], restoreOptions: [] })).not.toThrow();
  });

  it("declares no settings of its own", () => {
    expect(settings).toEqual({ plugin: "sqlite", title: "SQLite", settings: [] });
  });
});
