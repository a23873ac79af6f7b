import { connect, createServer } from "node:net";

/** Host that every server of the harness binds to. */
export const loopbackHost = "127.0.0.1";

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, loopbackHost, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("could not read the port of a listening socket"));
        return;
      }
      server.close(() => resolvePort(address.port));
    });
  });
}

/** True when a TCP connection to host:port is accepted within `timeoutMs`. */
export function acceptsConnections(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolveAccepted) => {
    const socket = connect({ host, port });
    const finish = (accepted: boolean): void => {
      socket.destroy();
      resolveAccepted(accepted);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
  });
}

/** A TCP server on loopback that accepts connections, reads what it is sent and never answers. */
export interface SilentServer {
  host: string;
  port: number;
  /** `http://127.0.0.1:PORT`, for HTTP clients. */
  url: string;
  /** How many connections it has accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Starts a silent peer: the hung endpoint or database host of a hang test. Every accepted socket
 * is kept open and ignored until close(), which destroys them all.
 */
export function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<import("node:net").Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on("data", () => {});
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  return new Promise((resolveServer, reject) => {
    server.once("error", reject);
    server.listen(0, loopbackHost, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("could not read the port of a listening socket"));
        return;
      }
      resolveServer({
        host: loopbackHost,
        port: address.port,
        url: `http://${loopbackHost}:${address.port}`,
        connections: () => accepted,
        close: () =>
          new Promise<void>((resolveClosed) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => resolveClosed());
          }),
      });
    });
  });
}
