import { isHoardError } from "@hoard/core";
import { describe, expect, it } from "vitest";
import { redactMongoUrl, withTimeouts } from "../src/connection-string.ts";
import { createDriverFromUrl, createMongoDriver } from "../src/index.ts";

function failureOf(work: () => unknown): Error {
  try {
    work();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a failure");
}

/**
 * Malformed MongoDB URLs are command-line errors (INVALID_ARGUMENT: the CLI exits 2) whose message
 * is `mongodb: invalid database URL <URL without password>: <why>`. Every password below is
 * written so that no piece of it ("S3cr", "tPw", "Pw0rd") may appear in the message.
 */
describe("invalid MongoDB URLs", () => {
  const cases: { url: string; redacted: string; reason: RegExp }[] = [
    {
      url: "mongodb://admin:S3cr@tPw@db.example.net/shop",
      redacted: "mongodb://admin:***@db.example.net/shop",
      reason: /the user name or password holds an unencoded @: write it as %40$/,
    },
    {
      // Several hosts: the redaction runs up to the last "@" of the authority, whatever follows.
      url: "mongodb://admin:S3cr@t@Pw0rd@a.example.net:27017,b.example.net:27018/shop?replicaSet=rs0",
      redacted: "mongodb://admin:***@a.example.net:27017,b.example.net:27018/shop?replicaSet=rs0",
      reason: /unencoded @/,
    },
    {
      url: "mongodb://admin:S3cr%zztPw@db.example.net/shop",
      redacted: "mongodb://admin:***@db.example.net/shop",
      reason: /bad percent-encoding in the password/,
    },
    {
      url: "mongodb://admin:S3cr%4tPw@db.example.net/shop",
      redacted: "mongodb://admin:***@db.example.net/shop",
      reason: /bad percent-encoding in the password/,
    },
    {
      url: "mongodb://admin:S3cr/tPw@db.example.net/shop",
      redacted: "mongodb://admin:***@db.example.net/shop",
      reason: /if the password holds \/, \? or #, percent-encode them/,
    },
    {
      url: "mongodb://admin:S3cr:tPw@db.example.net/shop",
      redacted: "mongodb://admin:***@db.example.net/shop",
      reason: /the password holds an unencoded :, \[ or \]/,
    },
    {
      url: "mongodb://admin:S3cr#tPw@db.example.net/shop",
      redacted: "mongodb://admin:***@db.example.net/shop",
      reason: /percent-encode them/,
    },
    {
      url: "mongodb://admin:S3crtPw@db.example.net:99999/shop",
      redacted: "mongodb://admin:***@db.example.net:99999/shop",
      reason: /the port of the host is not a number from 1 to 65535/,
    },
    {
      url: "mongodb://admin:S3crtPw@a.example.net,,b.example.net/shop",
      redacted: "mongodb://admin:***@a.example.net,,b.example.net/shop",
      reason: /host 2 of the host list is empty/,
    },
    {
      url: "mongodb://admin:S3crtPw@/shop",
      redacted: "mongodb://admin:***@/shop",
      reason: /names no host/,
    },
    {
      url: "mongodb+srv://admin:S3crtPw@cluster.example.net:27017/shop",
      redacted: "mongodb+srv://admin:***@cluster.example.net:27017/shop",
      reason: /one host name, without a port/,
    },
    {
      url: "mongodb://admin:S3crtPw@db.example.net/sh%ZZop",
      redacted: "mongodb://admin:***@db.example.net/sh%ZZop",
      reason: /bad percent-encoding in the database name/,
    },
    {
      url: "mongodb://admin:S3crtPw@db.example.net/shop/orders",
      redacted: "mongodb://admin:***@db.example.net/shop/orders",
      reason: /a database name cannot hold \//,
    },
    {
      // Found by the official driver's parser, its reason passed on.
      url: "mongodb://admin:S3crtPw@db.example.net/shop?serverSelectionTimeoutMS=soon",
      redacted: "mongodb://admin:***@db.example.net/shop?serverSelectionTimeoutMS=soon",
      reason: /serverSelectionTimeoutMS/,
    },
    {
      url: "mongodb://admin:S3crtPw@db.example.net/shop?notAnOption=1",
      redacted: "mongodb://admin:***@db.example.net/shop?notAnOption=1",
      reason: /notanoption is not supported/,
    },
    {
      url: "mysql://admin:S3crtPw@db.example.net/shop",
      redacted: "mysql://admin:***@db.example.net/shop",
      reason: /expected mongodb:\/\/\[user:password@\]host/,
    },
  ];

  for (const { url, redacted, reason } of cases) {
    it(`explains ${redacted}`, () => {
      for (const create of [() => createMongoDriver({ url }), () => createDriverFromUrl(url, {})]) {
        const error = failureOf(create);
        expect(isHoardError(error, "INVALID_ARGUMENT"), String(error)).toBe(true);
        expect(error.message.startsWith(`mongodb: invalid database URL ${redacted}: `), error.message).toBe(true);
        expect(error.message).toMatch(reason);
        for (const piece of ["S3cr", "tPw", "Pw0rd"]) expect(error.message).not.toContain(piece);
      }
    });
  }

  it("accepts what the specification allows: seed lists, IPv6, sockets, encoded passwords, SRV", () => {
    for (const url of [
      "mongodb://admin:S3cr%40t%2FPw@a.example.net:27017,b.example.net:27018,[::1]:27019/shop?replicaSet=rs0&authSource=admin",
      "mongodb://%2Ftmp%2Fmongodb-27017.sock/shop",
      "mongodb+srv://admin:p%3Ass@cluster.example.net/shop?retryWrites=true",
      "mongodb://localhost",
    ]) {
      const driver = createMongoDriver({ url });
      expect(driver.url).not.toContain("S3cr");
      expect(driver.url).not.toContain("p%3Ass");
    }
  });

  it("redacts the password up to the last @ and secret options", () => {
    expect(redactMongoUrl("mongodb://u:a@b@c@h1:1,h2:2/db")).toBe("mongodb://u:***@h1:1,h2:2/db");
    expect(redactMongoUrl("mongodb://h/db?tlsCertificateKeyFilePassword=Pw0rd&w=1")).toBe(
      "mongodb://h/db?tlsCertificateKeyFilePassword=***&w=1",
    );
    expect(redactMongoUrl("mongodb://h/db?authMechanismProperties=AWS_SESSION_TOKEN:Pw0rd")).not.toContain("Pw0rd");
    expect(redactMongoUrl("mongodb://h:27017/db")).toBe("mongodb://h:27017/db");
  });

  it("adds the connect timeout to a URI unless the URI sets it", () => {
    expect(withTimeouts("mongodb://h/db", 2000)).toBe("mongodb://h/db?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000");
    expect(withTimeouts("mongodb://h/db?connecttimeoutms=5&serverSelectionTimeoutMS=7", 2000)).toBe(
      "mongodb://h/db?connecttimeoutms=5&serverSelectionTimeoutMS=7",
    );
  });

  it("rejects a connect timeout that is not a positive number", () => {
    expect(() => createMongoDriver({ url: "mongodb://h/db", connectTimeoutMs: 0 })).toThrow(/connectTimeoutMs must be a positive number/);
  });
});
