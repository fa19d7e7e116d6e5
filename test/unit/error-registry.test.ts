import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { answerHeaders } from "../../src/edge/answer-headers.js";
import { connectErrorJson, grpcStatusHeaders } from "../../src/edge/rpc/status-wire.js";
import { errorDetails, toServiceError } from "../../src/errors/details.js";
import { REASONS, type ErrorReason } from "../../src/errors/registry.js";
import { ServiceError } from "../../src/errors/service-error.js";
import { rateLimited } from "../../src/ratelimit/headers.js";
import { restErrorResponse } from "../../src/rest/error-response.js";

describe("the error registry", () => {
  it("keeps the original guide's REST statuses and codes for its reasons", () => {
    const guide: [ErrorReason, number, Code][] = [
      ["UNAUTHORIZED", 401, Code.Unauthenticated],
      ["FORBIDDEN", 403, Code.PermissionDenied],
      ["NOT_FOUND", 404, Code.NotFound],
      ["VALIDATION_ERROR", 422, Code.InvalidArgument],
      ["ALREADY_EXISTS", 409, Code.AlreadyExists],
      ["RATE_LIMITED", 429, Code.ResourceExhausted],
      ["UNAVAILABLE", 503, Code.Unavailable],
      ["SERVER_ERROR", 500, Code.Internal],
    ];
    for (const [reason, status, code] of guide) {
      const response = restErrorResponse(new ServiceError(reason, `because ${reason}`));
      expect(response.status, reason).toBe(status);
      expect(response.body).toEqual({ success: false, error: `because ${reason}`, code: reason });
      expect(REASONS[reason].code).toBe(code);
    }
  });

  it("names the auth scheme on a REST 401, and field violations as the route names its fields", () => {
    expect(restErrorResponse(new ServiceError("UNAUTHORIZED", "no")).headers).toEqual({
      "www-authenticate": 'Bearer realm="dashboard-service"',
    });
    const err = new ServiceError("VALIDATION_ERROR", "page_size: must be at least 0", {
      fieldViolations: [{ field: "page_size", description: "must be at least 0" }],
    });
    expect(restErrorResponse(err, (f) => (f === "page_size" ? "limit" : f)).body).toMatchObject({
      error: "limit: must be at least 0",
    });
  });

  it("gives every error exactly one ErrorInfo, a BadRequest for bad fields, and a RetryInfo when retrying can help", () => {
    for (const reason of Object.keys(REASONS) as ErrorReason[]) {
      const details = errorDetails(new ServiceError(reason, "x"));
      const infos = details.filter((d) => d.desc === ErrorInfoSchema);
      expect(infos, reason).toHaveLength(1);
      expect(
        details.some((d) => d.desc === RetryInfoSchema),
        reason,
      ).toBe(REASONS[reason].retryable);
    }
    const bad = errorDetails(
      new ServiceError("VALIDATION_ERROR", "x", { fieldViolations: [{ field: "name", description: "is empty" }] }),
    );
    expect(bad.map((d) => d.desc.typeName)).toEqual(["google.rpc.ErrorInfo", "google.rpc.BadRequest"]);
    expect(bad.find((d) => d.desc === BadRequestSchema)).toBeDefined();
  });

  it("never lets a SERVER_ERROR's message out, whoever raised it, nor an unexpected error's", () => {
    const domain = toServiceError(new ServiceError("SERVER_ERROR", "secret detail: SELECT * FROM keys"));
    expect(domain.message).toBe("internal server error");
    const thrown = toServiceError(new Error('relation "dashboards" does not exist'));
    expect(thrown).toMatchObject({ reason: "SERVER_ERROR", message: "internal server error" });
    for (const err of [domain, thrown]) {
      expect(JSON.stringify(connectErrorJson(err))).not.toMatch(/SELECT|relation/);
      expect(JSON.stringify(grpcStatusHeaders(err))).not.toMatch(/SELECT|relation/);
    }
  });

  it("renders a lone surrogate in a message as well-formed text instead of throwing", () => {
    const err = new ServiceError("MALFORMED_REQUEST", "bad \uD800 input");
    expect(() => grpcStatusHeaders(err)).not.toThrow();
    expect(decodeURIComponent(grpcStatusHeaders(err)["grpc-message"]!)).toBe("bad \uFFFD input");
    expect(JSON.stringify(connectErrorJson(err))).toContain("bad \uFFFD input");
  });
});

describe("the headers every answer carries", () => {
  it("derive Retry-After from the error, in whole seconds rounded up, at least one", () => {
    const state = { rateLimit: undefined, refused: false };
    expect(answerHeaders(state, new ServiceError("UNAVAILABLE", "x", { retryAfterMs: 1500 }))).toEqual({
      "retry-after": "2",
    });
    expect(answerHeaders(state, new ServiceError("UNAVAILABLE", "x", { retryAfterMs: 10 }))).toEqual({
      "retry-after": "1",
    });
    expect(answerHeaders(state, new ServiceError("NOT_FOUND", "x"))).toEqual({});
  });

  it("report the budget on refusals and on successes alike, from the typed outcome", () => {
    const outcome = { policy: "default", limit: 600, remaining: 0, resetMs: 2_500, windowSeconds: 60 };
    const refusal = rateLimited(outcome);
    expect(refusal.details.metadata).toEqual({ policy: "default" });
    expect(answerHeaders({ rateLimit: outcome, refused: true }, refusal)).toEqual({
      "ratelimit-limit": "600",
      "ratelimit-remaining": "0",
      "ratelimit-reset": "3",
      "ratelimit-policy": "600;w=60",
      "retry-after": "3",
    });
    expect(answerHeaders({ rateLimit: { ...outcome, remaining: 5 }, refused: false }, undefined)).toEqual({
      "ratelimit-limit": "600",
      "ratelimit-remaining": "5",
      "ratelimit-reset": "3",
      "ratelimit-policy": "600;w=60",
    });
  });
});
