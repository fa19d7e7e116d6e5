import type http from "node:http";
import type http2 from "node:http2";

/** A request as Node's HTTP/1.1 server or HTTP/2 compatibility API hands it over. */
export type HttpRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type HttpResponse = http.ServerResponse | http2.Http2ServerResponse;
export type RequestHandler = (req: HttpRequest, res: HttpResponse) => void;

/** Headers as the edge writes them: lower-case names, string values. */
export type HeaderMap = Record<string, string>;

// Headers settled before the answer is (the request id, CORS), kept here and written with the answer's own
// in one writeHead: with any header set through res.setHeader first, Node validates and stores every
// header of the answer one by one, which cost more than a microsecond per call.
const early = new WeakMap<HttpResponse, HeaderMap>();

/** Sets a header every answer to this request carries, whoever writes it (through writeHead below). */
export function setEarlyHeader(res: HttpResponse, name: string, value: string): void {
  const headers = early.get(res);
  if (headers) headers[name] = value;
  else early.set(res, { [name]: value });
}

/** The early headers set so far (undefined for none). */
export function earlyHeaders(res: HttpResponse): Readonly<HeaderMap> | undefined {
  return early.get(res);
}

/** writeHead for either server, with the early headers first; an answer's own header of the same name wins. */
export function writeHead(res: HttpResponse, status: number, headers: HeaderMap): void {
  const first = early.get(res);
  (res as http.ServerResponse).writeHead(status, first ? Object.assign(first, headers) : headers);
}

/** The connection a request came on: the socket (HTTP/1.1) or the session (HTTP/2), for per-connection limits. */
export function connectionOf(req: HttpRequest): object {
  return "stream" in req ? (req.stream.session ?? req.stream) : req.socket;
}

/**
 * Whether the request came over HTTP/2: decided by what Node handed over, not by the version the
 * request line claims (an HTTP/1 parser accepts "HTTP/2.0" in a request line).
 */
export function isHttp2(req: HttpRequest): req is http2.Http2ServerRequest {
  return "stream" in req;
}
