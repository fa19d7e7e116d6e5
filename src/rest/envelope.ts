import type { OutgoingHttpHeaders } from "node:http";
import type { ErrorReason } from "../errors/service-error.js";
import type { PlainResponse } from "./http-types.js";

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
  headers?: OutgoingHttpHeaders;
}

export const success = (data: unknown, status = 200, headers?: OutgoingHttpHeaders): RestResponse => ({
  status,
  body: { success: true, data },
  headers,
});

export const failure = (
  status: number,
  code: ErrorReason,
  error: string,
  headers?: OutgoingHttpHeaders,
): RestResponse => ({
  status,
  body: { success: false, error, code },
  headers,
});

/** Writes a JSON response; HTTP/1.1 and HTTP/2 responses share this much of their API. */
export function sendJson(res: PlainResponse, response: RestResponse, extraHeaders: OutgoingHttpHeaders = {}): void {
  const payload = JSON.stringify(response.body);
  const out = res as unknown as {
    headersSent: boolean;
    writeHead(status: number, headers: OutgoingHttpHeaders): unknown;
    end(chunk?: string): unknown;
  };
  if (out.headersSent) return;
  out.writeHead(response.status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    // Answers depend on the bearer token; no shared cache may keep them.
    "cache-control": "no-store",
    ...extraHeaders,
    ...response.headers,
  });
  out.end(payload);
}
