import type http2 from "node:http2";
import { fromBinary, toBinary, type DescMessage, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createServiceImplSpec,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { create } from "@bufbuild/protobuf";
import { AnySchema, anyPack } from "@bufbuild/protobuf/wkt";
import { constants as http2constants } from "node:http2";
import { errorInfoForCode } from "../errors/connect-error.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

/**
 * A lean path for the hottest traffic: unary gRPC over HTTP/2 with identity
 * encoding. connect-node serves every protocol through one general pipeline
 * (universal requests, async-iterable transforms, a linked abort controller and
 * a deadline signal per call); for a unary gRPC call this path reads the one
 * frame, runs the very same interceptors and implementation through connect's
 * own invokeUnaryImplementation, and writes one frame and the trailers.
 * Anything it does not take (other protocols, compression, streaming methods)
 * goes to the general adapter unchanged.
 */
export interface GrpcUnaryPathOptions {
  services: { service: DescService; impl: Partial<ServiceImpl<DescService>> }[];
  interceptors: Interceptor[];
  readMaxBytes: number;
  contextValues: (req: http2.Http2ServerRequest) => ContextValues;
}

export type GrpcUnaryPath = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => boolean;

interface Route {
  spec: Extract<MethodImplSpec, { kind: "unary" }>;
  method: DescMethodUnary;
  service: DescService;
}

const NEVER_ABORTED = new AbortController().signal;

export function createGrpcUnaryPath(options: GrpcUnaryPathOptions): GrpcUnaryPath {
  const routes = new Map<string, Route>();
  for (const { service, impl } of options.services) {
    const serviceSpec = createServiceImplSpec(service, impl);
    for (const method of service.methods) {
      const spec = serviceSpec.methods[method.localName];
      if (method.methodKind !== "unary" || spec?.kind !== "unary") continue;
      routes.set(`/${service.typeName}/${method.name}`, { spec, method: method as DescMethodUnary, service });
    }
  }

  return (req, res) => {
    const route = routes.get(req.url);
    if (!route || req.method !== "POST") return false;
    const contentType = req.headers["content-type"];
    if (contentType !== "application/grpc" && contentType !== "application/grpc+proto") return false;
    const encoding = req.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    void serve(route, req, res, options);
    return true;
  };
}

async function serve(route: Route, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, options: GrpcUnaryPathOptions) {
  const stream = res.stream;
  try {
    const body = await readBody(req, options.readMaxBytes + 5);
    const input = parseUnaryFrame(route.method.input, body, options.readMaxBytes);
    const context = handlerContext(route, req, options.contextValues(req));
    const output = await invokeUnaryImplementation(route.spec, context, input, options.interceptors);
    if (stream.destroyed) return;
    const message = toBinary(route.method.output, output);
    const frame = Buffer.allocUnsafe(5 + message.length);
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    const headers: http2.OutgoingHttpHeaders = { "content-type": "application/grpc+proto" };
    for (const [k, v] of context.responseHeader) headers[k] = v;
    const trailers: http2.OutgoingHttpHeaders = { "grpc-status": "0" };
    for (const [k, v] of context.responseTrailer) trailers[k] = v;
    res.writeHead(200, headers);
    res.addTrailers(trailers);
    res.end(frame);
  } catch (err) {
    respondError(res, ConnectError.from(err));
  }
}

function handlerContext(route: Route, req: http2.Http2ServerRequest, values: ContextValues): HandlerContext {
  const requestHeader = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (k[0] === ":" || v === undefined) continue;
    requestHeader.set(k, Array.isArray(v) ? v.join(", ") : v);
  }
  // Nothing here cancels work on client disconnect or deadline (the handlers run
  // short queries with their own timeouts), so no per-call abort controller.
  return {
    service: route.service,
    method: route.method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: `http://${req.headers[":authority"] ?? "localhost"}${req.url}`,
    signal: NEVER_ABORTED,
    timeoutMs: () => undefined,
    requestHeader,
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values,
  };
}

function readBody(req: http2.Http2ServerRequest, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        reject(new ConnectError(`message larger than ${limit - 5} bytes`, Code.ResourceExhausted));
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

function parseUnaryFrame<I extends DescMessage>(schema: I, body: Buffer, readMaxBytes: number) {
  if (body.length < 5) throw new ConnectError("protocol error: missing message frame", Code.InvalidArgument);
  if (body[0] !== 0) throw new ConnectError("protocol error: compressed frame without grpc-encoding", Code.InvalidArgument);
  const length = body.readUInt32BE(1);
  if (length > readMaxBytes) throw new ConnectError(`message larger than ${readMaxBytes} bytes`, Code.ResourceExhausted);
  if (body.length !== 5 + length) throw new ConnectError("protocol error: frame length does not match the body", Code.InvalidArgument);
  try {
    return fromBinary(schema, body.subarray(5));
  } catch (err) {
    throw new ConnectError(`cannot decode ${schema.typeName}: ${(err as Error).message}`, Code.InvalidArgument);
  }
}

/** An error response: headers, no message, and trailers with the status, its message and google.rpc.Status details. */
function respondError(res: http2.Http2ServerResponse, err: ConnectError): void {
  if (res.stream.destroyed || res.headersSent) {
    if (!res.stream.destroyed) res.stream.close(http2constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const details = err.details.map((d) =>
    "desc" in d
      ? anyPack(d.desc, create(d.desc, d.value))
      : create(AnySchema, { typeUrl: `type.googleapis.com/${d.type}`, value: d.value }),
  );
  if (!details.some((d) => d.typeUrl.endsWith(`/${ErrorInfoSchema.typeName}`))) {
    details.push(anyPack(ErrorInfoSchema, errorInfoForCode(err.code)));
  }
  const status = create(StatusSchema, { code: err.code, message: err.rawMessage, details });
  const headers: http2.OutgoingHttpHeaders = { "content-type": "application/grpc+proto" };
  for (const [k, v] of err.metadata) headers[k] = v;
  res.writeHead(200, headers);
  // Node's compatibility response always ends with a trailers frame, so the status goes there.
  res.addTrailers({
    "grpc-status": String(err.code),
    "grpc-message": encodeURIComponent(err.rawMessage),
    "grpc-status-details-bin": Buffer.from(toBinary(StatusSchema, status)).toString("base64").replace(/=+$/, ""),
  });
  res.end();
}
