import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

/** One request the receiver got. */
export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local HTTP server standing in for healthchecks.io and webhook receivers: records every request in order. */
export interface Receiver {
  url: string;
  requests: Received[];
  close(): Promise<void>;
}

/** `statuses`: the answers to the first requests, in order (e.g. [503] fails the first one); 200 after them. */
export async function startReceiver(statuses: number[] = []): Promise<Receiver> {
  const requests: Received[] = [];
  const answers = [...statuses];
  const server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => {
      body += chunk;
    });
    request.on("end", () => {
      requests.push({ method: request.method ?? "", path: request.url ?? "", headers: request.headers, body });
      const status = answers.shift() ?? 200;
      response.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "OK" : "try again");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** `sha256=<hex>` as a receiver recomputes it. */
export function expectedSignature(body: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The value of one series (`name{job="x"}`) in a Prometheus exposition text, or undefined. */
export function metricValue(text: string, name: string, job: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name}{job="${job}"} `));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

/**
 * The JSON log lines of a `--log-format json` run. node-cron prints its own "missed execution"
 * warning straight to stderr when the event loop was busy (core's schedule does not give it a
 * logger): that line, and only that one, is not hoard's and is left out.
 */
export function jsonLines<T>(stderr: string): T[] {
  return stderr
    .split("\n")
    .filter((line) => line !== "" && !/\[NODE-CRON\]/.test(line))
    .map((line) => JSON.parse(line) as T);
}
