import { describe, expect, it } from "vitest";
import { isHoardError } from "../src/errors.ts";
import { openDriver, openStorage, registerDriver } from "../src/registry.ts";

/** An importer that behaves as Node does when a package is not installed. */
const nothingInstalled = async (specifier: string) => {
  const error = new Error(`Cannot find package '${specifier}' imported from /somewhere`) as NodeJS.ErrnoException;
  error.code = "ERR_MODULE_NOT_FOUND";
  throw error;
};

describe("the scheme registry", () => {
  it("names the package to install when a driver is missing", async () => {
    const error = await openDriver("postgresql://app:secret@db/shop", {}, nothingInstalled).catch((caught: unknown) => caught);
    expect(isHoardError(error, "PLUGIN_NOT_INSTALLED")).toBe(true);
    expect((error as Error).message).toBe(
      "postgresql:// databases need @hoard/driver-postgresql: install it with `npm install @hoard/driver-postgresql`",
    );
  });

  it("names the package to install when a storage is missing", async () => {
    const error = await openStorage("gs://bucket/prefix", {}, nothingInstalled).catch((caught: unknown) => caught);
    expect(isHoardError(error, "PLUGIN_NOT_INSTALLED")).toBe(true);
    expect((error as Error).message).toBe("gs:// storage needs @hoard/storage-gcs: install it with `npm install @hoard/storage-gcs`");
  });

  it("rejects unknown schemes without printing the password", async () => {
    const error = await openDriver("redis://user:hunter2@cache/0", {}, nothingInstalled).catch((caught: unknown) => caught);
    expect(isHoardError(error, "UNKNOWN_SCHEME")).toBe(true);
    expect((error as Error).message).not.toContain("hunter2");
  });

  it("loads the package on first use and hands it the URL and settings", async () => {
    const requested: string[] = [];
    const driver = await openDriver("mysql://root@db/shop", { dumpOptions: ["--no-data"] }, async (specifier) => {
      requested.push(specifier);
      return {
        createDriverFromUrl: (url: string, settings: { dumpOptions?: string[] }) => ({
          name: "fake",
          url,
          extension: settings.dumpOptions?.join(" "),
        }),
      };
    });
    expect(requested).toEqual(["@hoard/driver-mariadb"]);
    expect(driver).toMatchObject({ url: "mysql://root@db/shop", extension: "--no-data" });
  });

  it("opens local directories without any package, and lets custom drivers in", async () => {
    expect((await openStorage("/tmp/hoard-registry-test", {}, nothingInstalled)).scheme).toBe("file");
    registerDriver("custom", { createDriverFromUrl: (url) => ({ name: "custom", url, extension: "bin" }) as never });
    expect((await openDriver("custom://x", {}, nothingInstalled)).name).toBe("custom");
  });
});
