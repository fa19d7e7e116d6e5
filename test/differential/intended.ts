import { expect } from "vitest";
import { match } from "../helpers/matchers.js";
import type { Answer, Protocol, WireKind } from "./harness.js";
import { decodeStatusDetails, envelope, splitFrames } from "./harness.js";

/**
 * The differences between our edge and connect-node that are INTENDED, each
 * as a function from our answer to the answer connect-node gives for the
 * same request. Each one first asserts that our answer has exactly the
 * documented form (so a change on our side fails here), then undoes exactly
 * that difference and nothing more; the result must then equal the
 * reference's answer byte for byte. The table of what they are, and which
 * requests they apply to, is in edge-vs-connect-node.test.ts. Two of them
 * (#5b, #6) cannot be undone (ours answers another error than connect-node's),
 * and are not here: the cases they apply to assert both answers explicitly.
 */
export type Intended =
  /** (1) Errors the framework raises carry one ErrorInfo with the edge's reason; connect-node's carry no details. */
  | { kind: "edge-error-info"; reason: EdgeReason }
  /** (2) An undecodable binary message is INVALID_ARGUMENT in ours, INTERNAL in connect-node. */
  | { kind: "binary-decode-internal" }
  /** (3) 415/405/505: ours answers with a Connect error JSON body; connect-node with an empty body. */
  | { kind: "unspoken-error-body"; reason: EdgeReason }
  /** (4) An unknown method path: ours answers in the request's protocol; connect-node's adapter with a bare 404. */
  | { kind: "unknown-path-in-protocol" }
  /** (7) A compressed stream cut short is INVALID_ARGUMENT in ours, INTERNAL in connect-node. */
  | { kind: "truncated-stream-internal" }
  /**
   * (5a) A call with a valid token refused for its body: ours checked the credential and charged the budget
   * before reading the body, so its answer carries the budget's four rate-limit headers (with the values
   * given here); connect-node decodes first, and its answer has none.
   */
  | { kind: "charged-before-read"; budget: RateLimitBudget };

export type EdgeReason =
  | "MALFORMED_REQUEST"
  | "MESSAGE_TOO_LARGE"
  | "WRONG_MESSAGE_COUNT"
  | "UNDECLARED_COMPRESSION"
  | "UNSUPPORTED_COMPRESSION"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "METHOD_NOT_ALLOWED";

/** The four rate-limit headers of a counted call, exactly as the caller's budget implies them. */
export interface RateLimitBudget {
  "ratelimit-limit": string;
  "ratelimit-remaining": string;
  "ratelimit-reset": string;
  "ratelimit-policy": string;
}

export const RATE_LIMIT_HEADERS = [
  "ratelimit-limit",
  "ratelimit-remaining",
  "ratelimit-reset",
  "ratelimit-policy",
] as const satisfies readonly (keyof RateLimitBudget)[];

const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";

/** What connect-node is expected to answer, from our answer and the differences intended for this request. */
export function undoIntended(ours: Answer, p: Protocol, intended: readonly Intended[]): Answer {
  let answer = ours;
  for (const i of intended) {
    switch (i.kind) {
      case "edge-error-info":
        answer = withoutErrorInfo(answer, p.kind, i.reason);
        break;
      case "binary-decode-internal":
      case "truncated-stream-internal":
        answer = invalidArgumentAsInternal(answer, p.kind);
        break;
      case "unspoken-error-body":
        answer = withoutUnspokenBody(answer, p, i.reason);
        break;
      case "unknown-path-in-protocol":
        answer = asBare404(answer, p);
        break;
      case "charged-before-read":
        answer = withoutRateLimitHeaders(answer, p.kind, i.budget);
        break;
    }
  }
  return answer;
}

/**
 * The exact ErrorInfo (and nothing else) the edge adds to its own refusals,
 * in a google.rpc.Status that otherwise repeats grpc-status and grpc-message
 * (so dropping the header, as connect-node sends none without details, loses
 * nothing but the ErrorInfo).
 */
function expectOnlyEdgeErrorInfo(
  status: Record<string, string>,
  reason: EdgeReason | "ROUTE_NOT_FOUND",
  where: string,
): void {
  const statusBin = status["grpc-status-details-bin"];
  expect(statusBin, `${where}: grpc-status-details-bin`).toBeDefined();
  expect(decodeStatusDetails(statusBin!), `${where}: the details are exactly one ErrorInfo`).toEqual({
    code: Number(status["grpc-status"]),
    message: decodeURIComponent(status["grpc-message"] ?? ""),
    details: [{ [ERROR_INFO]: { reason, domain: "dashboard-service" } }],
  });
}

function withoutErrorInfo(answer: Answer, kind: WireKind, reason: EdgeReason): Answer {
  if (kind === "grpc") {
    const where = answer.trailers["grpc-status-details-bin"] !== undefined ? "trailers" : "headers";
    expectOnlyEdgeErrorInfo(answer[where], reason, `gRPC ${where}`);
    const stripped = { ...answer[where] };
    delete stripped["grpc-status-details-bin"];
    return { ...answer, [where]: stripped };
  }
  if (kind === "grpc-web") {
    return editTrailerFrame(answer, (lines) => {
      expectOnlyEdgeErrorInfo(Object.fromEntries(lines), reason, "gRPC-Web trailer frame");
      return lines.filter(([name]) => name !== "grpc-status-details-bin");
    });
  }
  return editConnectErrorJson(answer, (json) => {
    expect(json.details, "Connect error JSON: the details are exactly one ErrorInfo").toEqual([
      { type: "google.rpc.ErrorInfo", debug: { reason, domain: "dashboard-service" }, value: match.any(String) },
    ]);
    const rest = { ...json };
    delete rest.details;
    return rest;
  });
}

function invalidArgumentAsInternal(answer: Answer, kind: WireKind): Answer {
  if (kind === "grpc") {
    const where = answer.trailers["grpc-status"] !== undefined ? "trailers" : "headers";
    expect(answer[where]["grpc-status"], "ours: INVALID_ARGUMENT").toBe("3");
    return { ...answer, [where]: { ...answer[where], "grpc-status": "13" } };
  }
  if (kind === "grpc-web") {
    return editTrailerFrame(answer, (lines) => {
      expect(lines.find(([n]) => n === "grpc-status")?.[1], "ours: INVALID_ARGUMENT").toBe("3");
      return lines.map(([n, v]) => [n, n === "grpc-status" ? "13" : v]);
    });
  }
  expect(answer.status, "ours: HTTP 400").toBe(400);
  const edited = editConnectErrorJson(answer, (json) => {
    expect(json.code, "ours: invalid_argument").toBe("invalid_argument");
    return { ...json, code: "internal" };
  });
  return { ...edited, status: 500 };
}

function withoutUnspokenBody(answer: Answer, p: Protocol, reason: EdgeReason): Answer {
  expect(answer.headers["content-type"], "ours: a Connect error JSON body").toBe("application/json");
  const json = JSON.parse(answer.body.toString("utf8")) as Record<string, unknown>;
  expect(json, "ours: the error JSON").toEqual({
    code: "invalid_argument",
    message: match.any(String),
    details: [
      { type: "google.rpc.ErrorInfo", debug: { reason, domain: "dashboard-service" }, value: match.any(String) },
    ],
  });
  const headers = { ...answer.headers };
  delete headers["content-type"];
  delete headers["content-length"];
  // What Node's HTTP/1.1 server frames an answer with when writeHead() comes before an end() without a body.
  if (p.http === "1.1") headers["transfer-encoding"] = "chunked";
  return { ...answer, headers, body: Buffer.alloc(0) };
}

function asBare404(answer: Answer, p: Protocol): Answer {
  const routeMessage = match.stringMatching(/^no route for \//);
  const enveloped = p.kind === "grpc" || p.kind === "grpc-web";
  expect(answer.status, enveloped ? "ours: gRPC answers HTTP 200" : "ours: Connect answers 404").toBe(
    enveloped ? 200 : 404,
  );
  if (p.kind === "grpc") {
    // Trailers-Only: the status, its message and its details in the one header block; no body, no trailers.
    expect(answer.trailers, "ours: Trailers-Only, no trailers").toEqual({});
    expect(answer.body.length, "ours: Trailers-Only, no body").toBe(0);
    expect(Object.keys(answer.headers).sort(), "ours: the Trailers-Only header block").toEqual([
      "content-type",
      "grpc-message",
      "grpc-status",
      "grpc-status-details-bin",
      "x-request-id",
    ]);
    expect(answer.headers["content-type"], "ours: a gRPC content type").toMatch(/^application\/grpc(\+|$)/);
    expect(answer.headers["grpc-status"], "ours: UNIMPLEMENTED").toBe("12");
    expect(decodeURIComponent(answer.headers["grpc-message"]!), "ours: the message").toEqual(routeMessage);
    expectOnlyEdgeErrorInfo(answer.headers, "ROUTE_NOT_FOUND", "ours: gRPC Trailers-Only headers");
  } else if (p.kind === "grpc-web") {
    const trailers = parseTrailerFrame(answer.body);
    expect(trailers["grpc-status"], "ours: UNIMPLEMENTED").toBe("12");
    expectOnlyRouteNotFound(trailers["grpc-status-details-bin"]);
  } else {
    expect(JSON.parse(answer.body.toString("utf8")), "ours: the error JSON, unimplemented").toEqual({
      code: "unimplemented",
      message: routeMessage,
      details: [
        {
          type: "google.rpc.ErrorInfo",
          debug: { reason: "ROUTE_NOT_FOUND", domain: "dashboard-service" },
          value: match.any(String),
        },
      ],
    });
  }
  const headers: Record<string, string> = {};
  if (answer.headers["x-request-id"] !== undefined) headers["x-request-id"] = answer.headers["x-request-id"];
  if (p.http === "1.1") headers["transfer-encoding"] = "chunked";
  return { status: 404, headers, trailers: {}, body: Buffer.alloc(0), broken: answer.broken };
}

function expectOnlyRouteNotFound(statusBin: string | undefined): void {
  expect(statusBin, "ours: grpc-status-details-bin").toBeDefined();
  const status = decodeStatusDetails(statusBin!) as { details: unknown[] };
  expect(status.details).toEqual([{ [ERROR_INFO]: { reason: "ROUTE_NOT_FOUND", domain: "dashboard-service" } }]);
}

/**
 * The budget's four rate-limit headers, where the protocol puts a refusal's metadata (gRPC: trailers; gRPC-Web:
 * the trailer frame; Connect: headers) and nowhere else, with exactly the budget's values; removed, and nothing else.
 */
function withoutRateLimitHeaders(answer: Answer, kind: WireKind, budget: RateLimitBudget): Answer {
  const names: readonly string[] = RATE_LIMIT_HEADERS;
  const pick = (h: Record<string, string>) => Object.fromEntries(names.filter((n) => n in h).map((n) => [n, h[n]]));
  const drop = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).filter(([n]) => !names.includes(n)));
  if (kind === "grpc") {
    expect(pick(answer.trailers), "ours: the budget's rate-limit headers, in the trailers").toEqual(budget);
    expect(pick(answer.headers), "ours: none of them in the headers").toEqual({});
    return { ...answer, trailers: drop(answer.trailers) };
  }
  if (kind === "grpc-web") {
    expect(pick(answer.headers), "ours: none of them in the headers").toEqual({});
    return editTrailerFrame(answer, (lines) => {
      expect(pick(Object.fromEntries(lines)), "ours: the budget's rate-limit headers, in the trailer frame").toEqual(
        budget,
      );
      expect(
        lines.filter(([n]) => names.includes(n)).length,
        "ours: each rate-limit header once in the trailer frame",
      ).toBe(names.length);
      return lines.filter(([n]) => !names.includes(n));
    });
  }
  expect(pick(answer.headers), "ours: the budget's rate-limit headers, as headers").toEqual(budget);
  expect(pick(answer.trailers), "ours: none of them as trailers").toEqual({});
  return { ...answer, headers: drop(answer.headers) };
}

// ---------------------------------------------------------------------------------------------------------------

type Lines = [string, string][];

function parseLines(text: string): Lines {
  return text
    .split("\r\n")
    .filter((l) => l !== "")
    .map((l) => {
      const colon = l.indexOf(": ");
      return [l.slice(0, colon), l.slice(colon + 2)];
    });
}

function parseTrailerFrame(body: Buffer): Record<string, string> {
  const frame = splitFrames(body).frames.find((f) => f.flags === 0x80);
  expect(frame, "ours: an uncompressed gRPC-Web trailer frame").toBeDefined();
  return Object.fromEntries(parseLines(frame!.data.toString("utf8")));
}

/** Rewrites the (uncompressed) trailer frame of a gRPC-Web body, line by line, keeping every other frame as it is. */
function editTrailerFrame(answer: Answer, edit: (lines: Lines) => Lines): Answer {
  const { frames, rest } = splitFrames(answer.body);
  expect(rest.length, "ours: whole frames").toBe(0);
  const last = frames.at(-1);
  expect(last?.flags, "ours: the last frame is an uncompressed trailer frame").toBe(0x80);
  const text = last!.data.toString("utf8");
  const lines = parseLines(text);
  expect(lines.map(([n, v]) => `${n}: ${v}\r\n`).join(""), "ours: the trailer frame is well formed").toBe(text);
  const edited = Buffer.from(
    edit(lines)
      .map(([n, v]) => `${n}: ${v}\r\n`)
      .join(""),
  );
  const kept = frames.slice(0, -1).map((f) => envelope(f.data, f.flags));
  return { ...answer, body: Buffer.concat([...kept, envelope(edited, 0x80)]) };
}

/** Rewrites the Connect error JSON body (compact, uncompressed), keeping content-length right. */
function editConnectErrorJson(
  answer: Answer,
  edit: (json: Record<string, unknown>) => Record<string, unknown>,
): Answer {
  expect(answer.headers["content-encoding"], "ours: an uncompressed error body").toBeUndefined();
  const text = answer.body.toString("utf8");
  const json = JSON.parse(text) as Record<string, unknown>;
  expect(JSON.stringify(json), "ours: compact JSON").toBe(text);
  const body = Buffer.from(JSON.stringify(edit(json)));
  const headers = { ...answer.headers };
  if (headers["content-length"] !== undefined) headers["content-length"] = String(body.byteLength);
  return { ...answer, headers, body };
}
