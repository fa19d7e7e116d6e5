import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import type { Deadline } from "../../call/deadline.js";
import { reasonDefinition } from "../../errors/registry.js";
import { malformed, ServiceError } from "../../errors/service-error.js";
import { readBody } from "../body.js";
import type { Exchange } from "../exchange.js";
import { writeHead, type HeaderMap } from "../http-types.js";
import type { CallWire } from "../pipeline.js";
import {
  ACCEPTED_ENCODINGS,
  COMPRESS_MIN_BYTES,
  negotiateCompression,
  type NegotiatedCompression,
} from "./compression.js";
import { encodeEnvelope, FLAG_COMPRESSED, FLAG_END_STREAM } from "./envelope.js";
import { mergeHeaders } from "./grpc-wire.js";
import { decodeMessage, encodeMessage } from "./messages.js";
import { readEnvelopedStream, readSingleEnveloped, writeChunk } from "./rpc-io.js";
import { answersStream, takesStream, type RpcAnswer, type RpcInput, type RpcMethod } from "./rpc-method.js";
import { connectErrorBytes, connectErrorJson, connectHttpStatus } from "./status-wire.js";
import { parseConnectTimeout } from "./timeouts.js";

type Message = MessageShape<DescMessage>;

/**
 * The Connect protocol's unary form, POST or GET: one message in the body (or,
 * for GET, in the query), one answer with headers (trailers as "trailer-"
 * headers), and errors as the error JSON under the code's HTTP status, with
 * the error's metadata as headers, exactly as connect-node writes it.
 */
export function connectUnaryWire(
  x: Exchange,
  rpc: RpcMethod,
  format: { binary: boolean; get: boolean },
  maxTimeoutMs: number,
): CallWire<RpcInput, RpcAnswer> {
  let binary = format.binary;
  let compression: NegotiatedCompression = { request: undefined, response: undefined };
  const query = format.get ? new URLSearchParams(x.target.query) : undefined;

  const write = (status: number, headers: HeaderMap, payload: Uint8Array) => {
    headers["content-length"] = String(payload.byteLength);
    writeHead(x.res, status, headers);
    x.res.end(payload);
  };
  // Written at once unless the answer is compressed (which is asynchronous).
  const send = (status: number, headers: HeaderMap, body: Uint8Array): void | Promise<void> => {
    const compress = compression.response;
    if (!compress || body.byteLength < COMPRESS_MIN_BYTES) return write(status, headers, body);
    return compress.compress(body).then((payload) => {
      headers["content-encoding"] = compress.name;
      write(status, headers, payload);
    });
  };
  const decode = (bytes: Uint8Array): Message | Promise<Message> =>
    compression.request
      ? compression.request
          .decompress(bytes, rpc.maxRequestBytes)
          .then((plain) => decodeMessage(rpc.method.input, plain, binary))
      : decodeMessage(rpc.method.input, bytes, binary);

  return {
    begin() {
      // As connect-node: the answer's encoding is settled first, then the request's encoding and its
      // deadline are checked, in that order. (A GET's encoding was checked when the protocol was chosen.)
      if (query) binary = query.get("encoding") === "proto";
      const requested = query ? (query.get("compression") ?? undefined) : header(x, "content-encoding");
      compression = negotiateCompression(requested, header(x, "accept-encoding"));
      if (compression.error) throw compression.error;
      return { timeoutMs: parseConnectTimeout(header(x, "connect-timeout-ms"), maxTimeoutMs) };
    },

    read(deadline: Deadline, authenticated: boolean) {
      if (!query) {
        const body = readBody(x, rpc.maxRequestBytes, deadline, authenticated);
        return body instanceof Promise ? body.then(decode) : decode(body);
      }
      const message = query.get("message") ?? "";
      if (query.get("base64") !== "1") return decode(Buffer.from(message));
      let bytes: Uint8Array;
      try {
        bytes = base64Decode(message);
      } catch (err) {
        throw malformed("the message query parameter is not valid base64", err);
      }
      return decode(bytes);
    },

    answer(answer, headers) {
      const all = mergeHeaders(headers, answer.header);
      all["content-type"] = binary ? "application/proto" : "application/json";
      answer.trailer?.forEach((value, name) => (all[`trailer-${name}`] = value));
      return send(200, all, encodeMessage(rpc.method.output, answer.output as Message, binary));
    },

    refuse(err: ServiceError, headers: HeaderMap) {
      if (x.res.destroyed || x.res.writableEnded) return;
      if (x.res.headersSent) {
        x.res.destroy();
        return;
      }
      const all: HeaderMap = { ...headers, "content-type": "application/json" };
      if (err.reason === "UNSUPPORTED_COMPRESSION") all["accept-encoding"] = ACCEPTED_ENCODINGS;
      try {
        send(connectHttpStatus(reasonDefinition(err.reason).code), all, connectErrorBytes(err))?.catch(() =>
          x.res.destroy(),
        );
      } catch {
        x.res.destroy();
      }
    },
  };
}

/**
 * The Connect protocol's streaming form (health watches and reflection, for
 * Connect clients): enveloped messages both ways, and a last end-of-stream
 * frame whose JSON holds the error, if any, and the trailers.
 */
export function connectStreamWire(
  x: Exchange,
  rpc: RpcMethod,
  format: { binary: boolean },
  maxTimeoutMs: number,
): CallWire<RpcInput, RpcAnswer> {
  let compression: NegotiatedCompression = { request: undefined, response: undefined };
  const contentType = `application/connect+${format.binary ? "proto" : "json"}`;

  const start = (extra: HeaderMap) => {
    const headers: HeaderMap = { "content-type": contentType };
    if (compression.response) headers["connect-content-encoding"] = compression.response.name;
    writeHead(x.res, 200, Object.assign(headers, extra));
  };
  const frame = async (flags: number, data: Uint8Array) =>
    compression.response && data.byteLength >= COMPRESS_MIN_BYTES
      ? encodeEnvelope(flags | FLAG_COMPRESSED, await compression.response.compress(data))
      : encodeEnvelope(flags, data);
  const end = async (err: ServiceError | undefined, metadata: HeaderMap) => {
    const endStream: Record<string, unknown> = {};
    if (err) endStream.error = connectErrorJson(err);
    const names = Object.keys(metadata).sort();
    if (names.length > 0) endStream.metadata = Object.fromEntries(names.map((n) => [n, [metadata[n]]]));
    await writeChunk(x.res, await frame(FLAG_END_STREAM, Buffer.from(JSON.stringify(endStream))));
    x.res.end();
  };

  return {
    begin() {
      compression = negotiateCompression(header(x, "connect-content-encoding"), header(x, "connect-accept-encoding"));
      if (compression.error) throw compression.error;
      return { timeoutMs: parseConnectTimeout(header(x, "connect-timeout-ms"), maxTimeoutMs) };
    },

    read(deadline: Deadline, authenticated: boolean) {
      const input = {
        schema: rpc.method.input,
        binary: format.binary,
        compression: compression.request,
        maxBytes: rpc.maxRequestBytes,
        protocolName: "connect",
      };
      return takesStream(rpc.method)
        ? Promise.resolve(readEnvelopedStream(x, input, deadline, authenticated))
        : readSingleEnveloped(x, input, deadline, authenticated);
    },

    async answer(answer, headers) {
      const sendOne = async (message: Message) => {
        if (!x.res.headersSent) start(mergeHeaders(headers, answer.header));
        await writeChunk(x.res, await frame(0, encodeMessage(rpc.method.output, message, format.binary)));
      };
      if (answersStream(rpc.method)) for await (const m of answer.output as AsyncIterable<Message>) await sendOne(m);
      else await sendOne(answer.output as Message);
      if (!x.res.headersSent) start(mergeHeaders(headers, answer.header));
      const trailers: HeaderMap = {};
      answer.trailer?.forEach((value, name) => (trailers[name] = value));
      await end(undefined, trailers);
    },

    refuse(err: ServiceError, headers: HeaderMap) {
      if (x.res.destroyed || x.res.writableEnded) return;
      if (!x.res.headersSent) start({});
      const metadata: HeaderMap = { ...headers };
      if (err.reason === "UNSUPPORTED_COMPRESSION") metadata["connect-accept-encoding"] = ACCEPTED_ENCODINGS;
      end(err, metadata).catch(() => x.res.destroy());
    },
  };
}

function header(x: Exchange, name: string): string | undefined {
  const value = x.req.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}
