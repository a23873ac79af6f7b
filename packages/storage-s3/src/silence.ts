import { type AgentOptions, type ClientRequestArgs, Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";

/** Sockets closed because the endpoint went silent: errors they cause are reported as silence. */
const silencedSockets = new WeakSet<object>();

/** True when `socket` was closed by the silence timer. */
export function wasSilenced(socket: unknown): boolean {
  return typeof socket === "object" && socket !== null && silencedSockets.has(socket);
}

/** The error a silent socket is closed with; the SDK treats it as a timeout and retries. */
function silenceError(timeoutMs: number): Error {
  return Object.assign(new Error(`the request socket timed out after ${timeoutMs} ms of inactivity (hoard silence timer)`), {
    name: "TimeoutError",
    code: "ETIMEDOUT",
  });
}

function isFree(agent: HttpAgent, socket: Duplex): boolean {
  return Object.values(agent.freeSockets).some((sockets) => sockets?.includes(socket as never));
}

/**
 * Closes a socket in use when nothing has been sent or received on it for `timeoutMs`. A socket
 * paused because the caller reads a download slowly is not silent (the caller sets the pace), so
 * its timer is only restarted, and once more after the pause; idle sockets in the pool are left to
 * the agent, which closes them.
 */
function watch(agent: HttpAgent, socket: Socket, timeoutMs: number): void {
  // After the reader has held the socket back, the peer may take a moment to resume sending (TCP reopens a closed
  // window lazily): the first silence after a pause is forgiven.
  let heldBack = false;
  socket.on("timeout", () => {
    if (socket.destroyed || isFree(agent, socket)) return;
    if (socket.readableFlowing === false || heldBack) {
      heldBack = socket.readableFlowing === false;
      socket.setTimeout(timeoutMs);
      return;
    }
    silencedSockets.add(socket);
    socket.destroy(silenceError(timeoutMs));
  });
}

function agentOptions(timeoutMs: number): AgentOptions {
  // What the SDK's handler uses by default, plus the timer on every socket.
  return { keepAlive: true, maxSockets: 50, timeout: timeoutMs };
}

/**
 * HTTP and HTTPS agents whose sockets give up after `timeoutMs` of silence. The SDK's own socket
 * timeout would also fire while a download waits for a slow reader (a restore busy elsewhere),
 * and cut it; these tell the two apart.
 */
export function silenceAgents(timeoutMs: number): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
  const httpAgent = new HttpAgent(agentOptions(timeoutMs));
  const httpsAgent = new HttpsAgent(agentOptions(timeoutMs));
  for (const agent of [httpAgent, httpsAgent]) {
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (options: ClientRequestArgs, callback?: (error: Error | null, stream: Duplex) => void) => {
      const socket = create(options, callback);
      if (socket) watch(agent, socket as Socket, timeoutMs);
      return socket;
    };
  }
  return { httpAgent, httpsAgent };
}
