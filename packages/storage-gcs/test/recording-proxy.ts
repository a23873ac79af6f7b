import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";

/** One request that passed through the recording proxy. */
export interface RecordedRequest {
  method: string;
  url: string;
}

/**
 * An HTTP proxy in front of the emulator that records what was sent, and can answer chosen requests itself (with a
 * status and a GCS-style JSON error) instead of forwarding them.
 */
export async function startRecordingProxy(
  target: string,
  answer: (request: RecordedRequest) => number | undefined = () => undefined,
): Promise<{ endpoint: string; requests: RecordedRequest[]; stop(): Promise<void> }> {
  const requests: RecordedRequest[] = [];
  const targetUrl = new URL(target);
  const server = createServer((incoming, outgoing) => {
    const recorded = { method: incoming.method ?? "", url: incoming.url ?? "" };
    requests.push(recorded);
    const status = answer(recorded);
    if (status !== undefined) {
      incoming.resume();
      outgoing.writeHead(status, { "content-type": "application/json" });
      outgoing.end(JSON.stringify({ error: { code: status, message: `answered ${status} by the test proxy`, errors: [] } }));
      return;
    }
    const forwarded = httpRequest(
      { host: targetUrl.hostname, port: targetUrl.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (response) => {
        outgoing.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(outgoing);
      },
    );
    forwarded.on("error", () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
