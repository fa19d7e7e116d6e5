import { expect } from "vitest";
import { expectMatchesOpenApi } from "./openapi-validator.js";

export interface RestAnswer {
  status: number;
  headers: Headers;
  /** The parsed JSON body. */
  body: any;
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
export async function rest(
  baseUrl: string,
  method: string,
  path: string,
  options: RestCallOptions = {},
): Promise<RestAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["content-type"] ??= "application/json";
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  }
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const answer: RestAnswer = { status: res.status, headers: res.headers, body: await res.json() };
  expectMatchesOpenApi(method, path, answer);
  return answer;
}

/** Asserts the guide's error envelope with this status and code, and returns the message. */
export function expectError(answer: RestAnswer, status: number, code: string): string {
  expect({ status: answer.status, body: answer.body }).toEqual({
    status,
    body: { success: false, error: expect.any(String), code },
  });
  return answer.body.error as string;
}
