/**
 * Fault-test helpers for test files (inside vitest's workers): peers that are silent, slow or cut,
 * stopped after each test, and the timed failures of calls against them. The assertions stay in the
 * tests; these only run the calls and collect what happened.
 */
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { type SilentServer, startSilentServer } from "./network.ts";
import { type RecordedRequest, type RecordingProxy, startRecordingProxy } from "./recording-proxy.ts";
import { startTcpProxy, type TcpProxy, type TcpProxyOptions } from "./tcp-proxy.ts";

/** A call to make, with what the test calls it (the text its message or assertion names). */
export type NamedCall<Argument = void> = [string, (argument: Argument) => Promise<unknown>];

/** How a call failed and how long it took to. */
export interface TimedFailure {
  error: unknown;
  elapsed: number;
}

/**
 * Peers a test starts, each stopped after the test: call in the test file's top level. `endpoint()`
 * is the server the proxies stand in front of (read when a proxy starts, inside a test).
 */
export function faultPeers(endpoint: () => string) {
  const stoppers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(stoppers.splice(0).map((stop) => stop()));
  });
  const stopAfterTest = <Peer>(peer: Peer, stop: (peer: Peer) => Promise<void>): Peer => {
    stoppers.push(() => stop(peer));
    return peer;
  };
  /** A TCP proxy in front of the server, to slow down, freeze or cut. */
  const tcpProxy = async (options: TcpProxyOptions = {}): Promise<TcpProxy> =>
    stopAfterTest(await startTcpProxy(endpoint(), options), (proxy) => proxy.stop());
  return {
    /** A loopback TCP server that accepts and never answers. */
    silentServer: async (): Promise<SilentServer> => stopAfterTest(await startSilentServer(), (server) => server.close()),
    /** The harness's recording proxy in front of the server (see {@link startRecordingProxy}). */
    recordingProxy: async (answer?: Parameters<typeof startRecordingProxy>[1]): Promise<RecordingProxy> =>
      stopAfterTest(await startRecordingProxy(endpoint(), answer), (proxy) => proxy.stop()),
    tcpProxy,
    /**
     * A TCP proxy in front of the server that cuts or freezes every connection once more than
     * `after.up` bytes went to the server or `after.down` came back.
     */
    async proxyThat(fault: "cut" | "freeze", after: { up?: number; down?: number }): Promise<TcpProxy> {
      const proxy = await tcpProxy({
        onBytes: (up, down) => {
          if (up > (after.up ?? Number.POSITIVE_INFINITY) || down > (after.down ?? Number.POSITIVE_INFINITY)) proxy[fault]();
        },
      });
      return proxy;
    },
  };
}

/** How many milliseconds `operation` took. */
export async function elapsedMs(operation: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  await operation();
  return Date.now() - started;
}

/**
 * Opens a download with a signal that fires when its first chunk arrives, reads it to the end and
 * returns what the read failed with.
 */
export async function abortedMidway(download: (signal: AbortSignal) => Promise<AsyncIterable<unknown>>): Promise<unknown> {
  const controller = new AbortController();
  const stream = await download(controller.signal);
  return rejection(
    (async () => {
      for await (const _ of stream) controller.abort();
    })(),
  );
}

/**
 * A silent server for the tests of the enclosing suite (or file): started before the first,
 * closed after the last. Returns a getter, to call inside the tests.
 */
export function silentServerOfSuite(): () => SilentServer {
  let silent: SilentServer | undefined;
  beforeAll(async () => {
    silent = await startSilentServer();
  });
  afterAll(async () => {
    await silent?.close();
  });
  return () => {
    if (silent === undefined) throw new Error("the silent server is started in beforeAll: call the getter inside a test");
    return silent;
  };
}

/**
 * What `promise` rejects with when `expected(error)` says it is the kind of error the test wants;
 * any other error is thrown again, and a promise that resolves fails the test.
 */
export async function rejectionOfKind<Kind>(promise: Promise<unknown>, expected: (error: unknown) => error is Kind): Promise<Kind> {
  const error = await rejection(promise);
  if (expected(error)) return error;
  throw error;
}

/** What `action` throws (see {@link rejectionOfKind}). */
export function throwOfKind<Kind>(action: () => unknown, expected: (error: unknown) => error is Kind): Kind {
  try {
    action();
  } catch (error) {
    if (expected(error)) return error;
    throw error;
  }
  return expect.fail("expected a throw");
}

/** What `promise` rejects with; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail("expected a rejection"),
    (error: unknown) => error,
  );
}

/** The error `operation` fails with and how long it took to fail. */
export async function timedRejection(operation: () => Promise<unknown>): Promise<TimedFailure> {
  const started = Date.now();
  const error = await rejection(operation());
  return { error, elapsed: Date.now() - started };
}

/** Runs every call at once and returns, for each, its name and how it failed. */
export async function timedRejections(calls: Array<NamedCall>): Promise<Array<TimedFailure & { what: string }>> {
  const outcomes = await Promise.all(calls.map(([, call]) => timedRejection(() => call())));
  return outcomes.map((outcome, index) => ({ ...outcome, what: calls[index]?.[0] ?? "" }));
}

/** Runs every call at once with a signal that aborts after `afterMs`, and returns how each failed. */
export function abortedRejections(calls: Array<NamedCall<AbortSignal>>, afterMs = 200): Promise<Array<TimedFailure & { what: string }>> {
  return timedRejections(
    calls.map(
      ([what, call]): NamedCall => [
        what,
        () => {
          const controller = new AbortController();
          setTimeout(() => controller.abort(), afterMs);
          return call(controller.signal);
        },
      ],
    ),
  );
}

/** A stream's bytes as UTF-8 text. */
export async function textOf(stream: Readable): Promise<string> {
  return Buffer.concat(await stream.toArray()).toString("utf8");
}

/** A stream's bytes, read by a consumer that stops for `pauseMs` after the first chunk. */
export async function readWithPause(stream: AsyncIterable<unknown>, pauseMs: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    if (chunks.length === 1) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The keys of `storage.list(prefix)`. */
export async function listedKeys(
  storage: { list(prefix?: string, options?: { signal?: AbortSignal }): AsyncIterable<{ key: string }> },
  prefix?: string,
  signal?: AbortSignal,
): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of storage.list(prefix, { signal })) keys.push(object.key);
  return keys;
}

/** The part of a store every call of which checks its keys. */
export interface KeyedStorage {
  stat(key: string): Promise<unknown>;
  exists(key: string): Promise<unknown>;
  upload(key: string, body: Readable): Promise<unknown>;
  download(key: string): Promise<unknown>;
  delete(key: string): Promise<unknown>;
  copy(source: string, target: string): Promise<unknown>;
}

/** Keys that escape the prefix or alias another key, which every call must refuse. */
export const badKeys = ["a/../../b", "../b", "a/./b", "a//b", "/a", "a/", "a\\b", "a\nb", ""];

/** Prefixes that escape or alias, which list must refuse. */
export const badPrefixes = ["../", "a/../../b/", "a//"];

/** Every call of the store with `key`, as key or copy source or target. */
export function callsWithKey(storage: KeyedStorage, key: string): Array<NamedCall> {
  return [
    ["stat", () => storage.stat(key)],
    ["exists", () => storage.exists(key)],
    ["upload", () => storage.upload(key, Readable.from([Buffer.from("x")]))],
    ["download", () => storage.download(key)],
    ["delete", () => storage.delete(key)],
    ["copy from", () => storage.copy(key, "ok")],
    ["copy to", () => storage.copy("ok", key)],
  ];
}

export type { RecordedRequest };
