import { describe, expect, it } from "vitest";
import { isHoardError } from "../src/errors.ts";
import { defineSettings } from "../src/plugin/settings.ts";
import {
  driverPackages,
  loadPluginSettings,
  openDriver,
  openStorage,
  pluginPackages,
  registerDriver,
  storagePackages,
} from "../src/registry.ts";

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

  it("reports a driver or storage package that is installed but fails to load as INTERNAL, naming it (not as a bad URL)", async () => {
    // The CLI said "invalid database URL ...: it does not parse" for any error that was not a
    // HoardError, so a driver whose build was half written read as a malformed URL.
    const broken = async (specifier: string) => {
      if (specifier.endsWith("driver-postgresql")) throw new SyntaxError("Unexpected end of input");
      const error = new Error(
        `Cannot find module '/app/node_modules/${specifier}/dist/client.js' imported from /app/node_modules/${specifier}/dist/index.js`,
      );
      (error as NodeJS.ErrnoException).code = "ERR_MODULE_NOT_FOUND";
      throw error;
    };
    const driver = await openDriver("postgresql://app:secret@db/shop", {}, broken).catch((caught: unknown) => caught);
    expect(isHoardError(driver, "INTERNAL")).toBe(true);
    expect((driver as Error).message).toBe("@hoard/driver-postgresql failed to load: Unexpected end of input");
    const storage = await openStorage("s3://bucket/prefix", {}, broken).catch((caught: unknown) => caught);
    expect(isHoardError(storage, "INTERNAL")).toBe(true);
    expect((storage as Error).message).toMatch(/^@hoard\/storage-s3 failed to load: Cannot find module '.*dist\/client\.js'/);
  });

  it("opens local directories without any package, and lets custom drivers in", async () => {
    expect((await openStorage("/tmp/hoard-registry-test", {}, nothingInstalled)).scheme).toBe("file");
    registerDriver("custom", { createDriverFromUrl: (url) => ({ name: "custom", url, extension: "bin" }) as never });
    expect((await openDriver("custom://x", {}, nothingInstalled)).name).toBe("custom");
  });
});

describe("the plugin table and its settings", () => {
  const declared = (plugin: string) => ({
    settings: defineSettings(plugin, plugin.toUpperCase(), [{ name: `${plugin}Thing`, kind: "string", help: "a thing" }]),
  });
  /** An importer that behaves as Node does for an installed package without a `./settings` export. */
  const noSubpath = (specifier: string) => {
    const error = new Error(
      `Package subpath './settings' is not defined by "exports" in /x/${specifier}/package.json`,
    ) as NodeJS.ErrnoException;
    error.code = "ERR_PACKAGE_PATH_NOT_EXPORTED";
    return error;
  };

  it("maps every scheme to one package, from one table", () => {
    // Spot checks of the schemes users rely on; a new plugin adds its line to the table and nothing here.
    expect(driverPackages).toMatchObject({
      postgresql: "@hoard/driver-postgresql",
      postgres: "@hoard/driver-postgresql",
      mariadb: "@hoard/driver-mariadb",
      mysql: "@hoard/driver-mariadb",
      mongodb: "@hoard/driver-mongodb",
      "mongodb+srv": "@hoard/driver-mongodb",
    });
    expect(storagePackages).toEqual({ s3: "@hoard/storage-s3", gs: "@hoard/storage-gcs" });
    const schemes = pluginPackages.flatMap((plugin) => plugin.schemes);
    expect(new Set(schemes).size).toBe(schemes.length);
    for (const plugin of pluginPackages) {
      for (const scheme of plugin.schemes) {
        expect((plugin.kind === "driver" ? driverPackages : storagePackages)[scheme]).toBe(plugin.name);
      }
    }
    expect(Object.keys(driverPackages).length + Object.keys(storagePackages).length).toBe(schemes.length);
  });

  it("imports <package>/settings of each package in the table's order, whatever order the imports finish in", async () => {
    const requested: string[] = [];
    const settings = await loadPluginSettings(async (specifier) => {
      requested.push(specifier);
      // The first packages answer last.
      await new Promise((resolve) => setTimeout(resolve, 5 * (pluginPackages.length - requested.length)));
      return declared(specifier.split("/")[1]?.replace(/^(storage|driver)-/, "") ?? "");
    });
    expect(requested.sort()).toEqual(pluginPackages.map((plugin) => `${plugin.name}/settings`).sort());
    expect(settings.map((plugin) => plugin.plugin)).toEqual(
      pluginPackages.map((plugin) => plugin.name.split("/")[1]?.replace(/^(storage|driver)-/, "")),
    );
  });

  it("skips packages that are not installed and says which", async () => {
    const skipped: string[] = [];
    const settings = await loadPluginSettings(
      async (specifier) => {
        if (specifier === "@hoard/storage-s3/settings") return declared("s3");
        // Node names the package, not the subpath, when the package is missing.
        const error = new Error(`Cannot find package '${specifier.replace(/\/settings$/, "")}' imported from /cli/dist/main.js`);
        (error as NodeJS.ErrnoException).code = "ERR_MODULE_NOT_FOUND";
        throw error;
      },
      { onSkipped: (plugin, reason) => skipped.push(`${plugin.name}: ${reason}`) },
    );
    expect(settings.map((plugin) => plugin.plugin)).toEqual(["s3"]);
    expect(skipped).toEqual(
      pluginPackages.filter((plugin) => plugin.name !== "@hoard/storage-s3").map((plugin) => `${plugin.name}: not-installed`),
    );
  });

  it("skips installed packages without a ./settings export (they declare nothing)", async () => {
    const skipped: string[] = [];
    const settings = await loadPluginSettings(
      async (specifier) => {
        if (specifier.startsWith("@hoard/driver-")) throw noSubpath(specifier);
        return declared(specifier.includes("s3") ? "s3" : "gcs");
      },
      { kind: "storage", onSkipped: (plugin, reason) => skipped.push(`${plugin.name}: ${reason}`) },
    );
    expect(settings.map((plugin) => plugin.plugin)).toEqual(["s3", "gcs"]);
    expect(skipped).toEqual([]);
    const drivers = await loadPluginSettings(
      async (specifier) => {
        throw noSubpath(specifier);
      },
      { kind: "driver", onSkipped: (plugin, reason) => skipped.push(`${plugin.name}: ${reason}`) },
    );
    expect(drivers).toEqual([]);
    expect(skipped).toEqual(pluginPackages.filter((plugin) => plugin.kind === "driver").map((plugin) => `${plugin.name}: no-settings`));
  });

  it("reports any other import failure as a bug, naming the package", async () => {
    // A file missing inside an installed package (say, not built) is not "not installed".
    const missingFile = await loadPluginSettings(async (specifier) => {
      const error = new Error(
        `Cannot find module '/app/node_modules/${specifier.replace(/\/settings$/, "")}/dist/settings.js' imported from /cli/dist/main.js`,
      );
      (error as NodeJS.ErrnoException).code = "ERR_MODULE_NOT_FOUND";
      throw error;
    }).catch((caught: unknown) => caught);
    expect(isHoardError(missingFile, "INTERNAL")).toBe(true);
    expect((missingFile as Error).message).toContain("@hoard/storage-s3/settings failed to load");

    const throwing = await loadPluginSettings(async (specifier) => {
      if (specifier.includes("mariadb")) throw new Error('demo: setting "x" is declared twice');
      return declared("x");
    }).catch((caught: unknown) => caught);
    expect(isHoardError(throwing, "INTERNAL")).toBe(true);
    expect((throwing as Error).message).toBe('@hoard/driver-mariadb/settings failed to load: demo: setting "x" is declared twice');

    const noExport = await loadPluginSettings(async () => ({ other: 1 }), { kind: "storage" }).catch((caught: unknown) => caught);
    expect(isHoardError(noExport, "INTERNAL")).toBe(true);
    expect((noExport as Error).message).toContain("@hoard/storage-s3/settings does not export `settings`");
  });
});
