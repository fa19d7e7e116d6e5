import type http from "node:http";
import type http2 from "node:http2";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { fromBinary, fromJson, toBinary, toJsonString, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { invokeUnaryImplementation } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { withErrorInfo } from "../../errors/connect-error.js";
import {
  leanHandlerContext,
  readMessageBody,
  unaryRoutes,
  type LeanPathOptions,
  type UnaryRoute,
} from "./unary-calls.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;
export type ConnectUnaryPath = (req: Request, res: Response) => boolean;

const gzipAsync = promisify(gzip);
// As connect-node: small answers are not worth compressing.
const COMPRESS_MIN_BYTES = 1024;

/**
 * Unary Connect POSTs (JSON or binary, identity request encoding) over HTTP/1.1
 * or HTTP/2: what browsers send. GET requests, compressed requests and anything
 * else go to the general adapter.
 */
export function createConnectUnaryPath(options: LeanPathOptions): ConnectUnaryPath {
  const routes = unaryRoutes(options.services);
  return (req, res) => {
    if (req.method !== "POST") return false;
    const route = routes.get(req.url ?? "");
    if (!route) return false;
    const format = formatOf(req.headers["content-type"]);
    if (!format) return false;
    const encoding = req.headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    // serve() answers its own errors; should answering fail too, the stream is cut rather than left open.
    serve(route, format, req, res, options).catch(() => res.destroy());
    return true;
  };
}

function formatOf(contentType: string | undefined): "json" | "binary" | undefined {
  switch (contentType?.toLowerCase().replace(/\s+/g, "")) {
    case "application/json":
    case "application/json;charset=utf-8":
      return "json";
    case "application/proto":
      return "binary";
    default:
      return undefined;
  }
}

async function serve(
  route: UnaryRoute,
  format: "json" | "binary",
  req: Request,
  res: Response,
  options: LeanPathOptions,
) {
  const contentType = format === "json" ? "application/json" : "application/proto";
  try {
    const body = await readMessageBody(req, options.readMaxBytes);
    const input = parseMessage(route.method.input, format, body);
    const url = `http://${String(req.headers.host ?? req.headers[":authority"] ?? "localhost")}${req.url}`;
    const context = leanHandlerContext(route, "connect", url, req.headers, options.contextValues(req));
    const output = await invokeUnaryImplementation(route.spec, context, input, options.interceptors);
    let payload: Uint8Array =
      format === "json"
        ? Buffer.from(toJsonString(route.method.output, output))
        : toBinary(route.method.output, output);
    const headers: Record<string, string> = { "content-type": contentType };
    for (const [k, v] of context.responseHeader) headers[k] = v;
    // Connect unary responses carry trailers as prefixed headers.
    for (const [k, v] of context.responseTrailer) headers[`trailer-${k}`] = v;
    if (payload.length >= COMPRESS_MIN_BYTES && acceptsGzip(req.headers["accept-encoding"])) {
      payload = await gzipAsync(payload);
      headers["content-encoding"] = "gzip";
    }
    headers["content-length"] = String(payload.length);
    (res as http.ServerResponse).writeHead(200, headers);
    res.end(payload);
  } catch (err) {
    respondError(res, ConnectError.from(err));
  }
}

function parseMessage<I extends DescMessage>(schema: I, format: "json" | "binary", body: Buffer) {
  if (format === "binary") {
    try {
      return fromBinary(schema, body);
    } catch (err) {
      throw new ConnectError(`cannot decode ${schema.typeName}: ${(err as Error).message}`, Code.InvalidArgument);
    }
  }
  let json: JsonValue;
  try {
    json = JSON.parse(body.toString("utf8")) as JsonValue;
  } catch (err) {
    throw new ConnectError(
      `cannot decode ${schema.typeName} from JSON: ${(err as Error).message}`,
      Code.InvalidArgument,
    );
  }
  try {
    // As connect: unknown fields are ignored, so older servers accept newer clients.
    return fromJson(schema, json, { ignoreUnknownFields: true });
  } catch (err) {
    throw new ConnectError((err as Error).message, Code.InvalidArgument);
  }
}

function acceptsGzip(acceptEncoding: string | undefined): boolean {
  return acceptEncoding !== undefined && /(^|,)\s*gzip\s*(;|,|$)/i.test(acceptEncoding);
}

function respondError(res: Response, err: ConnectError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const completed = withErrorInfo(err);
  const body = errorToJsonBytes(completed, {});
  const headers: Record<string, string> = { "content-type": "application/json", "content-length": String(body.length) };
  for (const [k, v] of completed.metadata) headers[k] = v;
  (res as http.ServerResponse).writeHead(codeToHttpStatus(completed.code), headers);
  res.end(body);
}
