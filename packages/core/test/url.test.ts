import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { parseDuration } from "../src/duration.ts";
import { isHoardError } from "../src/errors.ts";
import { joinKey, parseStorageUrl, parseUrl, redactUrl, schemeOf, splitObjectUrl, trimSlashes } from "../src/url.ts";
import { thrown } from "./helpers.ts";

describe("redactUrl", () => {
  it("removes the password and keeps the user, host, port, path and harmless parameters", () => {
    expect(redactUrl("postgres://user:s3cret@db.example.com:5432/app?sslmode=require")).toBe(
      "postgres://user:***@db.example.com:5432/app?sslmode=require",
    );
    expect(redactUrl("mysql://root:p%40ss%2Fword@localhost/db")).toBe("mysql://root:***@localhost/db");
    expect(redactUrl("s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/prefix")).toBe("s3://AKIAEXAMPLE:***@bucket/prefix");
  });

  it("leaves URLs without a password as they are", () => {
    expect(redactUrl("postgres://user@host/db")).toBe("postgres://user@host/db");
    expect(redactUrl("s3://bucket/some/prefix")).toBe("s3://bucket/some/prefix");
    expect(redactUrl("mongodb+srv://cluster0.example.net/app")).toBe("mongodb+srv://cluster0.example.net/app");
  });

  it("masks secret-looking query parameters", () => {
    const redacted = redactUrl(
      "postgres://host/db?password=hunter2&secret_key=abc&SESSION_TOKEN=t0k&credentials=c&access_key=ak&application_name=hoard",
    );
    for (const secret of ["hunter2", "abc", "t0k", "=c&", "=ak"]) expect(redacted).not.toContain(secret);
    const parameters = new URL(redacted).searchParams;
    expect(parameters.get("password")).toBe("***");
    expect(parameters.get("secret_key")).toBe("***");
    expect(parameters.get("SESSION_TOKEN")).toBe("***");
    expect(parameters.get("credentials")).toBe("***");
    expect(parameters.get("access_key")).toBe("***");
    expect(parameters.get("application_name")).toBe("hoard");
  });

  it("masks every value of a repeated secret parameter", () => {
    const redacted = redactUrl("mongodb://host/db?password=one&password=two");
    expect(redacted).not.toMatch(/one|two/);
  });

  it("strips user:password@ from strings that are not valid URLs", () => {
    // Several hosts with ports do not parse as a WHATWG URL.
    expect(redactUrl("mongodb://admin:hunter2@h1:27017,h2:27017/app?replicaSet=rs")).toBe(
      "mongodb://admin:***@h1:27017,h2:27017/app?replicaSet=rs",
    );
    expect(redactUrl("postgres://user:pa#ss@host/db")).toBe("postgres://user:***@host/db");
  });

  it("does not leak a password that contains an unencoded slash (the URL does not parse)", () => {
    // A common mistake: the password is pasted without percent-encoding. parseUrl then puts
    // redactUrl(location) into its error message, so whatever survives here is printed.
    for (const location of ["postgres://user:pa/ss@host/db", "mysql://root:a/b/c@localhost:3306/app", "mongodb://u:x/y@h1:1,h2:2/db"]) {
      const redacted = redactUrl(location);
      expect(redacted, location).toContain(":***@");
      expect(redacted, location).not.toMatch(/pa\/ss|a\/b\/c|x\/y/);
    }
  });

  it("returns plain strings and paths unchanged", () => {
    expect(redactUrl("not a url")).toBe("not a url");
    expect(redactUrl("/var/backups")).toBe("/var/backups");
    expect(redactUrl("relative/dir")).toBe("relative/dir");
    expect(redactUrl("")).toBe("");
  });
});

describe("parseUrl", () => {
  it("parses a URL", () => {
    expect(parseUrl("postgres://u:p@h:1/d").hostname).toBe("h");
  });

  it("fails with INVALID_ARGUMENT naming what it parsed, without the password", () => {
    const error = thrown(() => parseUrl("postgres://user:hunter2@host:notaport/db", "database URL"));
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
    expect((error as Error).message).toContain("invalid database URL");
    expect((error as Error).message).not.toContain("hunter2");
  });
});

describe("schemeOf", () => {
  it.each([
    ["s3://bucket/x", "s3"],
    ["GS://bucket", "gs"],
    ["postgresql://h/db", "postgresql"],
    ["mongodb+srv://cluster/db", "mongodb+srv"],
    ["file:///var/backups", "file"],
    ["/var/backups", "file"],
    ["./backups", "file"],
    ["backups", "file"],
    ["C:\\backups", "file"],
    ["c:/backups", "file"],
    ["", "file"],
  ])("%s -> %s", (location, scheme) => {
    expect(schemeOf(location)).toBe(scheme);
  });
});

describe("parseStorageUrl", () => {
  it("splits object store URLs into bucket and path", () => {
    expect(parseStorageUrl("s3://bucket/a/b")).toEqual({ scheme: "s3", bucket: "bucket", path: "a/b" });
    expect(parseStorageUrl("s3://bucket/a/b/")).toEqual({ scheme: "s3", bucket: "bucket", path: "a/b" });
    expect(parseStorageUrl("gs://bucket")).toEqual({ scheme: "gs", bucket: "bucket", path: "" });
    expect(parseStorageUrl("gs://bucket/")).toEqual({ scheme: "gs", bucket: "bucket", path: "" });
    expect(parseStorageUrl("s3://my-bucket/with%20space/x")).toEqual({ scheme: "s3", bucket: "my-bucket", path: "with space/x" });
  });

  it("reads file URLs and plain paths as absolute directories", () => {
    expect(parseStorageUrl("file:///var/backups")).toEqual({ scheme: "file", bucket: "", path: "/var/backups" });
    expect(parseStorageUrl("file:///var/my%20backups")).toEqual({ scheme: "file", bucket: "", path: "/var/my backups" });
    expect(parseStorageUrl("/var/backups")).toEqual({ scheme: "file", bucket: "", path: "/var/backups" });
    expect(parseStorageUrl("backups/daily")).toEqual({ scheme: "file", bucket: "", path: resolve(process.cwd(), "backups/daily") });
    expect(parseStorageUrl("./backups")).toEqual({ scheme: "file", bucket: "", path: resolve(process.cwd(), "backups") });
    expect(parseStorageUrl("file://localhost/var/backups").path).toBe("/var/backups");
  });

  it.each(["s3://", "gs://", "s3:///prefix", "s3:bucket"])("refuses %s: no bucket", (location) => {
    const error = thrown(() => parseStorageUrl(location));
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
    expect((error as Error).message).toMatch(/bucket/);
  });

  it("refuses an unparseable URL without echoing its password", () => {
    const error = thrown(() => parseStorageUrl("s3://key:hunter2@bu cket/x"));
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
    expect((error as Error).message).not.toContain("hunter2");
  });

  it("reports malformed file URLs and percent-encoding as INVALID_ARGUMENT, not as raw TypeError/URIError", () => {
    // file://backups/daily (a host where the user meant a relative path) and a bad %-escape.
    for (const location of ["file://backups/daily", "s3://bucket/a%ZZb"]) {
      const error = thrown(() => parseStorageUrl(location));
      expect(isHoardError(error, "INVALID_ARGUMENT"), `${location}: ${String(error)}`).toBe(true);
    }
    const error = thrown(() => splitObjectUrl("s3://bucket/dir/backup%ZZ.sql"));
    expect(isHoardError(error, "INVALID_ARGUMENT"), String(error)).toBe(true);
  });
});

describe("splitObjectUrl", () => {
  it("splits object store URLs into the storage URL and the key", () => {
    expect(splitObjectUrl("s3://bucket/dir/sub/backup-20260101000000.sql.gz")).toEqual({
      storageUrl: "s3://bucket/dir/sub",
      key: "backup-20260101000000.sql.gz",
    });
    expect(splitObjectUrl("s3://bucket/backup-20260101000000.sql.gz")).toEqual({
      storageUrl: "s3://bucket",
      key: "backup-20260101000000.sql.gz",
    });
    const spaced = splitObjectUrl("gs://bucket/a%20b/c%20d.gz");
    expect(spaced).toEqual({ storageUrl: "gs://bucket/a%20b", key: "c d.gz" });
    expect(parseStorageUrl(spaced.storageUrl).path).toBe("a b");
  });

  it("splits file URLs and paths into a directory URL and a file name", () => {
    expect(splitObjectUrl("/var/backups/backup-1.sql.gz")).toEqual({ storageUrl: "file:///var/backups", key: "backup-1.sql.gz" });
    expect(splitObjectUrl("file:///var/my%20backups/a%20b.gz")).toEqual({ storageUrl: "file:///var/my%20backups", key: "a b.gz" });
    expect(splitObjectUrl("/backup.gz")).toEqual({ storageUrl: "file:///", key: "backup.gz" });
    expect(splitObjectUrl("dir/backup.gz")).toEqual({
      storageUrl: pathToFileURL(resolve(process.cwd(), "dir")).toString(),
      key: "backup.gz",
    });
  });

  it("round-trips with parseStorageUrl for file locations", () => {
    const { storageUrl, key } = splitObjectUrl("/tmp/some dir/backup-20260101000000.sql.gz");
    expect(parseStorageUrl(storageUrl).path).toBe("/tmp/some dir");
    expect(key).toBe("backup-20260101000000.sql.gz");
  });

  it.each(["s3://bucket", "s3://bucket/", "gs://bucket///"])("refuses %s: it names no object", (location) => {
    expect(
      isHoardError(
        thrown(() => splitObjectUrl(location)),
        "INVALID_ARGUMENT",
      ),
    ).toBe(true);
  });
});

describe("folder URLs and percent-encoding", () => {
  it.each(["/var/backups/", "dir/", "file:///var/backups/", "s3://bucket/shop/", "gs://bucket/a/b/", "s3://bucket/shop/?region=x"])(
    "refuses %s: a trailing slash names a folder",
    (location) => {
      const error = thrown(() => splitObjectUrl(location));
      expect(isHoardError(error, "INVALID_ARGUMENT"), String(error)).toBe(true);
      expect((error as Error).message).toBe(
        `${location} names a folder, not a backup: give the backup's full name, or the folder with --latest`,
      );
    },
  );

  it("redacts the password when refusing a folder URL", () => {
    const error = thrown(() => splitObjectUrl("s3://key:hunter2@bucket/shop/"));
    expect((error as Error).message).not.toContain("hunter2");
    expect((error as Error).message).toContain("names a folder");
  });

  it.each([
    "s3://bucket/a%ZZ/backup.sql",
    "s3://bucket/dir/backup%ZZ.sql",
    "s3://bucket/dir/backup%FF.sql",
    "s3://bucket/dir/backup-1.sql%",
    "gs://bucket/dir/backup.sql?generation=%G1",
    "file:///var/backups/a%ZZ/backup.sql",
    "file:///var/backups/backup%E0%A4.sql",
    "s3://key:pa%ZZss@bucket/dir/backup.sql",
  ])("says %s is badly percent-encoded, in parseStorageUrl and splitObjectUrl", (location) => {
    for (const parse of [parseStorageUrl, splitObjectUrl]) {
      const error = thrown(() => parse(location));
      expect(isHoardError(error, "INVALID_ARGUMENT"), `${parse.name}: ${String(error)}`).toBe(true);
      expect((error as Error).message, parse.name).toMatch(/^badly percent-encoded URL: /);
      expect((error as Error).message).not.toMatch(/URI malformed/);
      expect((error as Error).message).not.toContain("pa%ZZss");
    }
  });

  it("leaves % alone in plain paths, where it is an ordinary character", () => {
    expect(parseStorageUrl("/var/100%/backups").path).toBe("/var/100%/backups");
    expect(splitObjectUrl("/var/100%/backup.sql")).toEqual({ storageUrl: "file:///var/100%25", key: "backup.sql" });
  });
});

describe("joinKey and trimSlashes", () => {
  it("joins with single slashes and drops empty parts", () => {
    expect(joinKey("a", "b", "c")).toBe("a/b/c");
    expect(joinKey("/a/", "/b/", "", "c/")).toBe("a/b/c");
    expect(joinKey("", "backup-1.sql")).toBe("backup-1.sql");
    expect(joinKey("prefix//", "//key")).toBe("prefix/key");
    expect(joinKey()).toBe("");
    expect(joinKey("", "/", "")).toBe("");
  });

  it("keeps slashes inside a part", () => {
    expect(joinKey("a/b", "c/d")).toBe("a/b/c/d");
    expect(trimSlashes("///a/b///")).toBe("a/b");
  });
});

describe("parseDuration", () => {
  it.each([
    ["45s", 45_000],
    ["90m", 90 * 60_000],
    ["12h", 12 * 3_600_000],
    ["30d", 30 * 86_400_000],
    ["2w", 14 * 86_400_000],
    ["1w12h", 7 * 86_400_000 + 12 * 3_600_000],
    ["1d1h1m1s", 86_400_000 + 3_600_000 + 60_000 + 1_000],
    ["0d1h", 3_600_000],
    ["  30d  ", 30 * 86_400_000],
    ["1h1h", 2 * 3_600_000],
  ])("%j is %d ms", (text, milliseconds) => {
    expect(parseDuration(text)).toBe(milliseconds);
  });

  it.each([
    "",
    "   ",
    "30",
    "d",
    "30x",
    "30D",
    "-5d",
    "- 5d",
    "-1w",
    "99999999999999999999d",
    "1e3d",
    "1.5h",
    "1h 30m",
    "1h-30m",
    "0d",
    "0s0m",
    "30d!",
    "P30D",
    "thirty days",
    "1y",
  ])("refuses %j with INVALID_ARGUMENT", (text) => {
    const error = thrown(() => parseDuration(text));
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
    expect((error as Error).message).toMatch(/30d|1w12h/);
  });
});
