import { ServiceError } from "../errors/service-error.js";
import type { PlainRequest } from "./http-types.js";

/** The body was larger than MAX_REQUEST_BYTES; answered 413 rather than read to the end. */
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
export async function readBody(req: PlainRequest, limit: number): Promise<Buffer> {
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

/**
 * The body as a JSON object. Malformed JSON, or JSON that is not an object, is
 * VALIDATION_ERROR (422), as the guide answers it.
 */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new ServiceError("VALIDATION_ERROR", "the request body is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ServiceError("VALIDATION_ERROR", "the request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}
