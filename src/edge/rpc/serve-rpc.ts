import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { createContextValues } from "@connectrpc/connect";
import { callScopeKey } from "../../call/handler-context.js";
import type { CallGuard } from "../../call/guard.js";
import { reasonDefinition } from "../../errors/registry.js";
import { ServiceError } from "../../errors/service-error.js";
import type { Exchange } from "../exchange.js";
import { connectionOf, isHttp2, writeHead, type HeaderMap } from "../http-types.js";
import { runCall, type CallSpec, type CallWire } from "../pipeline.js";
import { connectStreamWire, connectUnaryWire } from "./connect-wire.js";
import { grpcWire } from "./grpc-wire.js";
import { invokeRpc, type RpcAnswer, type RpcInput, type RpcMethod } from "./rpc-method.js";
import { connectErrorBytes } from "./status-wire.js";

export interface RpcServing {
  guard: CallGuard;
  /** RPC_MAX_TIMEOUT_SECONDS: a client deadline above it is refused. */
  maxTimeoutMs: number;
  /** The deadline of a unary call whose client gives none. */
  defaultTimeoutMs: number;
}

// The content types each protocol speaks, as connect-node matches them.
const GRPC = /^application\/grpc(?:\+(?:(json)(?:; ?charset=utf-?8)?|proto))?$/i;
const GRPC_WEB = /^application\/grpc-web(-text)?(?:\+(?:(json)(?:; ?charset=utf-?8)?|proto))?$/i;
const CONNECT_UNARY = /^application\/(?:(json)(?:; ?charset=utf-?8)?|proto)$/i;
const CONNECT_STREAM = /^application\/connect\+(?:(json)(?:; ?charset=utf-?8)?|proto)$/i;

/**
 * Picks the protocol of an RPC request from its HTTP method and content type,
 * as connect-node negotiates it: a bidirectional stream needs HTTP/2; GET is
 * Connect's, for methods without side effects; otherwise the content type
 * decides. Throws the refusal when nothing on this path speaks it.
 */
export function negotiateRpcWire(x: Exchange, rpc: RpcMethod, maxTimeoutMs: number): CallWire<RpcInput, RpcAnswer> {
  const method = x.req.method ?? "";
  if (rpc.method.methodKind === "bidi_streaming" && !isHttp2(x.req)) {
    throw new ServiceError("HTTP_VERSION_NOT_SUPPORTED", "a bidirectional stream needs HTTP/2");
  }
  const unary = rpc.method.methodKind === "unary";
  const getAllowed = unary && rpc.method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
  if (method === "GET" && getAllowed) {
    x.record.protocol = "connect";
    // A GET's message encoding is its content type: anything but these two is 415, as connect-node answers.
    const encoding = new URLSearchParams(x.target.query).get("encoding");
    if (encoding !== "json" && encoding !== "proto") {
      throw new ServiceError("UNSUPPORTED_MEDIA_TYPE", "a Connect GET needs encoding=json or encoding=proto");
    }
    return connectUnaryWire(x, rpc, { binary: encoding === "proto", get: true }, maxTimeoutMs);
  }
  if (method !== "POST") {
    throw new ServiceError("METHOD_NOT_ALLOWED", `${rpc.path} takes ${getAllowed ? "POST or GET" : "POST"}`);
  }
  const contentType = x.req.headers["content-type"] ?? "";
  let m: RegExpExecArray | null;
  if ((m = GRPC.exec(contentType))) {
    // gRPC's status travels in trailers, which HTTP/1.0 (no chunked encoding) cannot carry.
    if (!isHttp2(x.req) && x.req.httpVersionMinor < 1) {
      throw new ServiceError("HTTP_VERSION_NOT_SUPPORTED", "gRPC needs HTTP/2 (or HTTP/1.1 trailers)");
    }
    x.record.protocol = "grpc";
    return grpcWire(x, rpc, { web: false, binary: m[1] === undefined }, maxTimeoutMs);
  }
  if ((m = GRPC_WEB.exec(contentType)) && m[1] === undefined) {
    x.record.protocol = "grpc-web";
    return grpcWire(x, rpc, { web: true, binary: m[2] === undefined }, maxTimeoutMs);
  }
  if (unary && (m = CONNECT_UNARY.exec(contentType))) {
    x.record.protocol = "connect";
    return connectUnaryWire(x, rpc, { binary: m[1] === undefined, get: false }, maxTimeoutMs);
  }
  if (!unary && (m = CONNECT_STREAM.exec(contentType))) {
    x.record.protocol = "connect";
    return connectStreamWire(x, rpc, { binary: m[1] === undefined }, maxTimeoutMs);
  }
  throw new ServiceError("UNSUPPORTED_MEDIA_TYPE", `${rpc.path} does not speak content type "${contentType}"`);
}

/** One RPC request, from protocol negotiation to the answer, through the pipeline every call takes. */
export function serveRpc(x: Exchange, rpc: RpcMethod, serving: RpcServing): Promise<void> | void {
  let wire: CallWire<RpcInput, RpcAnswer>;
  try {
    wire = negotiateRpcWire(x, rpc, serving.maxTimeoutMs);
  } catch (err) {
    refuseUnspoken(x, err as ServiceError);
    return;
  }
  const spec: CallSpec<RpcInput, RpcAnswer> = {
    name: rpc.method.name,
    access: rpc.access,
    defaultTimeoutMs: rpc.method.methodKind === "unary" ? serving.defaultTimeoutMs : undefined,
    handle({ input, caller, deadline }) {
      if (rpc.streamSlots) x.res.once("close", rpc.streamSlots.acquire(connectionOf(x.req)));
      const values = createContextValues();
      if (caller) values.set(callScopeKey, { caller, deadline });
      const authority = x.target.authority ?? "localhost";
      return invokeRpc(
        rpc,
        input,
        { req: x.req, protocolName: x.record.protocol, url: `http://${authority}${x.target.path}` },
        deadline,
        values,
      );
    },
  };
  return runCall(x, spec, wire, serving.guard);
}

/**
 * A request in no protocol this path speaks (415, 405, 505). There is no
 * protocol to answer in, so the answer is the HTTP status with the error in
 * Connect's JSON form, which a Connect client reads and a person can too.
 */
export function refuseUnspoken(x: Exchange, err: ServiceError): void {
  x.record.error = err;
  const headers: HeaderMap = { "content-type": "application/json" };
  // Clients coded for full duplex may hang on HTTP/1.1; closing the connection unblocks them.
  if (err.reason === "HTTP_VERSION_NOT_SUPPORTED") headers.connection = "close";
  const body = connectErrorBytes(err);
  headers["content-length"] = String(body.byteLength);
  writeHead(x.res, reasonDefinition(err.reason).httpStatus, headers);
  x.res.end(body);
}
