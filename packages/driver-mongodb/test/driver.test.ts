import { afterEach, describe, expect, it } from "vitest";
import { createDriverFromUrl, createMongoDriver } from "../src/index.ts";

describe("createDriverFromUrl", () => {
  const previous = process.env.HOARD_MONGODB_ENGINE;
  afterEach(() => {
    if (previous === undefined) delete process.env.HOARD_MONGODB_ENGINE;
    else process.env.HOARD_MONGODB_ENGINE = previous;
  });

  it("makes a driver for mongodb:// and mongodb+srv:// URLs, with the password removed from its url", () => {
    for (const url of ["mongodb://u:secret@a:1,b:2/shop?replicaSet=rs0", "mongodb+srv://u:secret@cluster.example.net/shop"]) {
      const driver = createDriverFromUrl(url, { dumpOptions: [], restoreOptions: [] });
      expect(driver.name).toBe("mongodb");
      expect(driver.extension).toBe("archive");
      expect(driver.url).not.toContain("secret");
    }
  });

  it("reads no environment variable: the engine comes from the settings only (the CLI maps HOARD_MONGODB_ENGINE to it)", async () => {
    process.env.HOARD_MONGODB_ENGINE = "fastest";
    expect(() => createDriverFromUrl("mongodb://h/db", {})).not.toThrow();
    process.env.HOARD_MONGODB_ENGINE = "tools";
    // The built-in engine refuses dump options before connecting; the tools engine would look for mongodump.
    const driver = createDriverFromUrl("mongodb://h/db", { engine: "builtin", dumpOptions: ["--oplog"] });
    await expect(driver.dump({ workDirectory: "/nonexistent" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringMatching(/the built-in engine takes no dump options/),
    });
    expect(() => createDriverFromUrl("mongodb://h/db", { engine: "fastest" as "auto" })).toThrow(/unknown engine "fastest"/);
  });

  it("rejects URLs that are not MongoDB connection strings, and bad batch sizes", () => {
    expect(() => createMongoDriver({ url: "postgresql://h/db" })).toThrow(/invalid database URL/);
    expect(() => createMongoDriver({ url: "mongodb://h/db", batchSize: 0 })).toThrow(/batchSize/);
  });
});
