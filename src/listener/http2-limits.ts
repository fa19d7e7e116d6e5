import http2 from "node:http2";
import type { ListenerLimits } from "./limits.js";

/** The options an HTTP/2 server is created with to hold each session to its limits. */
export function http2ServerOptions(limits: ListenerLimits): http2.ServerOptions {
  return {
    settings: {
      // Node advertises 4294967295 by default: one connection could open streams without end.
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: limits.maxHeaderBytes,
    },
    maxSessionMemory: limits.maxSessionMemoryMb,
    maxHeaderListPairs: 128,
    maxOutstandingPings: 10,
    maxSettings: 32,
  };
}

/**
 * What HTTP/2 sessions are held to besides their settings: a session with no
 * open stream is closed after sessionIdleTimeoutMs (a GOAWAY, which clients
 * answer by connecting again when they need to); a stream whose request body
 * has not arrived within bodyTimeoutMs is reset, answered or not; and a
 * stream answered before its client finished sending is reset with NO_ERROR
 * right after its last frame (RFC 9113 §8.1), so the rest of its body is
 * never held and the stream never outlives its answer.
 */
export function enforceHttp2Limits(server: http2.Http2Server, limits: ListenerLimits): void {
  server.on("session", (session: http2.ServerHttp2Session) => {
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    const awaitStream = () => {
      idle = setTimeout(() => {
        if (!session.closed && !session.destroyed) session.close();
      }, limits.sessionIdleTimeoutMs);
      idle.unref();
    };
    awaitStream();
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      open++;
      clearTimeout(idle);
      stream.once("close", () => {
        open--;
        if (open === 0 && !session.closed && !session.destroyed) awaitStream();
      });
    });
    session.once("close", () => clearTimeout(idle));
  });
  server.on("request", (req: http2.Http2ServerRequest) => {
    const stream = req.stream;
    if (!req.complete && !stream.endAfterHeaders) {
      const timer = setTimeout(() => {
        if (!req.complete && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      }, limits.bodyTimeoutMs);
      timer.unref();
      stream.once("close", () => clearTimeout(timer));
    }
    // Not res's "finish": the compatibility layer emits it only once the stream has closed. Every answer we write
    // starts with writeHead(), so its end comes as "wantTrailers", on which the compatibility layer sends the
    // trailers (its listener was added first); the reset goes out after them.
    stream.once("wantTrailers", () => {
      setImmediate(() => {
        if (!req.complete && !stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      });
    });
  });
}
