import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { errorInfoForCode } from "../errors/connect-error.js";

/**
 * Adds the ErrorInfo to an error response that lacks one, in the shape of the
 * call's protocol. Errors our interceptors see already have one; this covers
 * the few the framework raises while still decoding the request. It also
 * corrects one code: connect-es reports an undecodable binary request as
 * INTERNAL, but it is the caller's bad input, so INVALID_ARGUMENT.
 */
export async function ensureErrorInfo(req: UniversalServerRequest, res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const contentType = req.header.get("content-type") ?? "";
  if (contentType.startsWith("application/grpc-web")) return rewriteBody(res, rewriteGrpcWebTrailer);
  if (contentType.startsWith("application/grpc")) return withGrpcFallback(res);
  return res.status === 200 ? res : rewriteConnectError(res);
}

const DECODE_FAILURE = /^(parse binary|cannot decode|premature EOF|invalid UTF-?8)/i;

function callerFault(code: Code, message: string): Code {
  return code === Code.Internal && DECODE_FAILURE.test(message) ? Code.InvalidArgument : code;
}

const CODE_OF_NAME: Record<string, Code> = Object.fromEntries(
  Object.entries(Code)
    .filter(([, v]) => typeof v === "number")
    .map(([name, v]) => [name.replace(/[A-Z]/g, (c, i: number) => (i ? "_" : "") + c.toLowerCase()), v as Code]),
);
const NAME_OF_CODE = new Map(Object.entries(CODE_OF_NAME).map(([name, code]) => [code, name]));
// The Connect protocol's HTTP status for each code (connect.build/docs/protocol#error-codes).
const HTTP_STATUS: Partial<Record<Code, number>> = { [Code.InvalidArgument]: 400 };

/** Gathers a (small, unary) body so it can be rewritten whole; Node frames the new length itself. */
async function rewriteBody(res: UniversalServerResponse, rewrite: (bytes: Buffer) => Uint8Array): Promise<UniversalServerResponse> {
  if (res.body === undefined) return res;
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const header = new Headers(res.header);
  header.delete("content-length");
  const body = rewrite(Buffer.concat(chunks));
  return { ...res, header, body: (async function* () { yield body; })() };
}

async function rewriteConnectError(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  let status = res.status;
  const rewritten = await rewriteBody(res, (bytes) => {
    let error: { code?: string; message?: string; details?: { type: string; value: string }[] };
    try {
      error = JSON.parse(bytes.toString("utf8")) as typeof error;
    } catch {
      return bytes;
    }
    if (error.details?.some((d) => d.type === ErrorInfoSchema.typeName)) return bytes;
    const code = callerFault(CODE_OF_NAME[error.code ?? ""] ?? Code.Unknown, error.message ?? "");
    status = HTTP_STATUS[code] ?? status;
    const value = Buffer.from(toBinary(ErrorInfoSchema, errorInfoForCode(code))).toString("base64").replace(/=+$/, "");
    const details = [...(error.details ?? []), { type: ErrorInfoSchema.typeName, value }];
    return Buffer.from(JSON.stringify({ ...error, code: NAME_OF_CODE.get(code) ?? error.code, details }));
  });
  return { ...rewritten, status };
}

/** Completes a gRPC status (in headers or trailers) with google.rpc.Status details when it has none. */
function addStatusDetails(headers: Headers): void {
  const message = decodeURIComponent(headers.get("grpc-message") ?? "");
  const original = Number(headers.get("grpc-status") ?? "0");
  if (original === 0 || headers.has("grpc-status-details-bin")) return;
  const code = callerFault(original as Code, message);
  headers.set("grpc-status", String(code));
  const status = create(StatusSchema, { code, message, details: [anyPack(ErrorInfoSchema, errorInfoForCode(code))] });
  headers.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, status)).toString("base64").replace(/=+$/, ""));
}

function withGrpcFallback(res: UniversalServerResponse): UniversalServerResponse {
  const header = new Headers(res.header);
  if (header.has("grpc-status")) addStatusDetails(header);
  const trailer = new Headers(res.trailer);
  const body = res.body;
  if (body === undefined) {
    addStatusDetails(trailer);
    return { ...res, header, trailer };
  }
  // connect-es fills the trailer in while the body streams; amend it once the body is done.
  return {
    ...res,
    header,
    trailer,
    body: (async function* () {
      try {
        yield* body;
      } finally {
        for (const [k, v] of new Headers(res.trailer)) trailer.set(k, v);
        addStatusDetails(trailer);
      }
    })(),
  };
}

const TRAILER_FLAG = 0x80;

/** gRPC-Web carries its trailer as the last frame of the body; rewrite that frame when it lacks details. */
function rewriteGrpcWebTrailer(frames: Buffer): Uint8Array {
  let offset = 0;
  while (offset + 5 <= frames.length) {
    const flags = frames[offset]!;
    const length = frames.readUInt32BE(offset + 1);
    if (flags === TRAILER_FLAG && offset + 5 + length === frames.length) {
      const headers = new Headers();
      for (const line of frames.subarray(offset + 5).toString("utf8").split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
      }
      if (Number(headers.get("grpc-status") ?? "0") === 0 || headers.has("grpc-status-details-bin")) return frames;
      addStatusDetails(headers);
      let text = "";
      for (const [k, v] of headers) text += `${k}: ${v}\r\n`;
      const trailer = Buffer.from(text, "utf8");
      const prefix = Buffer.alloc(5);
      prefix[0] = TRAILER_FLAG;
      prefix.writeUInt32BE(trailer.length, 1);
      return Buffer.concat([frames.subarray(0, offset), prefix, trailer]);
    }
    offset += 5 + length;
  }
  return frames;
}
