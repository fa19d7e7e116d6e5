import http from "node:http";
import http2 from "node:http2";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import {
  createRegistry,
  fromBinary,
  fromJsonString,
  toBinary,
  toJson,
  toJsonString,
  type DescMessage,
  type DescMethod,
  type JsonValue,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { base64Decode, base64Encode } from "@bufbuild/protobuf/wire";
import { create } from "@bufbuild/protobuf";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

/**
 * The comparison harness: one raw request (method, path, headers, body) sent
 * as is to two servers over node:http2 or node:http, and everything that came
 * back captured: status, headers, trailers (HTTP/2's trailers event, HTTP/1.1's
 * chunked trailers) and the body bytes. Answers are compared through a view
 * that holds the raw bytes (so the comparison is byte for byte) next to their
 * decoded form (so a failing comparison shows a readable diff).
 */

export type HttpVersion = "1.1" | "2";

export interface RawRequest {
  http: HttpVersion;
  method: string;
  /** Path and query. */
  path: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

export interface Answer {
  status: number;
  /** Lower-case names; Node joins repeated headers with ", ". */
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
  /** How the exchange ended other than cleanly (an RST_STREAM code, a socket error); undefined when clean. */
  broken: string | undefined;
}

/** Headers that differ between any two servers and carry nothing of the protocol. */
const TRANSPORT_HEADERS = ["date", "connection", "keep-alive"];

/** Sends raw requests; keeps one HTTP/2 session per server (HTTP/1.1 requests each get their own connection). */
export class RawClient {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();

  send(baseUrl: string, req: RawRequest): Promise<Answer> {
    return req.http === "2" ? this.send2(baseUrl, req) : send1(baseUrl, req);
  }

  close(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }

  private session(baseUrl: string): http2.ClientHttp2Session {
    let session = this.sessions.get(baseUrl);
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(baseUrl);
      session.on("error", () => this.sessions.delete(baseUrl));
      session.on("close", () => this.sessions.delete(baseUrl));
      this.sessions.set(baseUrl, session);
    }
    return session;
  }

  private send2(baseUrl: string, req: RawRequest): Promise<Answer> {
    return new Promise<Answer>((resolve) => {
      const stream = this.session(baseUrl).request({ ":method": req.method, ":path": req.path, ...req.headers });
      let status = 0;
      let headers: Record<string, string> = {};
      let trailers: Record<string, string> = {};
      let broken: string | undefined;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        headers = plain(h);
      });
      stream.on("trailers", (t: http2.IncomingHttpHeaders) => (trailers = plain(t)));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", (err: Error) => (broken = err.message));
      stream.on("close", () => {
        if (broken === undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
          broken = `RST_STREAM ${stream.rstCode}`;
        }
        resolve({ status, headers: strip(headers), trailers, body: Buffer.concat(chunks), broken });
      });
      stream.end(req.body === undefined ? undefined : Buffer.from(req.body));
    });
  }
}

function send1(baseUrl: string, req: RawRequest): Promise<Answer> {
  const url = new URL(baseUrl);
  return new Promise<Answer>((resolve) => {
    const headers: Record<string, string> = { ...req.headers };
    if (req.body !== undefined) headers["content-length"] = String(req.body.byteLength);
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (answer: Answer) => {
      if (settled) return;
      settled = true;
      resolve(answer);
    };
    const request = http.request(
      { host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent: false },
      (res) => {
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        const finish = (broken: string | undefined) =>
          done({
            status: res.statusCode ?? 0,
            headers: strip(plain(res.headers)),
            trailers: plain(res.trailers),
            body: Buffer.concat(chunks),
            broken,
          });
        res.on("end", () => finish(undefined));
        res.on("error", (err) => finish(err.message));
      },
    );
    request.on("error", (err) =>
      done({ status: 0, headers: {}, trailers: {}, body: Buffer.concat(chunks), broken: err.message }),
    );
    request.end(req.body === undefined ? undefined : Buffer.from(req.body));
  });
}

function plain(h: http.IncomingHttpHeaders | http2.IncomingHttpHeaders | NodeJS.Dict<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith(":") || value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

function strip(headers: Record<string, string>): Record<string, string> {
  const out = { ...headers };
  for (const name of TRANSPORT_HEADERS) delete out[name];
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Building requests in each protocol.

export type WireKind = "grpc" | "grpc-web" | "connect" | "connect-get";

export interface Protocol {
  /** "gRPC proto (HTTP/2)" */
  name: string;
  kind: WireKind;
  http: HttpVersion;
  binary: boolean;
  /** Connect GET: the message base64-encoded (base64=1). */
  base64?: boolean;
}

export const PROTOCOLS: readonly Protocol[] = [
  { name: "gRPC proto (HTTP/2)", kind: "grpc", http: "2", binary: true },
  { name: "gRPC JSON (HTTP/2)", kind: "grpc", http: "2", binary: false },
  { name: "gRPC-Web proto (HTTP/1.1)", kind: "grpc-web", http: "1.1", binary: true },
  { name: "gRPC-Web JSON (HTTP/1.1)", kind: "grpc-web", http: "1.1", binary: false },
  { name: "gRPC-Web proto (HTTP/2)", kind: "grpc-web", http: "2", binary: true },
  { name: "gRPC-Web JSON (HTTP/2)", kind: "grpc-web", http: "2", binary: false },
  { name: "Connect JSON POST (HTTP/1.1)", kind: "connect", http: "1.1", binary: false },
  { name: "Connect proto POST (HTTP/1.1)", kind: "connect", http: "1.1", binary: true },
  { name: "Connect JSON POST (HTTP/2)", kind: "connect", http: "2", binary: false },
  { name: "Connect proto POST (HTTP/2)", kind: "connect", http: "2", binary: true },
  { name: "Connect GET JSON (HTTP/1.1)", kind: "connect-get", http: "1.1", binary: false },
  { name: "Connect GET JSON (HTTP/2)", kind: "connect-get", http: "2", binary: false },
  { name: "Connect GET JSON base64=1 (HTTP/1.1)", kind: "connect-get", http: "1.1", binary: false, base64: true },
  { name: "Connect GET proto base64=1 (HTTP/1.1)", kind: "connect-get", http: "1.1", binary: true, base64: true },
  { name: "Connect GET proto base64=1 (HTTP/2)", kind: "connect-get", http: "2", binary: true, base64: true },
];

export const POST_PROTOCOLS = PROTOCOLS.filter((p) => p.kind !== "connect-get");
export const ENVELOPED_PROTOCOLS = PROTOCOLS.filter((p) => p.kind === "grpc" || p.kind === "grpc-web");
export const CONNECT_POST_PROTOCOLS = PROTOCOLS.filter((p) => p.kind === "connect");

export type MethodName = (typeof DashboardService.methods)[number]["name"];

export function methodOf(name: string): DescMethod {
  const method = DashboardService.methods.find((m) => m.name === name);
  if (!method) throw new Error(`no method ${name}`);
  return method;
}

export const rpcPath = (name: string) => `/${DashboardService.typeName}/${name}`;

export function contentTypeOf(p: Protocol): string | undefined {
  switch (p.kind) {
    case "grpc":
      return p.binary ? "application/grpc" : "application/grpc+json";
    case "grpc-web":
      return p.binary ? "application/grpc-web+proto" : "application/grpc-web+json";
    case "connect":
      return p.binary ? "application/proto" : "application/json";
    case "connect-get":
      return undefined;
  }
}

/** A 5-byte-prefixed frame: flags, then the declared length (the real one unless a test lies). */
export function envelope(payload: Uint8Array, flags = 0, declaredLength = payload.byteLength): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flags;
  prefix.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([prefix, payload]);
}

export function encodeFor<Desc extends DescMessage>(
  p: Protocol,
  schema: Desc,
  message: MessageInitShape<Desc>,
): Uint8Array {
  const m = create(schema, message);
  return p.binary ? toBinary(schema, m) : Buffer.from(toJsonString(schema, m));
}

export interface CallOptions {
  token?: string | undefined;
  /** Extra request headers (override the protocol's own). */
  headers?: Record<string, string>;
  /** The request's message bytes, as they go in the frame, body or query (default: the message, encoded). */
  payload?: Uint8Array;
  /** The whole body as sent (for framing tests); replaces the framed payload. */
  body?: Uint8Array;
  /** Extra query parameters for Connect GET. */
  query?: Record<string, string>;
  /** The HTTP method (default: POST, or GET for Connect GET). */
  method?: string;
  requestId?: string;
  /** Another path than the method's (unknown methods and services). */
  path?: string;
}

let requestCounter = 0;

/** The raw request a client of protocol p would send for one call. */
export function rpcRequest<Desc extends DescMessage>(
  p: Protocol,
  methodName: string,
  schema: Desc,
  message: MessageInitShape<Desc>,
  o: CallOptions = {},
): RawRequest {
  const payload = o.payload ?? encodeFor(p, schema, message);
  const headers: Record<string, string> = {
    "x-request-id": o.requestId ?? `diff-${++requestCounter}`,
  };
  const contentType = contentTypeOf(p);
  if (contentType !== undefined) headers["content-type"] = contentType;
  if (p.kind === "grpc") headers.te = "trailers";
  if (p.kind === "grpc-web") headers["x-grpc-web"] = "1";
  if (p.kind === "connect") headers["connect-protocol-version"] = "1";
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  Object.assign(headers, o.headers);
  let path = o.path ?? rpcPath(methodName);
  let body: Uint8Array | undefined;
  if (p.kind === "connect-get") {
    const params = new URLSearchParams({ connect: "v1", encoding: p.binary ? "proto" : "json" });
    if (p.base64) {
      params.set("base64", "1");
      params.set("message", base64Encode(payload, "url"));
    } else {
      params.set("message", Buffer.from(payload).toString("utf8"));
    }
    for (const [k, v] of Object.entries(o.query ?? {})) params.set(k, v);
    path += `?${params.toString()}`;
  } else {
    body = o.body ?? (p.kind === "connect" ? payload : envelope(payload));
  }
  return { http: p.http, method: o.method ?? (p.kind === "connect-get" ? "GET" : "POST"), path, headers, body };
}

// ---------------------------------------------------------------------------------------------------------------
// Views: the raw answer, byte for byte, beside its decoded form.

const registry = createRegistry(ErrorInfoSchema, BadRequestSchema, RetryInfoSchema);

export interface AnswerView {
  status: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  /** The body's bytes: as text when they are UTF-8 text, else base64. */
  body: string;
  broken: string | undefined;
  /** Readable forms of what the raw fields hold (envelopes, messages, error details); derived, for the diff. */
  decoded: Record<string, unknown>;
}

function sorted(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** UTF-8 without control characters other than tab, CR and LF (which gRPC-Web's trailer frame has). */
function isText(bytes: Buffer): boolean {
  for (const b of bytes) if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) || b === 0x7f) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

export function bodyText(bytes: Buffer): string {
  return isText(bytes) ? `text:${bytes.toString("utf8")}` : `base64:${bytes.toString("base64")}`;
}

/** google.rpc.Status, as grpc-status-details-bin carries it, with its details unpacked. */
export function decodeStatusDetails(value: string): unknown {
  try {
    const status = fromBinary(StatusSchema, base64Decode(value));
    return {
      code: status.code,
      message: status.message,
      details: status.details.map((any) => {
        const unpacked = anyUnpack(any, registry);
        return unpacked ? { [any.typeUrl]: toJson(registry.getMessage(unpacked.$typeName)!, unpacked) } : any.typeUrl;
      }),
    };
  } catch (err) {
    return `undecodable: ${(err as Error).message}`;
  }
}

function decompress(bytes: Uint8Array, encoding: string | undefined): Buffer {
  if (encoding === "gzip") return gunzipSync(bytes);
  if (encoding === "br") return brotliDecompressSync(bytes);
  return Buffer.from(bytes);
}

function decodeMessage(schema: DescMessage, bytes: Uint8Array, binary: boolean): unknown {
  try {
    const m = binary ? fromBinary(schema, bytes) : fromJsonString(schema, Buffer.from(bytes).toString("utf8"));
    return toJson(schema, m);
  } catch (err) {
    return `undecodable ${schema.typeName}: ${(err as Error).message}`;
  }
}

/** The Connect error JSON with each detail's value decoded. */
function decodeConnectError(text: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return `not JSON: ${text}`;
  }
  const e = json as { details?: { type: string; value: string }[] };
  return {
    ...(json as object),
    details: e.details?.map((d) => {
      const desc = registry.getMessage(d.type);
      return { ...d, value: desc ? decodeMessage(desc, base64Decode(d.value), true) : d.value };
    }),
  };
}

interface Frame {
  flags: number;
  length: number;
  data: Buffer;
}

export function splitFrames(body: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let at = 0;
  while (body.length - at >= 5) {
    const length = body.readUInt32BE(at + 1);
    if (body.length - at - 5 < length) break;
    frames.push({ flags: body[at]!, length, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return { frames, rest: body.subarray(at) };
}

/** The view of an answer to a request on `path` (which names the method, so messages can be decoded). */
export function view(answer: Answer, path: string): AnswerView {
  const decoded: Record<string, unknown> = {};
  for (const where of ["headers", "trailers"] as const) {
    const details = answer[where]["grpc-status-details-bin"];
    if (details !== undefined) decoded[`${where}.grpc-status-details-bin`] = decodeStatusDetails(details);
  }
  const name = path.split("?", 1)[0]!.split("/").at(-1) ?? "";
  const method = DashboardService.methods.find((m) => m.name === name);
  const contentType = answer.headers["content-type"] ?? "";
  const grpcLike = /^application\/grpc/.exec(contentType);
  if (grpcLike && answer.body.length > 0) {
    const binary = !contentType.endsWith("json");
    const { frames, rest } = splitFrames(answer.body);
    decoded.frames = frames.map((f) => {
      const data = f.flags & 1 ? decompress(f.data, answer.headers["grpc-encoding"]) : f.data;
      if (f.flags & 0x80) {
        const text = data.toString("utf8");
        const lines: Record<string, unknown> = { trailerFrame: text };
        const details = /grpc-status-details-bin: ([^\r\n]*)/.exec(text)?.[1];
        if (details !== undefined) lines["grpc-status-details-bin"] = decodeStatusDetails(details);
        return { flags: f.flags, length: f.length, ...lines };
      }
      return {
        flags: f.flags,
        length: f.length,
        message: method ? decodeMessage(method.output, data, binary) : bodyText(data),
      };
    });
    if (rest.length > 0) decoded.trailingBytes = bodyText(rest);
  } else if (answer.body.length > 0) {
    const data = decompress(answer.body, answer.headers["content-encoding"]);
    if (answer.status !== 200 || contentType === "application/json") {
      decoded.json = answer.status === 200 && method ? decodeMessage(method.output, data, false) : undefined;
      if (answer.status !== 200) decoded.error = decodeConnectError(data.toString("utf8"));
    } else if (method && contentType === "application/proto") {
      decoded.message = decodeMessage(method.output, data, true);
    }
  }
  return {
    status: answer.status,
    headers: sorted(answer.headers),
    trailers: sorted(answer.trailers),
    body: bodyText(answer.body),
    broken: answer.broken,
    decoded,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Error answers, read from any protocol.

export interface ErrorOutcome {
  /** The gRPC code (numeric), from grpc-status or the Connect code name. */
  code: number;
  message: string;
  /** Each detail, type name and JSON. */
  details: { type: string; value: JsonValue }[];
}

const CONNECT_CODES: Record<string, number> = {
  canceled: 1,
  unknown: 2,
  invalid_argument: 3,
  deadline_exceeded: 4,
  not_found: 5,
  already_exists: 6,
  permission_denied: 7,
  resource_exhausted: 8,
  failed_precondition: 9,
  aborted: 10,
  out_of_range: 11,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
  data_loss: 15,
  unauthenticated: 16,
};

function detailsOf(statusBin: string | undefined): ErrorOutcome["details"] {
  if (statusBin === undefined) return [];
  const status = fromBinary(StatusSchema, base64Decode(statusBin));
  return status.details.map((any) => {
    const unpacked = anyUnpack(any, registry);
    const type = any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1);
    return { type, value: unpacked ? toJson(registry.getMessage(type)!, unpacked) : null };
  });
}

/** The trailers of a gRPC-Web answer's trailer frame, as a header map. */
export function grpcWebTrailers(body: Buffer): Record<string, string> | undefined {
  const last = splitFrames(body).frames.find((f) => f.flags & 0x80);
  if (!last) return undefined;
  const out: Record<string, string> = {};
  for (const line of last.data.toString("utf8").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

/** The error an answer reports, whatever its protocol; undefined for a success. */
export function errorOf(answer: Answer, kind: WireKind): ErrorOutcome | undefined {
  if (kind === "grpc" || kind === "grpc-web") {
    const t = kind === "grpc" ? { ...answer.headers, ...answer.trailers } : (grpcWebTrailers(answer.body) ?? {});
    const status = Number(t["grpc-status"] ?? "NaN");
    if (status === 0) return undefined;
    return {
      code: status,
      message: decodeURIComponent(t["grpc-message"] ?? ""),
      details: detailsOf(t["grpc-status-details-bin"]),
    };
  }
  if (answer.status === 200) return undefined;
  const json = JSON.parse(decompress(answer.body, answer.headers["content-encoding"]).toString("utf8")) as {
    code: string;
    message?: string;
    details?: { type: string; value: string }[];
  };
  return {
    code: CONNECT_CODES[json.code] ?? -1,
    message: json.message ?? "",
    details: (json.details ?? []).map((d) => {
      const desc = registry.getMessage(d.type);
      return { type: d.type, value: desc ? toJson(desc, fromBinary(desc, base64Decode(d.value))) : null };
    }),
  };
}

/** The one message of a successful answer, decoded, whatever its protocol. */
export function messageOf<Desc extends DescMessage>(answer: Answer, kind: WireKind, schema: Desc, binary: boolean) {
  let data: Uint8Array;
  if (kind === "grpc" || kind === "grpc-web") {
    const frames = splitFrames(answer.body).frames.filter((f) => (f.flags & 0x80) === 0);
    if (frames.length !== 1) throw new Error(`expected one message frame, got ${frames.length}`);
    const f = frames[0]!;
    data = f.flags & 1 ? decompress(f.data, answer.headers["grpc-encoding"]) : f.data;
  } else {
    data = decompress(answer.body, answer.headers["content-encoding"]);
  }
  return binary ? fromBinary(schema, data) : fromJsonString(schema, Buffer.from(data).toString("utf8"));
}
