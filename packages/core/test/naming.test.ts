import { format } from "date-fns";
import { describe, expect, it } from "vitest";
import { isHoardError } from "../src/errors.ts";
import { backupKey, formatTimestamp, isBackupExtension, parseBackupKey, parseTimestamp, validatePrefix } from "../src/naming.ts";
import { prng, thrown } from "./helpers.ts";

describe("formatTimestamp", () => {
  it("writes yyyyMMddHHmmss in UTC and drops milliseconds", () => {
    expect(formatTimestamp(new Date("2026-03-07T04:05:06.999Z"))).toBe("20260307040506");
    expect(formatTimestamp(new Date("1999-12-31T23:59:59Z"))).toBe("19991231235959");
    expect(formatTimestamp(new Date("2024-02-29T00:00:00Z"))).toBe("20240229000000");
  });

  it("ignores the time zone of the process, reading UTC", () => {
    // 23:30 in UTC-5 is already the next day in UTC.
    expect(formatTimestamp(new Date("2026-01-01T23:30:00-05:00"))).toBe("20260102043000");
  });

  it("refuses an invalid date with INVALID_ARGUMENT", () => {
    expect(
      isHoardError(
        thrown(() => formatTimestamp(new Date(Number.NaN))),
        "INVALID_ARGUMENT",
      ),
    ).toBe(true);
  });
});

describe("parseTimestamp", () => {
  it("reads a valid timestamp as UTC", () => {
    expect(parseTimestamp("20260307040506")?.toISOString()).toBe("2026-03-07T04:05:06.000Z");
    expect(parseTimestamp("20240229235959")?.toISOString()).toBe("2024-02-29T23:59:59.000Z");
    expect(parseTimestamp("20000229000000")?.toISOString()).toBe("2000-02-29T00:00:00.000Z");
  });

  it.each([
    ["20260231000000", "31st of February"],
    ["20260230000000", "30th of February"],
    ["20230229000000", "29th of February in a common year"],
    ["19000229000000", "29th of February in 1900"],
    ["20261301000000", "13th month"],
    ["20260001000000", "month zero"],
    ["20260100000000", "day zero"],
    ["20260431000000", "31st of April"],
    ["20260101240000", "hour 24"],
    ["20260101006000", "minute 60"],
    ["20260101000060", "second 60"],
    ["2026010100000", "13 digits"],
    ["202601010000000", "15 digits"],
    ["2026-01-01T00:", "separators"],
    ["2026010100000a", "a letter"],
    [" 20260101000000", "leading space"],
    ["", "empty"],
  ])("rejects %s (%s)", (value) => {
    expect(parseTimestamp(value)).toBeUndefined();
  });

  it("round-trips random dates from year 1000 to 9999 (and agrees with date-fns)", () => {
    const seed = 7_041_977;
    const random = prng(seed);
    const start = Date.UTC(1000, 0, 1);
    const end = Date.UTC(9999, 11, 31, 23, 59, 59);
    for (let index = 0; index < 5000; index += 1) {
      const date = new Date(start + Math.floor(random() * (end - start)));
      const stamp = formatTimestamp(date);
      const context = `seed ${seed}, case ${index}, ${date.toISOString()}`;
      expect(stamp, context).toBe(format(date, "yyyyMMddHHmmss"));
      expect(parseTimestamp(stamp)?.getTime(), context).toBe(Math.floor(date.getTime() / 1000) * 1000);
    }
  });
});

describe("validatePrefix", () => {
  it.each(["backup", "db/daily", "a.b_c-d", "nightly/app-1"])("accepts %s", (prefix) => {
    expect(validatePrefix(prefix)).toBe(prefix);
  });

  it.each([
    ["a/../../b", "use /-separated names without empty, . or .. parts"],
    ["../b", "use /-separated names without empty, . or .. parts"],
    ["a/./b", "use /-separated names without empty, . or .. parts"],
    ["a//b", "use /-separated names without empty, . or .. parts"],
    ["..", "use /-separated names without empty, . or .. parts"],
    ["nightly#1", '"#" cannot be used'],
    ["what?", '"?" cannot be used'],
    ["100%", '"%" cannot be used'],
    ["a%2F..", '"%" cannot be used'],
    ["/backup", "must not start or end with /"],
  ])("rejects %j saying what is wrong", (prefix, problem) => {
    const error = thrown(() => validatePrefix(prefix));
    expect(isHoardError(error, "INVALID_ARGUMENT")).toBe(true);
    expect((error as Error).message).toContain(`invalid prefix "${prefix}"`);
    expect((error as Error).message).toContain(problem);
  });

  it.each(["my backups", "zaïre/備份", "a+b", "x.y/z..w"])("accepts %j: it survives a URL round trip", (prefix) => {
    expect(validatePrefix(prefix)).toBe(prefix);
  });

  it.each(["", "/backup", "backup/", "bad\\prefix", "new\nline", "tab\there"])("rejects %j", (prefix) => {
    expect(
      isHoardError(
        thrown(() => validatePrefix(prefix)),
        "INVALID_ARGUMENT",
      ),
    ).toBe(true);
  });
});

describe("backupKey", () => {
  const date = new Date("2026-01-02T03:04:05.678Z");

  it("builds <prefix>-<yyyyMMddHHmmss>.<ext>", () => {
    expect(backupKey("backup", date, "sql.gz")).toBe("backup-20260102030405.sql.gz");
    expect(backupKey("db/nightly", date, "dump.gz")).toBe("db/nightly-20260102030405.dump.gz");
    expect(backupKey("mongo", date, "archive.tar.gz")).toBe("mongo-20260102030405.archive.tar.gz");
  });

  it("refuses a bad prefix or date", () => {
    expect(
      isHoardError(
        thrown(() => backupKey("/abs", date, "sql")),
        "INVALID_ARGUMENT",
      ),
    ).toBe(true);
    expect(
      isHoardError(
        thrown(() => backupKey("backup", new Date(Number.NaN), "sql")),
        "INVALID_ARGUMENT",
      ),
    ).toBe(true);
  });

  it("is read back by parseBackupKey", () => {
    for (const [prefix, extension] of [
      ["backup", "sql"],
      ["backup", "sql.bz2"],
      ["db/nightly", "dump.gz"],
      ["backup-old", "tar.gz"],
      ["x.y", "archive.zst"],
    ] as const) {
      const key = backupKey(prefix, date, extension);
      expect(parseBackupKey(key, prefix)).toEqual({ key, prefix, time: new Date("2026-01-02T03:04:05.000Z"), extension });
      expect(parseBackupKey(key)).toEqual({ key, prefix, time: new Date("2026-01-02T03:04:05.000Z"), extension });
    }
  });
});

describe("parseBackupKey", () => {
  it("reads prefix, time and the whole multi-dot extension", () => {
    expect(parseBackupKey("backup-20260101000000.dump.gz")).toEqual({
      key: "backup-20260101000000.dump.gz",
      prefix: "backup",
      time: new Date("2026-01-01T00:00:00Z"),
      extension: "dump.gz",
    });
    expect(parseBackupKey("backup-20260101000000.sql.bz2")?.extension).toBe("sql.bz2");
    expect(parseBackupKey("backup-20260101000000.tar.gz")?.extension).toBe("tar.gz");
    expect(parseBackupKey("backup-20260101000000.sql")?.extension).toBe("sql");
  });

  it("matches the prefix exactly: backup does not match backup-old-...", () => {
    const key = "backup-old-20260101000000.sql";
    expect(parseBackupKey(key, "backup")).toBeUndefined();
    expect(parseBackupKey(key, "backup-old")?.prefix).toBe("backup-old");
    expect(parseBackupKey(key)?.prefix).toBe("backup-old");
    expect(parseBackupKey("backups-20260101000000.sql", "backup")).toBeUndefined();
    expect(parseBackupKey("xbackup-20260101000000.sql", "backup")).toBeUndefined();
    expect(parseBackupKey("backup-20260101000000.sql", "backu")).toBeUndefined();
    expect(parseBackupKey("backup-20260101000000.sql", "Backup")).toBeUndefined();
  });

  it("handles prefixes with slashes as folders, matching the whole path", () => {
    expect(parseBackupKey("db/daily-20260101000000.sql.gz", "db/daily")?.prefix).toBe("db/daily");
    expect(parseBackupKey("db/daily-20260101000000.sql.gz", "daily")).toBeUndefined();
    expect(parseBackupKey("other/db/daily-20260101000000.sql.gz", "db/daily")).toBeUndefined();
    expect(parseBackupKey("db/daily-20260101000000.sql.gz")?.prefix).toBe("db/daily");
  });

  it("treats regular expression characters in the prefix literally", () => {
    expect(parseBackupKey("a.b+c-20260101000000.sql", "a.b+c")?.prefix).toBe("a.b+c");
    expect(parseBackupKey("aXb+c-20260101000000.sql", "a.b+c")).toBeUndefined();
    expect(parseBackupKey("ab-20260101000000.sql", "a*b")).toBeUndefined();
  });

  it.each([
    ["backup-20260101000000", "no extension"],
    ["backup-20260101000000.", "an empty extension"],
    ["backup-20260231000000.sql", "an impossible date"],
    ["backup-20261301000000.sql", "a 13th month"],
    ["backup-2026010100000.sql", "13 digits"],
    ["backup-202601010000000.sql", "15 digits"],
    ["backup_20260101000000.sql", "an underscore before the time"],
    ["-20260101000000.sql", "an empty prefix"],
    ["20260101000000.sql", "no prefix at all"],
    ["backup-20260101000000.sql/inner.txt", "a slash after the time"],
    ["backup-20260101000000.sql gz", "a space in the extension"],
    ["notes.txt", "an unrelated file"],
    ["backup-20260101000000.dump.gz.sha256", "a checksum beside a backup"],
    ["backup-20260101000000.dump.gz.manifest.json", "a manifest beside a backup"],
    ["backup-20260101000000.txt", "an extension no driver restores"],
    ["backup-20260101000000.sql.gz.bak", "a copy put aside"],
  ])("ignores %s (%s)", (key) => {
    expect(parseBackupKey(key)).toBeUndefined();
    expect(parseBackupKey(key, "backup")).toBeUndefined();
  });
});

describe("isBackupExtension", () => {
  it.each([
    "dump",
    "sql",
    "archive",
    "dump.gz",
    "sql.gzip",
    "sql.bz2",
    "archive.zst",
    "archive.tar.gz",
    "sql.tgz",
    "tar.gz",
    "tgz",
    "gz",
    "tar",
    "SQL.GZ",
    "nightly.sql.gz",
  ])("takes %s for a backup", (extension) => {
    expect(isBackupExtension(extension)).toBe(true);
  });

  it.each(["dump.gz.sha256", "dump.gz.manifest.json", "sha256", "txt", "sql.gz.bak", "json", "dump.gz.tmp", "sql..gz", "gz.sql.txt"])(
    "does not take %s for a backup",
    (extension) => {
      expect(isBackupExtension(extension)).toBe(false);
    },
  );
});
