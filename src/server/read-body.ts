import type { Readable } from "node:stream";
import { ServiceError } from "../errors/service-error.js";

/** The body was larger than MAX_REQUEST_BYTES, refused before it was read to the end (REST answers 413). */
export class BodyTooLargeError extends ServiceError {
  constructor(readonly limit: number) {
    super("VALIDATION_ERROR", `the request body exceeds ${limit} bytes`);
  }
}

/**
 * Reads a request body, refusing it as soon as it passes `limit` bytes (by its
 * Content-Length when declared, else while streaming) so an oversized body is
 * never buffered whole.
 */
export async function readBody(
  req: Readable & { headers: Record<string, string | string[] | undefined> },
  limit: number,
): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLargeError(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new BodyTooLargeError(limit);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw err;
    // The client went away or broke its framing: its fault, and not a database outage (ECONNRESET would look like one).
    throw new ServiceError("VALIDATION_ERROR", "the request body could not be read", { cause: err });
  }
  return Buffer.concat(chunks);
}
