import type http from "node:http";
import type net from "node:net";
import type { ListenerLimits } from "./limits.js";

const REQUEST_TIMEOUT = Buffer.from("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");

/**
 * HTTP/1.1's header and body deadlines, enforced per connection with a timer
 * of our own. Node checks headersTimeout and requestTimeout only from a timer
 * its own listen() starts, and this server is handed its sockets by the
 * one-port listener, so without this a client sending a byte a minute would
 * hold a connection (and whatever it buffered) forever.
 *
 * Deadlines are absolute, not reset by activity: a request's headers must be
 * complete within headersTimeoutMs of the connection opening or of the
 * previous answer, and its body within bodyTimeoutMs of its headers.
 */
export function enforceHttp1Timeouts(server: http.Server, limits: ListenerLimits): void {
  // One timer per connection, for whichever deadline it is waiting on now.
  const timers = new WeakMap<net.Socket, NodeJS.Timeout>();
  const arm = (socket: net.Socket, ms: number, onExpiry: () => void) => {
    clearTimeout(timers.get(socket));
    const timer = setTimeout(onExpiry, ms);
    timer.unref();
    timers.set(socket, timer);
  };
  const cut = (socket: net.Socket) => {
    socket.destroySoon();
    setTimeout(() => socket.destroy(), 1_000).unref();
  };
  const awaitHeaders = (socket: net.Socket) =>
    arm(socket, limits.headersTimeoutMs, () => {
      // No answer is in progress while headers are awaited, so the 408 cannot interleave with one.
      if (socket.writable) socket.write(REQUEST_TIMEOUT);
      cut(socket);
    });

  server.on("connection", (socket: net.Socket) => {
    awaitHeaders(socket);
    socket.once("close", () => clearTimeout(timers.get(socket)));
  });
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    // req.socket is detached (null) once the answer finishes; keep our own reference.
    const socket = req.socket;
    // The parser marks a request complete once all of it has arrived, whether or not anyone read it.
    arm(socket, limits.bodyTimeoutMs, () => {
      if (req.complete) return;
      if (!res.headersSent) {
        res.writeHead(408, { connection: "close", "content-length": "0" });
        res.end();
      }
      cut(socket);
    });
    const awaitNext = () => {
      if (!socket.destroyed) awaitHeaders(socket);
    };
    res.once("finish", () => {
      // Node reads and drops a body left unread once the answer is out; the next request comes after it.
      if (req.complete) awaitNext();
      else req.once("end", awaitNext);
    });
  });
}
