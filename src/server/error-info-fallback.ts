import { Readable } from "node:stream";
import { ConnectError } from "@connectrpc/connect";
import type { UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorFromJsonBytes, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { grpcStatusDetails, withErrorInfo } from "../errors/connect-error.js";

/**
 * Adds the ErrorInfo to an error response that lacks one, in the shape of the
 * call's protocol. Errors our interceptors see already have one; this covers
 * the few the framework raises while still decoding the request (and
 * withErrorInfo reports an undecodable request as INVALID_ARGUMENT, not the
 * INTERNAL connect-es gives it).
 */
export async function ensureErrorInfo(
  req: UniversalServerRequest,
  res: UniversalServerResponse,
): Promise<UniversalServerResponse> {
  const contentType = req.header.get("content-type") ?? "";
  if (contentType.startsWith("application/grpc-web")) return rewriteBody(res, rewriteGrpcWebTrailer);
  if (contentType.startsWith("application/grpc")) return withGrpcFallback(res);
  return res.status === 200 ? res : rewriteConnectError(res);
}

/** Gathers a (small, unary) body so it can be rewritten whole; Node frames the new length itself. */
async function rewriteBody(
  res: UniversalServerResponse,
  rewrite: (bytes: Buffer) => Uint8Array,
): Promise<UniversalServerResponse> {
  if (res.body === undefined) return res;
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const header = new Headers(res.header);
  header.delete("content-length");
  const body = rewrite(Buffer.concat(chunks));
  return {
    ...res,
    header,
    body: Readable.from([body]) as AsyncIterable<Uint8Array>,
  };
}

async function rewriteConnectError(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  let status = res.status;
  const rewritten = await rewriteBody(res, (bytes) => {
    let error: ConnectError;
    try {
      error = errorFromJsonBytes(bytes, undefined, new ConnectError("not a Connect error body"));
    } catch {
      return bytes;
    }
    const completed = withErrorInfo(error);
    if (completed === error) return bytes;
    status = codeToHttpStatus(completed.code);
    return errorToJsonBytes(completed, {});
  });
  return { ...rewritten, status };
}

/** Completes a gRPC status (in headers or trailers) with its ErrorInfo when it has none. */
function addStatusDetails(headers: Headers): void {
  const code = Number(headers.get("grpc-status") ?? "0");
  if (code === 0 || headers.has("grpc-status-details-bin")) return;
  const completed = withErrorInfo(new ConnectError(decodeURIComponent(headers.get("grpc-message") ?? ""), code));
  headers.set("grpc-status", String(completed.code));
  headers.set("grpc-message", encodeURIComponent(completed.rawMessage));
  headers.set("grpc-status-details-bin", grpcStatusDetails(completed));
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
      for (const line of frames
        .subarray(offset + 5)
        .toString("utf8")
        .split("\r\n")) {
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
