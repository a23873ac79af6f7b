import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HoardError, isHoardError } from "../src/errors.ts";
import { defineSettings } from "../src/plugin/settings.ts";
import {
  abortable,
  abortedError,
  byteCounter,
  connectionLostError,
  existsVia,
  guardDownload,
  networkFailureOf,
  objectNaming,
  parseBucketUrl,
  readStorageSettings,
  silenceTimer,
  silentEndpointError,
  unreachableError,
} from "../src/plugin/storage-kit.ts";

function thrown(work: () => unknown): HoardError {
  try {
    work();
  } catch (error) {
    if (HoardError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("nothing was thrown");
}

describe("objectNaming", () => {
  it("puts keys under the prefix, checked, and takes them back out", () => {
    const naming = objectNaming("demo", "/daily/db/");
    expect(naming.prefix).toBe("daily/db");
    expect(naming.objectName("a/b.gz")).toBe("daily/db/a/b.gz");
    expect(naming.keyOf("daily/db/a/b.gz")).toBe("a/b.gz");
    expect(objectNaming("demo", "").objectName("a.gz")).toBe("a.gz");
  });

  it.each(["", "a//b", "../a", "a\\b", "a\u0001"])("refuses the key %j naming the store", (key) => {
    const error = thrown(() => objectNaming("demo", "p").objectName(key));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toMatch(/^demo: invalid key/);
  });

  it("destroys an upload's body when its key is refused", () => {
    const body = Readable.from(["x"]);
    expect(objectNaming("demo", "p").uploadName("a.gz", body)).toBe("p/a.gz");
    expect(body.destroyed).toBe(false);
    expect(thrown(() => objectNaming("demo", "p").uploadName("../a", body)).code).toBe("INVALID_ARGUMENT");
    expect(body.destroyed).toBe(true);
  });

  it("keeps a listing prefix as it is (backup/ must not match backups-1) and checks it", () => {
    const naming = objectNaming("demo", "p");
    expect(naming.listPrefix("")).toBe("p/");
    expect(naming.listPrefix("backup/")).toBe("p/backup/");
    expect(naming.listPrefix("backup-")).toBe("p/backup-");
    expect(objectNaming("demo", "").listPrefix("")).toBe("");
    expect(thrown(() => naming.listPrefix("a//")).code).toBe("INVALID_ARGUMENT");
  });
});

describe("existsVia", () => {
  it("answers from stat", async () => {
    const exists = existsVia(async (key) => (key === "here" ? { key, size: 1 } : undefined));
    expect(await exists("here")).toBe(true);
    expect(await exists("gone")).toBe(false);
  });
});

describe("parseBucketUrl", () => {
  it("takes the bucket and the prefix", () => {
    expect(parseBucketUrl("demo", "dm", "dm://bucket/a/b/", "--demo-* flags")).toEqual({ bucket: "bucket", prefix: "a/b" });
    expect(parseBucketUrl("demo", "dm", "dm://bucket", "--demo-* flags")).toEqual({ bucket: "bucket", prefix: "" });
  });

  it("refuses another scheme", () => {
    const error = thrown(() => parseBucketUrl("demo", "dm", "s3://bucket/p", "--demo-* flags"));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toBe("demo: not a dm://bucket/prefix URL: s3://bucket/p");
  });

  it.each(["dm://user:hunter2@bucket/p", "dm://hunter2@bucket/p", "dm://:hunter2@bucket/p"])(
    "refuses credentials in %s without repeating them",
    (url) => {
      const error = thrown(() => parseBucketUrl("demo", "dm", url, "--demo-* flags"));
      expect(error.code).toBe("INVALID_ARGUMENT");
      expect(error.message).toBe("demo: dm://***@bucket/p: use dm://bucket/prefix and pass credentials and options as --demo-* flags");
      expect(error.message).not.toMatch(/hunter2|user/);
    },
  );

  it.each(["dm://bucket/p?token=hunter2", "dm://bucket/p?project=hunter2"])("refuses the query of %s without repeating it", (url) => {
    const error = thrown(() => parseBucketUrl("demo", "dm", url, "--demo-* flags"));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toBe("demo: dm://bucket/p?***: use dm://bucket/prefix and pass credentials and options as --demo-* flags");
  });
});

describe("readStorageSettings", () => {
  const declared = defineSettings("demo", "Demo", [
    { name: "demoPartSize", kind: "bytes", help: "part size", minimum: 1024, default: 4096 },
    { name: "demoPathStyle", kind: "boolean", help: "path style" },
  ]);

  it("reads the declared settings and the common timeout, as text or typed", () => {
    expect(readStorageSettings(declared, { demoPartSize: "2KiB", demoPathStyle: "no", timeoutMs: " 700 " } as never)).toEqual({
      common: { timeoutMs: 700 },
      values: { demoPartSize: 2048, demoPathStyle: false },
    });
    expect(readStorageSettings(declared, {})).toEqual({ common: {}, values: { demoPartSize: 4096, demoPathStyle: undefined } });
  });

  it("reads extra settings for library callers, never quoting a secret", () => {
    const extra = [{ name: "demoToken", kind: "string", help: "token", secret: true, check: () => "too short" }] as const;
    const error = thrown(() => readStorageSettings(declared, { demoToken: "hunter2" }, extra));
    expect(error.message).toBe("demo: invalid --demo-token: too short");
    expect(readStorageSettings(declared, {}, [{ name: "demoToken", kind: "string", help: "token" }]).values.demoToken).toBeUndefined();
  });

  it.each([
    [{ demoPartSize: "lots" }, /^demo: invalid --demo-part-size: "lots" is not a size/],
    [{ demoPartSize: "512" }, /^demo: invalid --demo-part-size: "512" is below the minimum of 1024$/],
    [{ timeoutMs: 0 }, /^demo: invalid --timeout: "0" is below the minimum of 1$/],
    [{ timeoutMs: 1.5 }, /^demo: invalid --timeout: "1.5" is not a whole number$/],
    [{ timeoutMs: "15s" }, /^demo: invalid --timeout: "15s" is not a whole number$/],
  ])("refuses %o, naming the plugin and the flag", (bag, message) => {
    const error = thrown(() => readStorageSettings(declared, bag as never));
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toMatch(message);
  });
});

describe("networkFailureOf", () => {
  const coded = (code: string, message = `connect ${code}`) => Object.assign(new Error(message), { code });

  it.each([
    [coded("ECONNREFUSED"), { kind: "unreachable", code: "ECONNREFUSED" }],
    [new AggregateError([coded("ENOTFOUND")], "failed"), { kind: "unreachable", code: "ENOTFOUND" }],
    [new Error("request failed", { cause: coded("EHOSTUNREACH") }), { kind: "unreachable", code: "EHOSTUNREACH" }],
    [new Error("request to http://x failed, reason: connect ECONNREFUSED 127.0.0.1:1"), { kind: "unreachable", code: "ECONNREFUSED" }],
    [coded("ECONNRESET", "read ECONNRESET"), { kind: "lost", code: "ECONNRESET" }],
    [new Error("socket hang up"), { kind: "lost", code: "socket hang up" }],
    [new Error("Premature close"), { kind: "lost", code: "Premature close" }],
  ])("reads %s", (error, failure) => {
    expect(networkFailureOf(error)).toEqual(failure);
  });

  it("is undefined for anything else", () => {
    expect(networkFailureOf(Object.assign(new Error("Forbidden"), { code: 403 }))).toBeUndefined();
    expect(networkFailureOf("text")).toBeUndefined();
    expect(networkFailureOf(undefined)).toBeUndefined();
  });
});

describe("transport messages", () => {
  it("name the plugin, the endpoint and what was being done", () => {
    const silent = silentEndpointError("demo", "http://127.0.0.1:1", 15_000, "GetObject dm://b/k");
    expect([silent.code, silent.message]).toEqual([
      "UNREACHABLE",
      "demo: no answer from http://127.0.0.1:1 within 15 s (GetObject dm://b/k)",
    ]);
    expect(silentEndpointError("demo", "e", 1500, "x").message).toBe("demo: no answer from e within 1.5 s (x)");
    const lost = connectionLostError("demo", "e", "uploading dm://b/k", "ECONNRESET");
    expect([lost.code, lost.message]).toEqual(["UNREACHABLE", "demo: connection to e lost while uploading dm://b/k (ECONNRESET)"]);
    const unreachable = unreachableError("demo", "e", "ECONNREFUSED", "check --demo-endpoint");
    expect([unreachable.code, unreachable.message]).toEqual(["UNREACHABLE", "demo: cannot reach e (ECONNREFUSED): check --demo-endpoint"]);
    const aborted = abortedError("demo", "listing dm://b");
    expect([aborted.code, aborted.message]).toEqual(["ABORTED", "demo: listing dm://b aborted"]);
  });
});

describe("abortable", () => {
  afterEach(() => vi.useRealTimers());
  const aborted = (reason: unknown) => abortedError("demo", "work", reason);

  it("passes the answer through", async () => {
    expect(await abortable(async () => 42, { aborted })).toBe(42);
  });

  it("fails with ABORTED when the signal fires, without waiting for the work", async () => {
    const controller = new AbortController();
    const pending = abortable(() => new Promise<never>(() => {}), { signal: controller.signal, aborted });
    controller.abort(new Error("stop"));
    await expect(pending).rejects.toSatisfy((error) => isHoardError(error, "ABORTED"));
    await expect(abortable(async () => 1, { signal: controller.signal, aborted })).rejects.toSatisfy((error) =>
      isHoardError(error, "ABORTED"),
    );
  });

  it("fails with the deadline's error when no answer comes in time", async () => {
    vi.useFakeTimers();
    const pending = abortable(() => new Promise<never>(() => {}), {
      aborted,
      deadlineMs: 1000,
      deadline: () => silentEndpointError("demo", "e", 1000, "work"),
    });
    const settled = expect(pending).rejects.toThrow("demo: no answer from e within 1 s (work)");
    await vi.advanceTimersByTimeAsync(1000);
    await settled;
  });
});

describe("byteCounter", () => {
  it("counts the bytes and reports the running total", async () => {
    const seen: number[] = [];
    const counter = byteCounter((bytes) => seen.push(bytes));
    const chunks: Buffer[] = [];
    await pipeline(Readable.from([Buffer.from("abc"), Buffer.from("de")]), counter, async (source) => {
      for await (const chunk of source) chunks.push(chunk as Buffer);
    });
    expect(counter.bytes).toBe(5);
    expect(seen).toEqual([3, 5]);
    expect(Buffer.concat(chunks).toString()).toBe("abcde");
  });
});

describe("silenceTimer", () => {
  afterEach(() => vi.useRealTimers());

  it("fires after the silence, not while re-armed or paused", async () => {
    vi.useFakeTimers();
    let fired = 0;
    const timer = silenceTimer(1000, () => fired++);
    timer.arm();
    await vi.advanceTimersByTimeAsync(900);
    timer.arm();
    await vi.advanceTimersByTimeAsync(900);
    expect(fired).toBe(0);
    timer.pause();
    timer.arm();
    await vi.advanceTimersByTimeAsync(5000);
    expect(fired).toBe(0);
    timer.resume();
    await vi.advanceTimersByTimeAsync(1000);
    expect(fired).toBe(1);
    timer.arm();
    timer.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(fired).toBe(1);
  });
});

describe("guardDownload", () => {
  afterEach(() => vi.useRealTimers());
  const options = {
    aborted: (cause: unknown) => abortedError("demo", "downloading dm://b/k", cause),
    failed: (error: unknown) => new HoardError("STORAGE_FAILED", `demo: downloading dm://b/k failed: ${String(error)}`),
  };

  it("passes the bytes through", async () => {
    const output = guardDownload(Readable.from([Buffer.from("abc")]), options);
    const chunks: Buffer[] = [];
    for await (const chunk of output) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("abc");
  });

  it("turns a source error into the store's error", async () => {
    const source = new Readable({ read() {} });
    const output = guardDownload(source, options);
    source.destroy(new Error("reset"));
    await expect(output.toArray()).rejects.toSatisfy((error) => isHoardError(error, "STORAGE_FAILED"));
  });

  it("fails with ABORTED when the signal fires, and destroys the source", async () => {
    const controller = new AbortController();
    const source = new Readable({ read() {} });
    const output = guardDownload(source, { ...options, signal: controller.signal });
    controller.abort();
    await expect(output.toArray()).rejects.toSatisfy((error) => isHoardError(error, "ABORTED"));
    expect(source.destroyed).toBe(true);
  });

  it("fails a silent source with the silence error", async () => {
    vi.useFakeTimers();
    const source = new Readable({ read() {} });
    const output = guardDownload(source, {
      ...options,
      silence: { timeoutMs: 1000, error: () => silentEndpointError("demo", "e", 1000, "downloading dm://b/k") },
    });
    const failed = expect(output.toArray()).rejects.toThrow("demo: no answer from e within 1 s (downloading dm://b/k)");
    source.push(Buffer.from("a"));
    await vi.advanceTimersByTimeAsync(1000);
    await failed;
    expect(source.destroyed).toBe(true);
  });
});
