import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { enforceHttp1Timeouts } from "./http1-timeouts.js";
import { enforceHttp2Limits, http2ServerOptions } from "./http2-limits.js";
import type { ListenerLimits } from "./limits.js";
import { setPeerAddress } from "./peer.js";
import { parseProxyHeader } from "./proxy-protocol.js";

/** The first bytes of every HTTP/2 connection with prior knowledge (RFC 9113 §3.4). */
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** What the listener hands every request to; the edge's handler. */
export type ListenerHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface OnePortOptions {
  limits: ListenerLimits;
  /** Expect a PROXY protocol header (v1 or v2) first on every connection, from peers trustsPeer accepts. */
  proxyProtocol: boolean;
  trustsPeer: (address: string) => boolean;
}

export interface OnePortListener {
  readonly tcp: net.Server;
  readonly http1: http.Server;
  readonly http2: http2.Http2Server;
}

/**
 * One TCP port for every protocol: gRPC needs HTTP/2 without TLS (h2c with
 * prior knowledge), browsers speak HTTP/1.1, and Node cannot serve both from
 * one cleartext listener. So the listener reads the first bytes of each
 * connection (after a PROXY header, when it expects one) and hands the socket
 * to an HTTP/2 server when they are the HTTP/2 preface, to an HTTP/1.1 server
 * otherwise. Both servers hold every connection to the limits.
 */
export function createOnePortListener(handler: ListenerHandler, options: OnePortOptions): OnePortListener {
  const limits = options.limits;
  const http1 = http.createServer(
    {
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      // Checked by our own timers (enforceHttp1Timeouts): Node's run only from its own listen().
      requestTimeout: 0,
      headersTimeout: 0,
    },
    handler,
  );
  enforceHttp1Timeouts(http1, limits);
  const h2 = http2.createServer(http2ServerOptions(limits), handler);
  enforceHttp2Limits(h2, limits);

  const tcp = net.createServer({ noDelay: true }, (socket) => {
    let received: Buffer = Buffer.alloc(0);
    let proxied = !options.proxyProtocol;
    if (options.proxyProtocol && !options.trustsPeer(socket.remoteAddress ?? "")) {
      // A PROXY header from anyone but a trusted proxy would let them pick their own address.
      socket.destroy();
      return;
    }
    // A connection that never says anything is not allowed to hold a socket.
    const silent = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    silent.unref();
    const handOver = (isHttp2: boolean) => {
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
    const onData = (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (!proxied) {
        const header = parseProxyHeader(received);
        if (header.kind === "need-more") return;
        if (header.kind === "invalid") {
          socket.destroy();
          return;
        }
        if (header.sourceAddress !== undefined) setPeerAddress(socket, header.sourceAddress);
        received = received.subarray(header.length);
        proxied = true;
        if (received.length === 0) return;
      }
      const n = Math.min(received.length, HTTP2_PREFACE.length);
      const isHttp2 = received.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
      // Wait for more bytes only while they could still be the preface.
      if (isHttp2 && received.length < HTTP2_PREFACE.length) return;
      handOver(isHttp2);
    };
    const onEarlyError = () => {
      clearTimeout(silent);
      socket.destroy();
    };
    socket.on("data", onData);
    socket.on("error", onEarlyError);
    socket.once("close", () => clearTimeout(silent));
  });
  tcp.maxConnections = limits.maxConnections;
  return { tcp, http1, http2: h2 };
}
