import { describe, expect, it } from "vitest";
import { formatMongoUrl, parseMongoUrl, passwordOf, withoutDatabase } from "../src/connection-string.ts";

describe("MongoDB connection strings", () => {
  it("splits single hosts, seed lists and SRV URLs", () => {
    expect(parseMongoUrl("mongodb://127.0.0.1:27017/shop")).toEqual({
      scheme: "mongodb",
      credentials: "",
      hosts: "127.0.0.1:27017",
      database: "shop",
      query: "",
    });
    expect(parseMongoUrl("mongodb://u:p%40ss@a:1,b:2/?replicaSet=rs0")).toEqual({
      scheme: "mongodb",
      credentials: "u:p%40ss",
      hosts: "a:1,b:2",
      database: undefined,
      query: "replicaSet=rs0",
    });
    expect(parseMongoUrl("mongodb+srv://u:p@cluster.example.net/my%20db?retryWrites=true").database).toBe("my db");
    expect(parseMongoUrl("mongodb://host").database).toBeUndefined();
  });

  it("rejects other schemes without echoing the password", () => {
    expect(() => parseMongoUrl("postgresql://u:secret@host/db")).toThrow(/invalid database URL postgresql:\/\/u:\*\*\*@host\/db/);
    expect(() => parseMongoUrl("mongodb://u:secret@/db")).toThrow(/invalid database URL/);
  });

  it("formats what it parsed", () => {
    const url = "mongodb://u:p%40ss@a:1,b:2/shop?authSource=admin";
    expect(formatMongoUrl(parseMongoUrl(url))).toBe(url);
  });

  it("finds the decoded password", () => {
    expect(passwordOf("mongodb://u:p%40ss@h/db")).toBe("p@ss");
    expect(passwordOf("mongodb://h/db")).toBeUndefined();
  });

  it("drops the database for mongorestore and keeps it as the authentication database", () => {
    expect(withoutDatabase("mongodb://u:p@h:1/shop")).toBe("mongodb://u:p@h:1/?authSource=shop");
    expect(withoutDatabase("mongodb://u:p@h:1/shop?tls=true")).toBe("mongodb://u:p@h:1/?tls=true&authSource=shop");
    expect(withoutDatabase("mongodb://u:p@h:1/shop?authSource=admin")).toBe("mongodb://u:p@h:1/?authSource=admin");
    expect(withoutDatabase("mongodb://h:1/shop")).toBe("mongodb://h:1/");
    expect(withoutDatabase("mongodb://h:1/")).toBe("mongodb://h:1/");
  });
});
