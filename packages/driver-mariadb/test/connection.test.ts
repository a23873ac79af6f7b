import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HoardError } from "@hoard/core";
import { describe, expect, it } from "vitest";
import { competingOptionFile, connectionArguments, quoteOptionValue } from "../src/connection.ts";
import { classifyFailure } from "../src/errors.ts";
import { createDriverFromUrl, createMariadbDriver, explainMariadbFailure, parseMariadbUrl } from "../src/index.ts";

describe("URLs", () => {
  it("reads user, password, host, port and database, percent-decoded", () => {
    expect(parseMariadbUrl("mariadb://us%40er:p%40ss%3Aw%2Frd@db.example:3307/my%20db")).toEqual({
      host: "db.example",
      port: 3307,
      socket: undefined,
      user: "us@er",
      password: "p@ss:w/rd",
      database: "my db",
    });
    expect(parseMariadbUrl("mysql://root@[::1]/shop")).toMatchObject({ host: "::1", port: undefined, database: "shop" });
  });

  it("names no database without a path, which means all databases", () => {
    for (const url of ["mariadb://root@localhost", "mariadb://root@localhost/", "mysql://h:3306"]) {
      expect(parseMariadbUrl(url).database).toBeUndefined();
      expect(() => createMariadbDriver({ url })).not.toThrow();
      expect(() => createMariadbDriver({ url, allDatabases: false })).toThrow(/names no database/);
    }
    expect(() => createMariadbDriver({ url: "mariadb://h/db", allDatabases: true })).toThrow(/allDatabases needs a URL without a database/);
  });

  it("connects over TCP to a host, through ?socket= to a socket, or as the client likes", () => {
    expect(connectionArguments(parseMariadbUrl("mariadb://u:secret@localhost:3306/db"))).toEqual([
      "--protocol=TCP",
      "--host=localhost",
      "--port=3306",
      "--user=u",
    ]);
    expect(connectionArguments(parseMariadbUrl("mariadb://u@localhost/db?socket=/run/mysqld/mysqld.sock"))).toEqual([
      "--protocol=SOCKET",
      "--socket=/run/mysqld/mysqld.sock",
      "--user=u",
    ]);
    expect(connectionArguments(parseMariadbUrl("mariadb:///db"))).toEqual([]);
  });

  it("refuses other schemes, unknown parameters and nested paths without echoing the password", () => {
    for (const url of ["postgresql://u:secret@h/db", "mariadb://u:secret@h/db?ssl=true", "mariadb://u:secret@h/a/b"]) {
      let caught: unknown;
      try {
        parseMariadbUrl(url);
      } catch (error) {
        caught = error;
      }
      expect(HoardError.isInstance(caught) && caught.code).toBe("INVALID_ARGUMENT");
      expect((caught as Error).message).not.toContain("secret");
    }
  });

  it("makes a driver for the registry with a redacted URL and the sql extension", () => {
    const driver = createDriverFromUrl("mysql://u:secret@h/db", { dumpOptions: ["--no-data"] });
    expect(driver).toMatchObject({ name: "mariadb", extension: "sql" });
    expect(driver.url).not.toContain("secret");
  });
});

describe("option files", () => {
  it("notices a password in ~/.my.cnf, which would win over the URL's", async () => {
    const home = await mkdtemp(join(tmpdir(), "hoard-mariadb-home-"));
    const saved = process.env.HOME;
    process.env.HOME = home;
    try {
      expect(await competingOptionFile()).toBeUndefined();
      await writeFile(join(home, ".my.cnf"), "[client]\nuser=me\n");
      expect(await competingOptionFile()).toBeUndefined();
      await writeFile(join(home, ".my.cnf"), "[client]\nuser=me\n  password = other\n");
      expect(await competingOptionFile()).toBe(join(home, ".my.cnf"));
    } finally {
      process.env.HOME = saved;
      await rm(home, { recursive: true, force: true });
    }
  });

  it("quotes a password so the option reader gives it back unchanged", () => {
    expect(quoteOptionValue(`a"b\\c#d e\nf\tg'h`)).toBe(`"a\\"b\\\\c#d e\\nf\\tg'h"`);
  });
});

describe("failures", () => {
  it("explains the usual errors of both tools and gives them precise codes", () => {
    const cases = [
      [`mariadb-dump: Got error: 1045: "Access denied for user 'u'@'h' (using password: YES)" when trying to connect`, "UNAUTHENTICATED"],
      ["ERROR 1045 (28000): Access denied for user 'u'@'h' (using password: YES)", "UNAUTHENTICATED"],
      [`mariadb-dump: Got error: 1049: "Unknown database 'x'" when selecting the database`, "NOT_FOUND"],
      ["ERROR 1044 (42000): Access denied for user 'u'@'%' to database 'x'", "ACCESS_DENIED"],
      ["mariadb-dump: Couldn't execute 'show events': Access denied for user 'u'@'%' to database 'x' (1044)", "ACCESS_DENIED"],
      [`mariadb-dump: Got error: 2002: "Can't connect to server on '127.0.0.1' (115)" when trying to connect`, "UNREACHABLE"],
      ["ERROR 1064 (42000) at line 3: You have an error in your SQL syntax", "TOOL_FAILED"],
    ] as const;
    for (const [stderr, code] of cases) {
      const explained = explainMariadbFailure(stderr);
      expect(explained).toBeDefined();
      expect(explained).not.toMatch(/^(mariadb-dump|mariadb):/);
      const classified = classifyFailure(new HoardError("TOOL_FAILED", `tool failed: ${explained}`, { detail: stderr }));
      expect((classified as HoardError).code).toBe(code);
    }
    expect(explainMariadbFailure("something else entirely")).toBeUndefined();
  });
});
