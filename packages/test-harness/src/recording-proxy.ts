import type { IncomingHttpHeaders } from "node:http";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { loopbackHost } from "./network.ts";

/** One request that passed through a recording proxy. */
export interface RecordedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingHttpHeaders;
}

/** What the proxy answers itself instead of forwarding a request. */
export interface ProxyAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** A running {@link startRecordingProxy}. */
export interface RecordingProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Every request received so far, in order. */
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

/**
 * An HTTP proxy in front of a test server that forwards every request unchanged (so signatures
 * still verify) and records what was sent: servers accept some headers without reporting them back,
 * and this shows they left the client. `answer` can answer chosen requests itself (an injected
 * error) instead of forwarding them, to break an operation midway while the real server still sees
 * the rest.
 */
export async function startRecordingProxy(
  target: string,
  answer: (request: RecordedRequest) => ProxyAnswer | undefined = () => undefined,
): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const targetUrl = new URL(target);
  const server = createServer((incoming, outgoing) => {
    const recorded: RecordedRequest = { method: incoming.method ?? "", url: incoming.url ?? "", headers: incoming.headers };
    requests.push(recorded);
    const answered = answer(recorded);
    if (answered !== undefined) {
      incoming.resume();
      outgoing.writeHead(answered.status, { "content-type": answered.contentType });
      outgoing.end(answered.body);
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
  await new Promise<void>((resolve) => server.listen(0, loopbackHost, resolve));
  const address = server.address() as AddressInfo;
  return {
    endpoint: `http://${loopbackHost}:${address.port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An S3-style XML error answer (`<Error><Code>...`), e.g. a 500 InternalError. */
export function s3ErrorAnswer(status: number, code: string, message = "injected by the test proxy"): ProxyAnswer {
  return {
    status,
    contentType: "application/xml",
    body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
  };
}

/** A Google-style JSON error answer (`{ error: { code, message, errors } }`). */
export function jsonErrorAnswer(status: number, message = `answered ${status} by the test proxy`): ProxyAnswer {
  return { status, contentType: "application/json", body: JSON.stringify({ error: { code: status, message, errors: [] } }) };
}
