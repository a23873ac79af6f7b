import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describeError, HoardError } from "@hoard/core";
import type { JobHealth } from "./health.js";
import type { Metrics } from "./metrics.js";

export interface StatusServer {
  /** `http://127.0.0.1:9464` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (Prometheus text) and `GET /healthz`: 200 when no job is late, 503 when one
 * is (see health.ts), with a JSON body per job either way.
 */
export async function startStatusServer(
  listen: { host: string; port: number },
  metrics: Metrics,
  health: ReadonlyMap<string, JobHealth>,
): Promise<StatusServer> {
  // Each answer closes its connection: a scraper that reuses one the server has just dropped (its
  // idle timer ran late, after a busy event loop) gets ECONNRESET, and a scrape every 15 s gains
  // nothing from keeping it.
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      metrics.text().then(
        (text) => response.writeHead(200, { "content-type": metrics.registry.contentType, connection: "close" }).end(text),
        (error: unknown) => response.writeHead(500, { "content-type": "text/plain" }).end(`${describeError(error)}\n`),
      );
      return;
    }
    if (path === "/healthz") {
      const now = Date.now();
      const jobs: Record<string, unknown> = {};
      let late = false;
      for (const [name, job] of health) {
        const state = job.state(now);
        late ||= state.late;
        jobs[name] = {
          late: state.late,
          lastStoredRun: state.lastStoredTick === undefined ? null : new Date(state.lastStoredTick).toISOString(),
          judgedRun: state.judgedTick === undefined ? null : new Date(state.judgedTick).toISOString(),
        };
      }
      response
        .writeHead(late ? 503 : 200, { "content-type": "application/json", connection: "close" })
        .end(`${JSON.stringify({ status: late ? "late" : "ok", jobs })}\n`);
      return;
    }
    response.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics or /healthz\n");
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => {
      reject(
        new HoardError(
          "INVALID_ARGUMENT",
          `cannot serve /metrics on ${listen.host}:${listen.port}: ${describeError(error)} (set listen: in the config, or --listen)`,
          {
            cause: error,
          },
        ),
      );
    });
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
