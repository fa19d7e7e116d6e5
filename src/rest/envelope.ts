import type { ErrorReason } from "../errors/service-error.js";
import { writeHead, type HeaderMap, type HttpResponse } from "../edge/http-types.js";

/**
 * The guide's response envelope, kept byte-compatible for teams that call the
 * REST routes: `{success: true, data}` (plus `total` for lists, or `message`
 * for deletes), and `{success: false, error, code}` for every failure.
 */
export type SuccessBody = { success: true; data: unknown; total?: number } | { success: true; message: string };

export interface ErrorBody {
  success: false;
  error: string;
  code: ErrorReason;
}

export interface RestResponse {
  status: number;
  body: SuccessBody | ErrorBody | object;
  headers?: HeaderMap;
}

export const success = (data: unknown, status = 200, headers?: HeaderMap): RestResponse => ({
  status,
  body: { success: true, data },
  headers,
});

export const failure = (status: number, code: ErrorReason, error: string, headers?: HeaderMap): RestResponse => ({
  status,
  body: { success: false, error, code },
  headers,
});

/** Writes a REST answer: the envelope as JSON, the edge's headers (rate limits, retry hints) with the route's own. */
export function sendEnvelope(res: HttpResponse, response: RestResponse, extraHeaders: HeaderMap = {}): void {
  if (res.headersSent) return;
  const payload = JSON.stringify(response.body);
  writeHead(res, response.status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(payload)),
    // Answers depend on the bearer token; no shared cache may keep them.
    "cache-control": "no-store",
    ...extraHeaders,
    ...response.headers,
  });
  res.end(payload);
}
