import type { ServiceError } from "../errors/service-error.js";
import { reasonDefinition } from "../errors/registry.js";
import type { Exchange } from "./exchange.js";
import { writeHead } from "./http-types.js";
import { encodeEnvelope, FLAG_TRAILER } from "./rpc/envelope.js";
import { connectErrorBytes, grpcStatusHeaders, grpcWebTrailerBytes } from "./rpc/status-wire.js";

/**
 * Answers a request the edge refuses before any route took it (an unknown
 * path, a malformed target, a failure at the last-resort boundary), in the
 * shape its client will understand from its content type: gRPC status
 * trailers, a gRPC-Web trailer frame, or the Connect error JSON (which is
 * also what plain HTTP clients get).
 */
export function answerUnrouted(x: Exchange, err: ServiceError, extraHeaders: Record<string, string> = {}): void {
  x.record.error = err;
  if (x.res.headersSent) {
    x.res.destroy();
    return;
  }
  const contentType = String(x.req.headers["content-type"] ?? "");
  // The answer speaks the request's codec, as a route that exists would.
  const codec = /\+json/i.test(contentType) ? "json" : "proto";
  if (/^application\/grpc-web/i.test(contentType)) {
    x.record.protocol = "grpc-web";
    writeHead(x.res, 200, { "content-type": `application/grpc-web+${codec}`, ...extraHeaders });
    x.res.end(encodeEnvelope(FLAG_TRAILER, grpcWebTrailerBytes(grpcStatusHeaders(err))));
    return;
  }
  if (/^application\/grpc/i.test(contentType)) {
    x.record.protocol = "grpc";
    // Trailers-Only: with no message to send, the status goes in the one header block (which HTTP/1.0 carries too).
    writeHead(x.res, 200, { "content-type": `application/grpc+${codec}`, ...grpcStatusHeaders(err), ...extraHeaders });
    x.res.end();
    return;
  }
  const body = connectErrorBytes(err);
  writeHead(x.res, reasonDefinition(err.reason).httpStatus, {
    "content-type": "application/json",
    "content-length": String(body.byteLength),
    ...extraHeaders,
  });
  x.res.end(body);
}
