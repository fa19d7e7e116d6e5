import { expect } from "vitest";
import type { ErrorReason } from "../../src/errors/service-error.js";
import { match } from "../helpers/matchers.js";
import { expectMatchesOpenApi } from "./openapi-validator.js";

/**
 * The guide's envelope as a client reads it, whichever of its shapes came back: `{success: true, data}` (plus
 * `total` for lists, or `message` for deletes) or `{success: false, error, code}`. `data` is what the caller
 * expects the route to answer.
 */
export interface RestBody<D = unknown> {
  success: boolean;
  data: D;
  total?: number;
  message?: string;
  error?: string;
  code?: ErrorReason;
}

export interface RestAnswer<D = unknown> {
  status: number;
  headers: Headers;
  /** The parsed JSON body. */
  body: RestBody<D>;
}

export interface RestCallOptions {
  token?: string;
  /** An object is sent as JSON; a string is sent as it is (for malformed bodies). */
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * One REST call with plain fetch, as a guide client makes it. Every answer is
 * checked against the served OpenAPI document for its route and status, so
 * each test also proves the document tells the truth.
 */
export async function rest<D = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  options: RestCallOptions = {},
): Promise<RestAnswer<D>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["content-type"] ??= "application/json";
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  }
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const answer: RestAnswer<D> = { status: res.status, headers: res.headers, body: (await res.json()) as RestBody<D> };
  expectMatchesOpenApi(method, path, answer);
  return answer;
}

/** Asserts the guide's error envelope with this status and code, and returns the message. */
export function expectError(answer: RestAnswer, status: number, code: string): string {
  expect({ status: answer.status, body: answer.body }).toEqual({
    status,
    body: { success: false, error: match.any(String), code },
  });
  return answer.body.error!;
}
