import http2 from "node:http2";
import { fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import { grpcStatusDetails, withErrorInfo } from "../../errors/connect-error.js";
import {
  leanHandlerContext,
  readMessageBody,
  unaryRoutes,
  type LeanPathOptions,
  type UnaryRoute,
} from "./unary-calls.js";

export type GrpcUnaryPath = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => boolean;

/**
 * Unary gRPC over HTTP/2 with identity encoding, the hottest traffic: one
 * frame in, the shared interceptors and implementation, one frame and the
 * trailers out. Returns false (and touches nothing) for anything else.
 */
export function createGrpcUnaryPath(options: LeanPathOptions): GrpcUnaryPath {
  const routes = unaryRoutes(options.services);
  return (req, res) => {
    const route = routes.get(req.url);
    if (!route || req.method !== "POST") return false;
    const contentType = req.headers["content-type"];
    if (contentType !== "application/grpc" && contentType !== "application/grpc+proto") return false;
    const encoding = req.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    // serve() answers its own errors; should answering fail too, the stream is cut rather than left open.
    serve(route, req, res, options).catch(() => res.stream.destroy());
    return true;
  };
}

async function serve(
  route: UnaryRoute,
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  options: LeanPathOptions,
) {
  try {
    const body = await readMessageBody(req, options.readMaxBytes + 5);
    const input = parseUnaryFrame(route.method.input, body, options.readMaxBytes);
    const url = `http://${req.headers[":authority"] ?? "localhost"}${req.url}`;
    const context = leanHandlerContext(route, "grpc", url, req.headers, options.contextValues(req));
    const output = await invokeUnaryImplementation(route.spec, context, input, options.interceptors);
    if (res.stream.destroyed) return;
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

function parseUnaryFrame<I extends DescMessage>(schema: I, body: Buffer, readMaxBytes: number) {
  if (body.length < 5) throw new ConnectError("protocol error: missing message frame", Code.InvalidArgument);
  if (body[0] !== 0)
    throw new ConnectError("protocol error: compressed frame without grpc-encoding", Code.InvalidArgument);
  const length = body.readUInt32BE(1);
  if (length > readMaxBytes)
    throw new ConnectError(`message is larger than the ${readMaxBytes}-byte limit`, Code.ResourceExhausted);
  if (body.length !== 5 + length)
    throw new ConnectError("protocol error: frame length does not match the body", Code.InvalidArgument);
  try {
    return fromBinary(schema, body.subarray(5));
  } catch (err) {
    throw new ConnectError(`cannot decode ${schema.typeName}: ${(err as Error).message}`, Code.InvalidArgument);
  }
}

/** An error: headers, no message, then trailers with the status, its message and google.rpc.Status details. */
function respondError(res: http2.Http2ServerResponse, err: ConnectError): void {
  if (res.stream.destroyed || res.headersSent) {
    if (!res.stream.destroyed) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const completed = withErrorInfo(err);
  const headers: http2.OutgoingHttpHeaders = { "content-type": "application/grpc+proto" };
  for (const [k, v] of completed.metadata) headers[k] = v;
  res.writeHead(200, headers);
  // Node's compatibility response always ends with a trailers frame, so the status goes there.
  res.addTrailers({
    "grpc-status": String(completed.code),
    "grpc-message": encodeURIComponent(completed.rawMessage),
    "grpc-status-details-bin": grpcStatusDetails(completed),
  });
  res.end();
}
