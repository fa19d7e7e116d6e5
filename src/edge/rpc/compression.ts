import { promisify } from "node:util";
import zlib from "node:zlib";
import { malformed, ServiceError } from "../../errors/service-error.js";
import { tooLarge } from "../body.js";

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

const gzip: Compression = {
  name: "gzip",
  compress: (bytes) => gzipAsync(bytes),
  decompress: (bytes, maxBytes) => inflate(() => gunzipAsync(bytes, { maxOutputLength: maxBytes }), maxBytes),
};

const brotli: Compression = {
  name: "br",
  compress: (bytes) => brotliAsync(bytes),
  decompress: (bytes, maxBytes) => inflate(() => unbrotliAsync(bytes, { maxOutputLength: maxBytes }), maxBytes),
};

/** What the server speaks, in the order connect-node's own server is usually configured with. */
export const SUPPORTED_COMPRESSION: readonly Compression[] = [gzip, brotli];
const ACCEPTABLE = SUPPORTED_COMPRESSION.map((c) => c.name).join(",");

async function inflate(run: () => Promise<Buffer>, maxBytes: number): Promise<Uint8Array> {
  try {
    return await run();
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw tooLarge(maxBytes);
    throw malformed("the request could not be decompressed", err);
  }
}

export interface NegotiatedCompression {
  request: Compression | undefined;
  response: Compression | undefined;
}

/**
 * The compression of a request and of its answer, negotiated exactly as
 * connect-node negotiates it: the request's own encoding must be one the
 * server speaks (otherwise UNIMPLEMENTED, and the answer lists what it
 * speaks); the answer takes the first encoding of the client's accept list
 * the server speaks, or without a list, the request's own.
 */
export function negotiateCompression(
  requested: string | undefined,
  accepted: string | undefined,
): NegotiatedCompression {
  let request: Compression | undefined;
  if (requested !== undefined && requested !== "identity") {
    request = SUPPORTED_COMPRESSION.find((c) => c.name === requested);
    if (!request) {
      throw new ServiceError(
        "UNSUPPORTED_COMPRESSION",
        `unknown compression "${requested}": supported encodings are ${ACCEPTABLE}`,
      );
    }
  }
  if (accepted === undefined || accepted === "") return { request, response: request };
  for (const name of accepted.split(",")) {
    const found = SUPPORTED_COMPRESSION.find((c) => c.name === name.trim());
    if (found) return { request, response: found };
  }
  return { request, response: undefined };
}

/** The encodings the server speaks, for the accept-encoding header of an UNSUPPORTED_COMPRESSION answer. */
export const ACCEPTED_ENCODINGS = ACCEPTABLE;
