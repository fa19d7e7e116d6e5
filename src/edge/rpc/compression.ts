import { promisify } from "node:util";
import zlib from "node:zlib";
import { malformed, ServiceError } from "../../errors/service-error.js";

export interface Compression {
  readonly name: "gzip" | "br";
  compress(bytes: Uint8Array): Promise<Uint8Array>;
  /** Never inflates past maxBytes: a small bomb stays small (MESSAGE_TOO_LARGE). */
  decompress(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array>;
}

const gzipAsync = promisify(zlib.gzip);
const gunzipAsync = promisify(zlib.gunzip);
const brotliAsync = promisify(zlib.brotliCompress);
const unbrotliAsync = promisify(zlib.brotliDecompress);

/** As connect-node: answers this small are not worth compressing. */
export const COMPRESS_MIN_BYTES = 1024;

function decompressor(inflate: (bytes: Uint8Array, options: zlib.ZlibOptions) => Promise<Buffer>) {
  return async (bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> => {
    // As connect-node: there is nothing to inflate in an empty message (zlib would call it truncated).
    if (bytes.byteLength === 0) return bytes;
    try {
      return await inflate(bytes, { maxOutputLength: maxBytes });
    } catch (err) {
      if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new ServiceError(
          "MESSAGE_TOO_LARGE",
          `message is larger than configured readMaxBytes ${maxBytes} after decompression`,
        );
      }
      // connect-node's words; a body that does not inflate is the client's to fix, whatever zlib calls it.
      throw malformed("decompression failed", err);
    }
  };
}

const gzip: Compression = { name: "gzip", compress: (b) => gzipAsync(b), decompress: decompressor(gunzipAsync) };
const brotli: Compression = { name: "br", compress: (b) => brotliAsync(b), decompress: decompressor(unbrotliAsync) };

/** What the server speaks, in the order connect-node's own server is usually configured with. */
export const SUPPORTED_COMPRESSION: readonly Compression[] = [gzip, brotli];

/** The encodings the server speaks, for the accept-encoding header of an UNSUPPORTED_COMPRESSION answer. */
export const ACCEPTED_ENCODINGS = SUPPORTED_COMPRESSION.map((c) => c.name).join(",");

export interface NegotiatedCompression {
  request: Compression | undefined;
  response: Compression | undefined;
  /** The request's encoding is not one the server speaks: the call is refused with this. */
  error?: ServiceError;
}

/**
 * The compression of a request and of its answer, negotiated exactly as
 * connect-node negotiates it: the request's own encoding must be one the
 * server speaks (otherwise UNIMPLEMENTED, and the answer lists what it
 * speaks); the answer takes the first encoding of the client's accept list
 * the server speaks, or without a list, the request's own. The answer's
 * encoding is chosen even when the request is refused: a refusal is an answer too.
 */
export function negotiateCompression(
  requested: string | undefined,
  accepted: string | undefined,
): NegotiatedCompression {
  let request: Compression | undefined;
  let error: ServiceError | undefined;
  if (requested !== undefined && requested !== "identity") {
    request = SUPPORTED_COMPRESSION.find((c) => c.name === requested);
    if (!request) {
      error = new ServiceError(
        "UNSUPPORTED_COMPRESSION",
        `unknown compression "${requested}": supported encodings are ${ACCEPTED_ENCODINGS}`,
      );
    }
  }
  let response = request;
  if (accepted !== undefined && accepted !== "") {
    response = undefined;
    for (const name of accepted.split(",")) {
      response = SUPPORTED_COMPRESSION.find((c) => c.name === name.trim());
      if (response) break;
    }
  }
  return error ? { request, response, error } : { request, response };
}
