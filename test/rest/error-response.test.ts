import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ServiceError, type ErrorReason } from "../../src/errors/service-error.js";
import { errorToRest } from "../../src/rest/error-response.js";
import { BodyTooLargeError } from "../../src/server/read-body.js";
import { match } from "../helpers/matchers.js";

/** A real pino logger writing into an array, to see what would be logged. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: "trace" }, sink), lines };
}

const ctx = { method: "GetDashboard" };

describe("errorToRest: the guide's statuses for every reason", () => {
  const cases: [ErrorReason, number][] = [
    ["UNAUTHORIZED", 401],
    ["FORBIDDEN", 403],
    ["NOT_FOUND", 404],
    ["VALIDATION_ERROR", 422],
    ["ALREADY_EXISTS", 409],
    ["RATE_LIMITED", 429],
    ["UNAVAILABLE", 503],
  ];
  for (const [reason, status] of cases) {
    it(`${reason} → ${status} with the message and code`, () => {
      const { log } = capturingLogger();
      const res = errorToRest(new ServiceError(reason, `because ${reason}`), log, ctx);
      expect(res.status).toBe(status);
      expect(res.body).toEqual({ success: false, error: `because ${reason}`, code: reason });
    });
  }

  it("RATE_LIMITED carries Retry-After in whole seconds, rounded up, and the limiter's own headers", () => {
    const { log } = capturingLogger();
    const res = errorToRest(new ServiceError("RATE_LIMITED", "slow down", { retryAfterMs: 1500 }), log, ctx);
    expect(res.headers).toMatchObject({ "retry-after": "2" });
    const withHeaders = errorToRest(
      new ServiceError("RATE_LIMITED", "slow down", {
        retryAfterMs: 1500,
        headers: { "retry-after": "7", "ratelimit-remaining": "0" },
      }),
      log,
      ctx,
    );
    expect(withHeaders.headers).toMatchObject({ "retry-after": "7", "ratelimit-remaining": "0" });
  });

  it("UNAUTHORIZED tells the client which scheme to use", () => {
    const { log } = capturingLogger();
    expect(errorToRest(new ServiceError("UNAUTHORIZED", "no"), log, ctx).headers).toMatchObject({
      "www-authenticate": match.stringMatching(/^Bearer/),
    });
  });

  it("field violations are named as the REST parameter when the route says so", () => {
    const { log } = capturingLogger();
    const err = new ServiceError("VALIDATION_ERROR", "page_size: must be at least 0", {
      fieldViolations: [{ field: "page_size", description: "must be at least 0" }],
    });
    expect(errorToRest(err, log, { method: "ListDashboards", fieldNames: { page_size: "limit" } }).body).toMatchObject({
      error: "limit: must be at least 0",
    });
  });

  it("an oversized body is 413 VALIDATION_ERROR", () => {
    const { log } = capturingLogger();
    const res = errorToRest(new BodyTooLargeError(1024), log, ctx);
    expect(res).toMatchObject({ status: 413, body: { code: "VALIDATION_ERROR", success: false } });
  });
});

describe("errorToRest: failures that are not the caller's", () => {
  it("an unexpected error is a generic 500 SERVER_ERROR; its cause is logged, never sent", () => {
    const { log, lines } = capturingLogger();
    const cause = Object.assign(new Error('relation "dashboards" does not exist: SELECT id FROM dashboards'), {
      code: "42P01",
    });
    const res = errorToRest(cause, log, ctx);
    expect(res).toEqual({
      status: 500,
      body: { success: false, error: "internal server error", code: "SERVER_ERROR" },
      headers: undefined,
    });
    expect(JSON.stringify(res)).not.toMatch(/SELECT|relation|at /);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 50,
      method: "GetDashboard",
      err: { message: match.stringContaining("SELECT id") },
    });
  });

  it("a SERVER_ERROR raised by the domain is also generic outside and logged inside", () => {
    const { log, lines } = capturingLogger();
    const res = errorToRest(new ServiceError("SERVER_ERROR", "secret detail"), log, ctx);
    expect(res.body).toEqual({ success: false, error: "internal server error", code: "SERVER_ERROR" });
    expect(lines).toHaveLength(1);
  });

  it("a transient database error is 503 UNAVAILABLE with Retry-After, not a 500", () => {
    const { log, lines } = capturingLogger();
    for (const err of [
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }),
      Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }),
      new Error("Connection terminated unexpectedly"),
    ]) {
      const res = errorToRest(err, log, ctx);
      expect(res.status).toBe(503);
      expect(res.body).toEqual({
        success: false,
        error: "the service is temporarily unavailable, retry later",
        code: "UNAVAILABLE",
      });
      expect(res.headers).toEqual({ "retry-after": "1" });
    }
    expect(lines.every((l) => l.level === 40)).toBe(true);
  });
});
