import type { Deadline } from "../../call/deadline.js";
import type { ServiceError } from "../../errors/service-error.js";
import type { Exchange } from "../exchange.js";
import { writeHead, type HeaderMap } from "../http-types.js";
import type { CallWire } from "../pipeline.js";
import {
  ACCEPTED_ENCODINGS,
  COMPRESS_MIN_BYTES,
  negotiateCompression,
  type NegotiatedCompression,
} from "./compression.js";
import { encodeEnvelope, FLAG_COMPRESSED, FLAG_TRAILER } from "./envelope.js";
import { encodeMessage } from "./messages.js";
import { readEnvelopedStream, readSingleEnveloped, writeChunk } from "./rpc-io.js";
import { answersStream, takesStream, type RpcAnswer, type RpcInput, type RpcMethod } from "./rpc-method.js";
import { grpcStatusHeaders, grpcWebTrailerBytes } from "./status-wire.js";
import { parseGrpcTimeout } from "./timeouts.js";

export interface GrpcFormat {
  /** gRPC-Web: trailers travel as the body's last frame, so HTTP/1.1 and browsers can carry them. */
  web: boolean;
  binary: boolean;
}

/**
 * gRPC over HTTP/2 and gRPC-Web, as their specs and connect-node write them:
 * headers with the first message, length-prefixed messages (compressed when
 * negotiated and worth it), then the status with the error's details and
 * metadata in the trailers (gRPC-Web: in the trailer frame). Nothing about an
 * error goes in the headers, so grpc-js, grpc-go and C-core, which read an
 * error's metadata from the trailers, see all of it.
 */
export function grpcWire(
  x: Exchange,
  rpc: RpcMethod,
  format: GrpcFormat,
  maxTimeoutMs: number,
): CallWire<RpcInput, RpcAnswer> {
  const protocolName = format.web ? "grpc-web" : "grpc";
  const contentType = `application/${protocolName}+${format.binary ? "proto" : "json"}`;
  let compression: NegotiatedCompression = { request: undefined, response: undefined };

  const startHeaders = (extra: HeaderMap) => {
    const headers: HeaderMap = { "content-type": contentType };
    if (compression.response) headers["grpc-encoding"] = compression.response.name;
    writeHead(x.res, 200, Object.assign(headers, extra));
  };

  const frame = async (flags: number, data: Uint8Array): Promise<Buffer> => {
    if (compression.response && data.byteLength >= COMPRESS_MIN_BYTES) {
      return encodeEnvelope(flags | FLAG_COMPRESSED, await compression.response.compress(data));
    }
    return encodeEnvelope(flags, data);
  };

  const finish = async (trailers: HeaderMap) => {
    if (format.web) {
      await writeChunk(x.res, await frame(FLAG_TRAILER, grpcWebTrailerBytes(trailers)));
    } else {
      x.res.addTrailers(trailers);
    }
    x.res.end();
  };

  return {
    begin() {
      // As connect-node: the answer's encoding is settled first, then the request's encoding and its
      // deadline are checked, in that order.
      compression = negotiateCompression(header(x, "grpc-encoding"), header(x, "grpc-accept-encoding"));
      if (compression.error) throw compression.error;
      return { timeoutMs: parseGrpcTimeout(header(x, "grpc-timeout"), maxTimeoutMs) };
    },

    read(deadline: Deadline, authenticated: boolean) {
      const input = {
        schema: rpc.method.input,
        binary: format.binary,
        compression: compression.request,
        maxBytes: rpc.maxRequestBytes,
        protocolName,
      };
      return takesStream(rpc.method)
        ? Promise.resolve(readEnvelopedStream(x, input, deadline, authenticated))
        : readSingleEnveloped(x, input, deadline, authenticated);
    },

    async answer(answer, headers) {
      const schema = rpc.method.output;
      const send = async (message: Parameters<typeof encodeMessage>[1]) => {
        if (!x.res.headersSent) startHeaders(mergeHeaders(headers, answer.header));
        await writeChunk(x.res, await frame(0, encodeMessage(schema, message, format.binary)));
      };
      if (answersStream(rpc.method)) {
        for await (const message of answer.output as AsyncIterable<Parameters<typeof encodeMessage>[1]>) {
          await send(message);
        }
        if (!x.res.headersSent) startHeaders(mergeHeaders(headers, answer.header));
      } else {
        await send(answer.output as Parameters<typeof encodeMessage>[1]);
      }
      const trailers = grpcStatusHeaders(undefined);
      answer.trailer?.forEach((value, name) => (trailers[name] = value));
      await finish(trailers);
    },

    refuse(err: ServiceError, headers: HeaderMap) {
      if (x.res.destroyed || x.res.writableEnded) return;
      if (!x.res.headersSent) startHeaders({});
      // The error's metadata (rate-limit state, retry hint) goes with its status, in the trailers.
      const trailers: HeaderMap = { ...headers };
      if (err.reason === "UNSUPPORTED_COMPRESSION") trailers["grpc-accept-encoding"] = ACCEPTED_ENCODINGS;
      Object.assign(trailers, grpcStatusHeaders(err));
      finish(trailers).catch(() => x.res.destroy());
    },
  };
}

function header(x: Exchange, name: string): string | undefined {
  const value = x.req.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

/** The pipeline's headers with those the handler set on its context; the handler's win. */
export function mergeHeaders(pipeline: HeaderMap, handler: Headers | undefined): HeaderMap {
  const merged: HeaderMap = { ...pipeline };
  handler?.forEach((value, name) => (merged[name] = value));
  return merged;
}
