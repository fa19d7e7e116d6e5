import http2 from "node:http2";
import net from "node:net";
import { createRegistry, fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

/**
 * Clients that send exactly the bytes a test chooses and judge exactly what
 * comes back: nothing normalises the request (no URL parsing, no header
 * validation) and nothing forgives the response (every byte of it is parsed).
 */

// ---------------------------------------------------------------------------------------------
// HTTP/1.x over a bare TCP socket
// ---------------------------------------------------------------------------------------------

/** Header names and values as received: names lower-cased, repeated fields kept in order. */
export type FieldMap = Map<string, string[]>;

export interface Http1Response {
  status: number;
  headers: FieldMap;
  /** The body with chunked framing removed. */
  body: Buffer;
  /** Trailer fields of a chunked body. */
  trailers: FieldMap;
  /** 1xx answers that came before it (100 Continue). */
  interim: number[];
}

export type Http1Outcome =
  /** A complete, well-framed answer. */
  | { kind: "response"; response: Http1Response }
  /** A well-formed head the caller chose to stop at (a long-lived stream). */
  | { kind: "streaming"; response: Http1Response }
  /** The server closed (or reset) the connection without sending a byte. */
  | { kind: "closed" }
  /** Bytes that are not a well-formed HTTP/1.x answer. */
  | { kind: "invalid"; problem: string; raw: Buffer }
  /** Neither a complete answer nor a close within the bound. */
  | { kind: "hang"; raw: Buffer; headReceived: boolean };

export interface Http1Options {
  /** The hang guard: generous, so only a server that never answers trips it. */
  waitMs: number;
  /** The request's method was HEAD (its answer has no body, whatever its headers say). */
  head: boolean;
  /**
   * Stop at an answer that is still streaming, once its head and some of its
   * body are in, if this accepts it (a health watch streams until the client leaves).
   */
  acceptStreaming?: (head: Http1Response, bodyBytesSoFar: number) => boolean;
  /** Write the request in this many pieces, yielding to the event loop between them. */
  pieces?: number;
}

/** Sends bytes on a fresh connection and reads one answer, bounded by waitMs. */
export function rawHttp1(port: number, request: Buffer, o: Http1Options): Promise<Http1Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = Buffer.alloc(0);
    let settled = false;
    const settle = (outcome: Http1Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const judge = (closed: boolean) => {
      if (closed && received.length === 0) return settle({ kind: "closed" });
      const parsed = parseHttp1Response(received, o.head, closed);
      if (parsed.state === "invalid") return settle({ kind: "invalid", problem: parsed.problem, raw: received });
      if (parsed.state === "done") return settle({ kind: "response", response: parsed.response });
      if (parsed.head && parsed.bodyBytes > 0 && o.acceptStreaming?.(parsed.head, parsed.bodyBytes)) {
        return settle({ kind: "streaming", response: parsed.head });
      }
    };
    const timer = setTimeout(() => {
      const parsed = parseHttp1Response(received, o.head, false);
      settle({ kind: "hang", raw: received, headReceived: parsed.state === "need-more" && !!parsed.head });
    }, o.waitMs);
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      judge(false);
    });
    // A reset is a close as far as the answer goes: what arrived before it is judged as it is.
    socket.on("error", () => judge(true));
    socket.on("close", () => judge(true));
    socket.once("connect", () => {
      const pieces = Math.max(1, Math.min(o.pieces ?? 1, request.length));
      const size = Math.ceil(request.length / pieces);
      const writeFrom = (i: number) => {
        if (i >= request.length || socket.destroyed) return;
        socket.write(request.subarray(i, i + size));
        setImmediate(() => writeFrom(i + size));
      };
      writeFrom(0);
    });
  });
}

type Parsed =
  | { state: "need-more"; head: Http1Response | undefined; bodyBytes: number }
  | { state: "done"; response: Http1Response }
  | { state: "invalid"; problem: string };

const CRLF = Buffer.from("\r\n");
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/;
const MAX_HEAD_BYTES = 64 * 1024;

function parseFields(lines: string[], into: FieldMap): string | undefined {
  for (const line of lines) {
    const m = FIELD_LINE.exec(line);
    if (!m) return `malformed field line ${JSON.stringify(line)}`;
    const name = m[1]!.toLowerCase();
    into.set(name, [...(into.get(name) ?? []), m[2]!]);
  }
  return undefined;
}

/**
 * One HTTP/1.x answer (RFC 9112), strictly: a status line, field lines, then
 * the body as its framing says (none for HEAD, 204 and 304; chunked; a
 * Content-Length; or up to the close). 1xx answers before it are skipped.
 */
export function parseHttp1Response(buf: Buffer, head: boolean, closed: boolean): Parsed {
  let offset = 0;
  const interim: number[] = [];
  for (;;) {
    const end = buf.indexOf("\r\n\r\n", offset);
    if (end === -1) {
      if (buf.length - offset > MAX_HEAD_BYTES) return { state: "invalid", problem: "a head longer than 64 KiB" };
      if (closed) return { state: "invalid", problem: "the connection closed inside the status line or fields" };
      return { state: "need-more", head: undefined, bodyBytes: 0 };
    }
    const lines = buf.subarray(offset, end).toString("latin1").split("\r\n");
    const statusLine = STATUS_LINE.exec(lines[0]!);
    if (!statusLine) return { state: "invalid", problem: `not an HTTP/1.x status line: ${JSON.stringify(lines[0])}` };
    const status = Number(statusLine[1]);
    if (status < 100 || status > 599) return { state: "invalid", problem: `status ${status} outside 100-599` };
    const headers: FieldMap = new Map();
    const fieldProblem = parseFields(lines.slice(1), headers);
    if (fieldProblem) return { state: "invalid", problem: fieldProblem };
    offset = end + 4;
    const response: Http1Response = { status, headers, body: Buffer.alloc(0), trailers: new Map(), interim };
    if (status >= 100 && status < 200 && status !== 101) {
      interim.push(status);
      continue;
    }
    const te = headers.get("transfer-encoding");
    const cl = headers.get("content-length");
    if (te && cl) return { state: "invalid", problem: "both Transfer-Encoding and Content-Length" };
    if (head || status === 101 || status === 204 || status === 304) return { state: "done", response };
    if (te) {
      const codings = te
        .join(",")
        .split(",")
        .map((c) => c.trim().toLowerCase());
      if (codings.at(-1) !== "chunked") return untilClose(buf, offset, response, closed);
      return chunked(buf, offset, response, closed);
    }
    if (cl) {
      const values = new Set(
        cl
          .join(",")
          .split(",")
          .map((v) => v.trim()),
      );
      const [value] = values;
      if (values.size !== 1 || !/^\d{1,15}$/.test(value!)) {
        return { state: "invalid", problem: `Content-Length ${JSON.stringify(cl)}` };
      }
      const length = Number(value);
      if (buf.length - offset >= length) {
        response.body = buf.subarray(offset, offset + length);
        return { state: "done", response };
      }
      if (closed) return { state: "invalid", problem: `closed after ${buf.length - offset} of ${length} body bytes` };
      return { state: "need-more", head: response, bodyBytes: buf.length - offset };
    }
    return untilClose(buf, offset, response, closed);
  }
}

function untilClose(buf: Buffer, offset: number, response: Http1Response, closed: boolean): Parsed {
  if (!closed) return { state: "need-more", head: response, bodyBytes: buf.length - offset };
  response.body = buf.subarray(offset);
  return { state: "done", response };
}

function chunked(buf: Buffer, offset: number, response: Http1Response, closed: boolean): Parsed {
  const parts: Buffer[] = [];
  let pos = offset;
  const more = (): Parsed =>
    closed
      ? { state: "invalid", problem: "the connection closed inside a chunked body" }
      : { state: "need-more", head: response, bodyBytes: buf.length - offset };
  for (;;) {
    const lineEnd = buf.indexOf(CRLF, pos);
    if (lineEnd === -1) return more();
    const sizeLine = buf.subarray(pos, lineEnd).toString("latin1");
    const m = /^([0-9A-Fa-f]{1,8})[\t ]*(?:;.*)?$/.exec(sizeLine);
    if (!m) return { state: "invalid", problem: `malformed chunk size line ${JSON.stringify(sizeLine)}` };
    const size = parseInt(m[1]!, 16);
    pos = lineEnd + 2;
    if (size === 0) {
      const end = buf.indexOf("\r\n\r\n", pos - 2);
      if (end === -1) return more();
      const trailerText = buf.subarray(pos, end).toString("latin1");
      const problem = trailerText === "" ? undefined : parseFields(trailerText.split("\r\n"), response.trailers);
      if (problem) return { state: "invalid", problem: `trailer: ${problem}` };
      response.body = Buffer.concat(parts);
      return { state: "done", response };
    }
    if (buf.length < pos + size + 2) return more();
    if (!buf.subarray(pos + size, pos + size + 2).equals(CRLF)) {
      return { state: "invalid", problem: "a chunk not followed by CRLF" };
    }
    parts.push(buf.subarray(pos, pos + size));
    pos += size + 2;
  }
}

export const first = (fields: FieldMap, name: string): string | undefined => fields.get(name)?.[0];

// ---------------------------------------------------------------------------------------------
// HTTP/2 through node:http2 (the client validates some values itself; see H2Outcome)
// ---------------------------------------------------------------------------------------------

export type H2Outcome =
  /** node's client threw synchronously: the request never left this process. */
  | { kind: "refused-by-client"; code: string }
  | { kind: "response"; headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }
  | { kind: "streaming"; headers: http2.IncomingHttpHeaders }
  /** RST_STREAM from the server (before any answer, unless headers is set). */
  | { kind: "reset"; code: number; headers: http2.IncomingHttpHeaders | undefined }
  /** The stream ended with the whole session (the session's own state says whether by GOAWAY). */
  | { kind: "session-ended"; error: string; headers: http2.IncomingHttpHeaders | undefined }
  | { kind: "hang"; headers: http2.IncomingHttpHeaders | undefined };

export interface H2Options {
  waitMs: number;
  /** Stop at an answer still streaming, at its first DATA, if this accepts it (a health watch). */
  acceptStreaming?: (headers: http2.IncomingHttpHeaders, firstData: Buffer) => boolean;
}

/**
 * One stream on the session: the headers as given (pseudo-headers included),
 * then the body and END_STREAM. endStream is false even for GET and HEAD
 * (node would otherwise close them at once), so they can carry a body too.
 */
export function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body: Buffer,
  o: H2Options,
): Promise<H2Outcome> {
  let stream: http2.ClientHttp2Stream;
  try {
    stream = session.request(headers, { endStream: false });
  } catch (err) {
    return Promise.resolve({ kind: "refused-by-client", code: String((err as { code?: string }).code ?? err) });
  }
  return new Promise((resolve) => {
    let head: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders = {};
    let error: string | undefined;
    const chunks: Buffer[] = [];
    let settled = false;
    const settle = (outcome: H2Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      resolve(outcome);
    };
    const timer = setTimeout(() => settle({ kind: "hang", headers: head }), o.waitMs);
    stream.on("response", (h) => (head = h));
    stream.on("trailers", (t: http2.IncomingHttpHeaders) => {
      trailers = t;
    });
    stream.on("data", (c: Buffer) => {
      chunks.push(c);
      if (head && chunks.length === 1 && o.acceptStreaming?.(head, c)) settle({ kind: "streaming", headers: head });
    });
    stream.on("error", (err: Error & { code?: string }) => (error = `${err.code ?? ""} ${err.message}`));
    stream.on("close", () => {
      const rst = stream.rstCode ?? http2.constants.NGHTTP2_NO_ERROR;
      if (head && rst === http2.constants.NGHTTP2_NO_ERROR) {
        return settle({ kind: "response", headers: head, trailers, body: Buffer.concat(chunks) });
      }
      if (!session.destroyed && rst !== http2.constants.NGHTTP2_NO_ERROR) {
        return settle({ kind: "reset", code: rst, headers: head });
      }
      settle({ kind: "session-ended", error: error ?? "closed without an answer", headers: head });
    });
    stream.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 from raw frames: what node's client cannot send (a request with neither :authority nor host)
// ---------------------------------------------------------------------------------------------

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

function hpackInt(value: number, prefixBits: number, firstByteFlags: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByteFlags | value];
  const out = [firstByteFlags | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

/** Each field as "literal without indexing, new name", no Huffman: the simplest valid HPACK. */
function hpackBlock(fields: [string, string][]): Buffer {
  const bytes: number[] = [];
  for (const [name, value] of fields) {
    bytes.push(0x00);
    const n = Buffer.from(name, "latin1");
    const v = Buffer.from(value, "latin1");
    bytes.push(...hpackInt(n.length, 7, 0), ...n);
    bytes.push(...hpackInt(v.length, 7, 0), ...v);
  }
  return Buffer.from(bytes);
}

function readHpackInt(block: Buffer, pos: number, prefixBits: number): { value: number; next: number } {
  const max = (1 << prefixBits) - 1;
  let value = block[pos]! & max;
  let next = pos + 1;
  if (value < max) return { value, next };
  let shift = 0;
  for (;;) {
    const b = block[next++]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return { value, next };
  }
}

// RFC 7541 Appendix B codes of the ten digits: all a status code can hold.
const HUFFMAN_DIGITS: [string, string][] = [
  ["00000", "0"],
  ["00001", "1"],
  ["00010", "2"],
  ["011001", "3"],
  ["011010", "4"],
  ["011011", "5"],
  ["011100", "6"],
  ["011101", "7"],
  ["011110", "8"],
  ["011111", "9"],
];

function huffmanDigits(bytes: Buffer): string | undefined {
  let bits = [...bytes].map((b) => b.toString(2).padStart(8, "0")).join("");
  let out = "";
  while (bits.length > 0) {
    if (bits.length < 8 && /^1+$/.test(bits)) return out; // EOS padding
    const code = HUFFMAN_DIGITS.find(([c]) => bits.startsWith(c));
    if (!code) return undefined;
    out += code[1];
    bits = bits.slice(code[0].length);
  }
  return out;
}

const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

/** The :status of a response header block: its first field (RFC 9113 §8.3: pseudo-headers come first). */
export function statusOfHeaderBlock(block: Buffer): number | undefined {
  let pos = 0;
  while (pos < block.length && (block[pos]! & 0xe0) === 0x20) pos = readHpackInt(block, pos, 5).next; // table size update
  const b = block[pos];
  if (b === undefined) return undefined;
  if (b & 0x80) return STATIC_STATUS[readHpackInt(block, pos, 7).value];
  const prefix = (b & 0xc0) === 0x40 ? 6 : 4;
  const name = readHpackInt(block, pos, prefix);
  if (STATIC_STATUS[name.value] === undefined) return undefined; // not the :status name
  const huffman = (block[name.next]! & 0x80) !== 0;
  const length = readHpackInt(block, name.next, 7);
  const value = block.subarray(length.next, length.next + length.value);
  const text = huffman ? huffmanDigits(value) : value.toString("latin1");
  return text !== undefined && /^\d{3}$/.test(text) ? Number(text) : undefined;
}

export type RawH2Outcome =
  | { kind: "response"; status: number | undefined }
  | { kind: "reset"; code: number }
  | { kind: "goaway"; code: number }
  | { kind: "closed" }
  | { kind: "hang" };

/** One request on stream 1 of a fresh connection, its fields exactly as given, read up to its response head. */
export function rawH2Request(
  port: number,
  fields: [string, string][],
  body: Buffer,
  waitMs: number,
): Promise<RawH2Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = Buffer.alloc(0);
    let settled = false;
    const settle = (o: RawH2Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => settle({ kind: "hang" }), waitMs);
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 9) {
        const length = received.readUIntBE(0, 3);
        if (received.length < 9 + length) return;
        const [type, flags] = [received[3]!, received[4]!];
        const streamId = received.readUInt32BE(5) & 0x7fffffff;
        let payload = received.subarray(9, 9 + length);
        received = received.subarray(9 + length);
        if (type === 0x4 && (flags & 0x1) === 0) socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0))); // SETTINGS ack
        if (type === 0x7) return settle({ kind: "goaway", code: payload.readUInt32BE(4) });
        if (streamId !== 1) continue;
        if (type === 0x3) return settle({ kind: "reset", code: payload.readUInt32BE(0) });
        if (type === 0x1) {
          if (flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]!); // PADDED
          if (flags & 0x20) payload = payload.subarray(5); // PRIORITY
          return settle({ kind: "response", status: statusOfHeaderBlock(payload) });
        }
      }
    });
    socket.on("error", () => settle({ kind: "closed" }));
    socket.on("close", () => settle({ kind: "closed" }));
    socket.once("connect", () => {
      const endStream = body.length === 0 ? 0x1 : 0;
      socket.write(
        Buffer.concat([
          PREFACE,
          frame(0x4, 0, 0, Buffer.alloc(0)),
          frame(0x1, 0x4 | endStream, 1, hpackBlock(fields)),
          ...(body.length > 0 ? [frame(0x0, 0x1, 1, body)] : []),
        ]),
      );
    });
  });
}

// ---------------------------------------------------------------------------------------------
// What the answers say: gRPC status (headers, trailers, gRPC-Web trailer frame), Connect errors
// ---------------------------------------------------------------------------------------------

const registry = createRegistry(ErrorInfoSchema);

/** The ErrorInfo reason in a grpc-status-details-bin value; undefined when there is none or it does not decode. */
export function errorInfoReason(detailsBin: string | undefined): string | undefined {
  if (!detailsBin) return undefined;
  try {
    const status = fromBinary(StatusSchema, Buffer.from(detailsBin, "base64"));
    for (const detail of status.details) {
      const info = anyUnpack(detail, registry);
      if (info?.$typeName === ErrorInfoSchema.typeName) return (info as unknown as { reason: string }).reason;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** The gRPC-Web body's frames; undefined when its framing is broken. */
export function grpcWebFrames(body: Buffer): { flags: number; data: Buffer }[] | undefined {
  const frames: { flags: number; data: Buffer }[] = [];
  let pos = 0;
  while (pos < body.length) {
    if (body.length - pos < 5) return undefined;
    const length = body.readUInt32BE(pos + 1);
    if (body.length - pos - 5 < length) return undefined;
    frames.push({ flags: body[pos]!, data: body.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  return frames;
}

/** The fields of a gRPC-Web trailer frame ("name: value" lines); undefined when there is no trailer frame. */
export function grpcWebTrailers(body: Buffer): Record<string, string> | undefined {
  const frames = grpcWebFrames(body);
  const trailer = frames?.find((f) => (f.flags & 0x80) !== 0);
  if (!trailer) return undefined;
  const fields: Record<string, string> = {};
  for (const line of trailer.data.toString("latin1").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** A Connect error JSON body: code and the ErrorInfo reason among its details. */
export function connectError(body: Buffer): { code: string; reason: string | undefined } | undefined {
  try {
    const json = JSON.parse(body.toString("utf8")) as {
      code?: unknown;
      details?: { type?: string; debug?: { reason?: string } }[];
    };
    if (typeof json.code !== "string") return undefined;
    const info = json.details?.find((d) => d.type === "google.rpc.ErrorInfo");
    return { code: json.code, reason: info?.debug?.reason };
  } catch {
    return undefined;
  }
}

/** A gRPC message frame: the 5-byte prefix (flags, length) and the payload. */
export function envelope(payload: Buffer, flags = 0): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flags;
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}
