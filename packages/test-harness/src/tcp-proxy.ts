import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from "node:net";
import { loopbackHost } from "./network.ts";

/** A TCP proxy on loopback in front of a server, which a test can slow down or cut. */
export interface TcpProxy {
  endpoint: string;
  /** Bytes forwarded so far from clients to the server, and back. */
  bytesUp(): number;
  bytesDown(): number;
  /**
   * The server "dies": every open connection is reset, and new ones are reset as soon as they are
   * accepted (retries see ECONNRESET, as from a server that crashed behind a load balancer).
   */
  cut(): void;
  /** The server hangs: nothing more is forwarded either way, and every connection stays open. */
  freeze(): void;
  stop(): Promise<void>;
}

export interface TcpProxyOptions {
  /** Forward at most this many bytes per tick in each direction (a slow link). */
  bytesPerTick?: number;
  tickMs?: number;
  /** Called after every forwarded chunk, with the running totals; may call cut(). */
  onBytes?: (up: number, down: number) => void;
}

/** Starts a TCP proxy in front of `target` (`http://host:port`). */
export async function startTcpProxy(target: string, options: TcpProxyOptions = {}): Promise<TcpProxy> {
  const targetUrl = new URL(target);
  const sockets = new Set<Socket>();
  let up = 0;
  let down = 0;
  let cut = false;
  let frozen = false;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  };
  /** Copies from one socket to the other, slowly when asked, counting bytes. */
  const relay = (from: Socket, to: Socket, count: (bytes: number) => void) => {
    const { bytesPerTick, tickMs = 100 } = options;
    from.on("data", (data: Buffer) => {
      if (cut || frozen) return;
      if (!bytesPerTick) {
        count(data.length);
        to.write(data);
        return;
      }
      // One slice per tick at most: pausing the socket holds the rest back.
      from.pause();
      let offset = 0;
      const step = () => {
        if (cut || frozen || to.destroyed) return;
        const slice = data.subarray(offset, offset + bytesPerTick);
        offset += slice.length;
        count(slice.length);
        to.write(slice);
        setTimeout(() => (offset < data.length ? step() : from.resume()), tickMs);
      };
      step();
    });
    from.on("end", () => {
      if (!frozen) to.end();
    });
  };
  const server = createTcpServer((client) => {
    track(client);
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: targetUrl.hostname, port: Number(targetUrl.port) });
    track(upstream);
    relay(client, upstream, (bytes) => {
      up += bytes;
      options.onBytes?.(up, down);
    });
    relay(upstream, client, (bytes) => {
      down += bytes;
      options.onBytes?.(up, down);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, loopbackHost, resolve));
  const address = server.address() as AddressInfo;
  return {
    endpoint: `http://${loopbackHost}:${address.port}`,
    bytesUp: () => up,
    bytesDown: () => down,
    cut() {
      cut = true;
      for (const socket of sockets) socket.resetAndDestroy();
    },
    freeze() {
      frozen = true;
      for (const socket of sockets) socket.pause();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
