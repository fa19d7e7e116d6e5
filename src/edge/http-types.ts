import type http from "node:http";
import type http2 from "node:http2";

/** A request as Node's HTTP/1.1 server or HTTP/2 compatibility API hands it over. */
export type HttpRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type HttpResponse = http.ServerResponse | http2.Http2ServerResponse;
export type RequestHandler = (req: HttpRequest, res: HttpResponse) => void;

/** Headers as the edge writes them: lower-case names, string values. */
export type HeaderMap = Record<string, string>;

/** writeHead for either server; the two differ only in their types. */
export function writeHead(res: HttpResponse, status: number, headers: HeaderMap): void {
  (res as http.ServerResponse).writeHead(status, headers);
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
