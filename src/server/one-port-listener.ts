import net from "node:net";
import http from "node:http";
import http2 from "node:http2";

/** The first bytes of every HTTP/2 connection with prior knowledge (RFC 9113 §3.4). */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface OnePortListener {
  readonly tcp: net.Server;
  readonly http1: http.Server;
  readonly http2: http2.Http2Server;
}

/**
 * One TCP port for every protocol: gRPC needs HTTP/2 without TLS (h2c with
 * prior knowledge), browsers speak HTTP/1.1, and Node cannot serve both from
 * one cleartext listener. So the listener reads the first bytes of each
 * connection, and hands the socket to an HTTP/2 server when they are the
 * HTTP/2 preface, to an HTTP/1.1 server otherwise.
 */
export function createOnePortListener(handler: RequestHandler): OnePortListener {
  const http1 = http.createServer({ keepAliveTimeout: 5_000, requestTimeout: 30_000, headersTimeout: 10_000 }, handler);
  const h2 = http2.createServer({}, handler);
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    let received = Buffer.alloc(0);
    // A connection that never says anything is not allowed to hold a socket forever.
    const silent = setTimeout(() => socket.destroy(), 10_000);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const n = Math.min(received.length, HTTP2_PREFACE.length);
      const isHttp2 = received.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
      // Wait for more bytes only while they could still be the preface.
      if (isHttp2 && received.length < HTTP2_PREFACE.length) return;
      clearTimeout(silent);
      socket.off("data", onData);
      socket.off("error", onEarlyError);
      socket.pause();
      socket.unshift(received);
      if (isHttp2) {
        // The HTTP/2 session reads what is buffered on the next tick and then consumes the handle
        // natively; resuming the JS stream here would drop the preface.
        h2.emit("connection", socket);
      } else {
        http1.emit("connection", socket);
        socket.resume();
      }
    };
    const onEarlyError = () => {
      clearTimeout(silent);
      socket.destroy();
    };
    socket.on("data", onData);
    socket.on("error", onEarlyError);
    socket.once("close", () => clearTimeout(silent));
  });
  return { tcp, http1, http2: h2 };
}
