import { brotliCompressSync, gzipSync } from "node:zlib";
import { toJson, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { createConnectTransport } from "@connectrpc/connect-node";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  CreateDashboardRequestSchema,
  CreateDashboardResponseSchema,
  CreateIframeTokenRequestSchema,
  CreateIframeTokenResponseSchema,
  GetDashboardRequestSchema,
  ListAuditEventsRequestSchema,
  ListDashboardsRequestSchema,
  ListDashboardsResponseSchema,
  VerifyIframeTokenRequestSchema,
} from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { dashboardClient } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken, type CallerClaims } from "../helpers/tokens.js";
import {
  CONNECT_POST_PROTOCOLS,
  ENVELOPED_PROTOCOLS,
  POST_PROTOCOLS,
  PROTOCOLS,
  RawClient,
  envelope,
  errorOf,
  grpcWebTrailers,
  messageOf,
  rpcRequest,
  splitFrames,
  view,
  type Answer,
  type Protocol,
  type RawRequest,
} from "./harness.js";
import { RATE_LIMIT_HEADERS, undoIntended, type EdgeReason, type Intended, type RateLimitBudget } from "./intended.js";
import { startReferenceServer, type ReferenceServer } from "./reference-server.js";

/**
 * Differential test of the edge (src/edge/, our own gRPC, gRPC-Web and
 * Connect implementation) against connect-node 2.1.2's connectNodeAdapter,
 * the reference implementation of those protocols. Both serve the same
 * DashboardService implementation over the same database (see
 * reference-server.ts); every request below is sent, as the same raw bytes,
 * to both, and their answers are compared byte for byte: status, headers,
 * trailers and body. Only transport noise (date, connection, keep-alive) is
 * dropped; nothing else is normalised except where a case says so (answers
 * that carry generated ids and times).
 *
 * INTENDED DIFFERENCES, and only these, are allowed. Each is undone by one
 * function of intended.ts, which first asserts that our answer has exactly the
 * documented form, then turns it into what connect-node answers; the result
 * must equal connect-node's answer byte for byte. A case names the ones that
 * apply to it (the INTENDED entries below), and no case names any other.
 *
 *  #  | where                                  | ours                                     | connect-node
 * ----+----------------------------------------+------------------------------------------+----------------------------
 *  1  | errors the framework raises: decode,   | exactly one ErrorInfo, domain            | no details: no
 *     | framing, size, message count, timeout  | "dashboard-service", reason the edge's   | grpc-status-details-bin,
 *     | header, compression, 415/405           | (MALFORMED_REQUEST, MESSAGE_TOO_LARGE,   | no "details" in the JSON
 *     |                                        | WRONG_MESSAGE_COUNT,                     |
 *     |                                        | UNDECLARED_COMPRESSION,                  |
 *     |                                        | UNSUPPORTED_COMPRESSION,                 |
 *     |                                        | UNSUPPORTED_MEDIA_TYPE,                  |
 *     |                                        | METHOD_NOT_ALLOWED)                      |
 *  2  | a binary message that does not decode  | INVALID_ARGUMENT (Connect: 400)          | INTERNAL (Connect: 500)
 *  3  | 415, 405, 505                          | the Connect error JSON as the body       | an empty body
 *     |                                        | (content-type application/json)          | (no content-type)
 *  4  | a path that names no method            | an answer in the request's protocol:     | a bare 404, empty body
 *     |                                        | gRPC Trailers-Only (grpc-status 12, its  |
 *     |                                        | message and details in the one header    |
 *     |                                        | block; no body, no trailers); gRPC-Web   |
 *     |                                        | grpc-status 12 in the trailer frame;     |
 *     |                                        | Connect 404 with the error JSON          |
 *     |                                        | (unimplemented)                          |
 *  5  | the credential is checked and the      |                                          |
 *     | budget charged BEFORE the body is read |                                          |
 *     | (required: an unauthenticated client   |                                          |
 *     | never makes the server read its body): |                                          |
 *     | (a) a call with a valid token refused  | the four rate-limit headers              | none: it decoded first, and
 *     |     for its body (decode, framing,     | (ratelimit-limit, -remaining, -reset,    | the call was never counted
 *     |     size, decompression, message       | -policy; gRPC: trailers, gRPC-Web: the   |
 *     |     count, undeclared compression)     | trailer frame, Connect: headers), the    |
 *     |                                        | call counted against the budget          |
 *     | (b) a call without a token whose body  | UNAUTHENTICATED (reason UNAUTHORIZED),   | the decode error
 *     |     does not decode                    | the body never read                      |
 *  6  | a Connect GET whose message is not     | 400 invalid_argument, MALFORMED_REQUEST, | 500 internal, "internal
 *     | valid base64 (base64=1)                | "the message query parameter is not      | error" (its base64 failure
 *     |                                        | valid base64"                            | escapes as an internal error)
 *  7  | a compressed message whose stream is   | INVALID_ARGUMENT (Connect: 400): the     | INTERNAL (Connect: 500), as
 *     | cut short (zlib's Z_BUF_ERROR)         | client sent bytes that do not inflate,   | it answers any zlib error
 *     |                                        | as with any other undecodable body       | but an unknown format
 *
 * 5b and 6 cannot be undone into connect-node's answer (ours answers a different error, for a reason connect-node
 * never gets to, or with information connect-node's answer has lost): those cases assert both answers explicitly.
 * Any other difference is a bug in the edge, and fails here.
 */
const INTENDED = {
  edgeErrorInfo: (reason: Extract<Intended, { kind: "edge-error-info" }>["reason"]): Intended => ({
    kind: "edge-error-info",
    reason,
  }),
  binaryDecodeInternal: { kind: "binary-decode-internal" } as Intended,
  unspokenErrorBody: (reason: "UNSUPPORTED_MEDIA_TYPE" | "METHOD_NOT_ALLOWED"): Intended => ({
    kind: "unspoken-error-body",
    reason,
  }),
  unknownPathInProtocol: { kind: "unknown-path-in-protocol" } as Intended,
  truncatedStreamInternal: { kind: "truncated-stream-internal" } as Intended,
  /** #5a, for a caller whose budget stood at `budget` once this call was counted. */
  chargedBeforeRead: (budget: RateLimitBudget): Intended => ({ kind: "charged-before-read", budget }),
} as const;

/** Small limits, so size refusals and rate limits are cheap to reach (the same configuration serves both). */
const MAX_REQUEST_BYTES = 4096;
const CALLS_PER_MINUTE = 3;
const READ_ORG = "diff-read";
const WRITE_ORG = "diff-write";
const ORIGIN = "https://app.example.com";
const DASHBOARDS = 10;

let server: TestServer;
let reference: ReferenceServer;
const raw = new RawClient();
let iframeToken: string;
let writeDashboardId: string;

let subjects = 0;
/**
 * A caller nobody has called as yet: both servers then hold it in the same
 * rate-limit state (each server has its own budgets), so the rate-limit
 * headers of the two answers can be compared exactly.
 */
const freshCaller = (claims: Partial<CallerClaims> = {}) =>
  callerToken({ org: READ_ORG, admin: true, sub: `caller-${++subjects}`, ...claims });

/** A caller's budget once `calls` of its calls have been counted (all within the first window). */
const budgetAfter = (calls: number): RateLimitBudget => ({
  "ratelimit-limit": String(CALLS_PER_MINUTE),
  "ratelimit-remaining": String(CALLS_PER_MINUTE - calls),
  "ratelimit-reset": "60",
  "ratelimit-policy": `${CALLS_PER_MINUTE};w=60`,
});
/** #5a for a fresh caller's first call: it was counted, and the budget says so. */
const CHARGED = INTENDED.chargedBeforeRead(budgetAfter(1));

beforeAll(async () => {
  server = await startTestServer({
    MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
    RATE_LIMIT_DEFAULT_PER_MINUTE: String(CALLS_PER_MINUTE),
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: String(CALLS_PER_MINUTE),
    CORS_ALLOWED_ORIGINS: ORIGIN,
  });
  // The data every read returns: enough dashboards for a page well above 1 KiB, two minted tokens.
  const client = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
  const ids: string[] = [];
  for (let i = 0; i < DASHBOARDS; i++) {
    const { dashboard } = await client.createDashboard(
      {
        tenantId: `t-${String(i).padStart(2, "0")}`,
        workspaceId: "ws-1",
        name: `Regional sales ${i}`,
        description: `Revenue, margin and pipeline by region, for tenant number ${i}`,
        allowedOrigins: [ORIGIN],
      },
      bearer(await freshCaller()),
    );
    ids.push(dashboard!.id);
  }
  for (let i = 0; i < 2; i++) {
    const minted = await client.createIframeToken(
      { tenantId: "t-00", workspaceId: "ws-1", dashboardId: ids[0]!, origin: ORIGIN },
      bearer(await freshCaller()),
    );
    iframeToken = minted.token;
  }
  const { dashboard } = await client.createDashboard(
    { tenantId: "w-base", workspaceId: "ws-1", name: "Writes" },
    bearer(await freshCaller({ org: WRITE_ORG })),
  );
  writeDashboardId = dashboard!.id;
  reference = await startReferenceServer(server.config, pino({ level: "silent" }));
});

afterAll(async () => {
  raw.close();
  await reference?.stop();
  await server?.stop();
});

/** The same request to both servers, ours first. */
async function both(req: RawRequest): Promise<{ ours: Answer; theirs: Answer }> {
  const ours = await raw.send(server.baseUrl, req);
  const theirs = await raw.send(reference.baseUrl, req);
  return { ours, theirs };
}

/** Byte for byte, once the differences intended for this request (and only those) are undone. */
function expectSame(
  p: Protocol,
  req: RawRequest,
  answers: { ours: Answer; theirs: Answer },
  intended: readonly Intended[] = [],
) {
  const label = `${p.name}: ${req.method} ${req.path.slice(0, 120)}`;
  let expected: Answer;
  try {
    expected = undoIntended(answers.ours, p, intended);
  } catch (err) {
    // Our answer does not even have the intended difference's form: show the whole of both answers.
    const why = (err as Error).message.split("\n", 1)[0];
    expect(view(answers.ours, req.path), `${label}: not the intended difference (${why})`).toEqual(
      view(answers.theirs, req.path),
    );
    throw err;
  }
  expect(
    view(expected, req.path),
    `${label}${intended.length ? " (ours with the intended differences undone)" : ""}`,
  ).toEqual(view(answers.theirs, req.path));
}

async function compare<Desc extends DescMessage>(
  p: Protocol,
  method: string,
  schema: Desc,
  message: MessageInitShape<Desc>,
  o: Parameters<typeof rpcRequest>[4] = {},
  intended: readonly Intended[] = [],
): Promise<{ ours: Answer; theirs: Answer }> {
  const req = rpcRequest(p, method, schema, message, o);
  const answers = await both(req);
  expectSame(p, req, answers, intended);
  return answers;
}

const T00 = { tenantId: "t-00" };

/**
 * Runs fn with Date.now() standing still (timers keep running). The rate
 * limiters of both servers read Date.now(), so a caller's second call reports
 * a reset (and a refusal a RetryInfo delay, to the millisecond) that depends
 * on how long ago its first call was; with the clock still, both servers
 * report exactly the same, and nothing needs normalising.
 */
async function withFrozenDate(fn: () => Promise<void>): Promise<void> {
  vi.useFakeTimers({ toFake: ["Date"] });
  try {
    await fn();
  } finally {
    vi.useRealTimers();
  }
}

/**
 * An error's metadata where its protocol carries it: gRPC in the trailers,
 * gRPC-Web in the trailer frame (neither in the headers); Connect as headers.
 */
function expectErrorMetadata(answer: Answer, p: Protocol, metadata: Record<string, string>) {
  const names = Object.keys(metadata);
  if (p.kind === "grpc" || p.kind === "grpc-web") {
    const trailers = p.kind === "grpc" ? answer.trailers : grpcWebTrailers(answer.body);
    expect(trailers, `${p.name}: the error's metadata with its status`).toMatchObject(metadata);
    expect(
      names.filter((n) => answer.headers[n] !== undefined),
      `${p.name}: none of it in the headers`,
    ).toEqual([]);
  } else {
    expect(answer.headers, `${p.name}: the error's metadata as headers`).toMatchObject(metadata);
  }
}
const nameOf = (p: Protocol) => p.name;

// ---------------------------------------------------------------------------------------------------------------

describe("the harness", () => {
  it("sees a difference when there is one (two different reads are not equal)", async () => {
    const p = PROTOCOLS[0]!;
    const token = await freshCaller();
    const a = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, { tenantId: "t-00" }, { token, requestId: "x" });
    const b = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, { tenantId: "t-01" }, { token, requestId: "x" });
    const ours = await raw.send(server.baseUrl, a);
    const theirs = await raw.send(reference.baseUrl, b);
    expect(ours.status).toBe(200);
    expect(view(ours, a.path)).not.toEqual(view(theirs, b.path));
  });
});

describe.each(PROTOCOLS.map((p) => [nameOf(p), p] as const))("reads over %s are byte-identical", (_, p) => {
  it("GetDashboard", async () => {
    const { ours } = await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, { token: await freshCaller() });
    expect(errorOf(ours, p.kind)).toBeUndefined();
  });

  it("ListDashboards, a page and the page after it", async () => {
    // The caller's second call: its ratelimit-reset depends on the time since its first, unless time stands still.
    await withFrozenDate(async () => {
      const token = await freshCaller();
      const first = await compare(p, "ListDashboards", ListDashboardsRequestSchema, { pageSize: 3 }, { token });
      expect(errorOf(first.ours, p.kind)).toBeUndefined();
      const next = messageOf(first.theirs, p.kind, ListDashboardsResponseSchema, p.binary).nextPageToken;
      expect(next).toMatch(/\./);
      await compare(p, "ListDashboards", ListDashboardsRequestSchema, { pageSize: 3, pageToken: next }, { token });
    });
  });

  it("VerifyIframeToken", async () => {
    const { ours } = await compare(
      p,
      "VerifyIframeToken",
      VerifyIframeTokenRequestSchema,
      { token: iframeToken },
      { token: await freshCaller() },
    );
    expect(errorOf(ours, p.kind)).toBeUndefined();
  });

  it("ListAuditEvents", async () => {
    const { ours } = await compare(
      p,
      "ListAuditEvents",
      ListAuditEventsRequestSchema,
      {},
      { token: await freshCaller() },
    );
    expect(errorOf(ours, p.kind)).toBeUndefined();
  });
});

describe.each(PROTOCOLS.map((p) => [nameOf(p), p] as const))("browsers over %s", (_, p) => {
  it("a read from an allowed Origin", async () => {
    await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, {
      token: await freshCaller(),
      headers: { origin: ORIGIN },
    });
  });

  it("a read from an Origin that is not allowed", async () => {
    await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, {
      token: await freshCaller(),
      headers: { origin: "https://elsewhere.example.com" },
    });
  });

  it("an error to an allowed Origin", async () => {
    await compare(
      p,
      "GetDashboard",
      GetDashboardRequestSchema,
      { tenantId: "t-none" },
      {
        token: await freshCaller(),
        headers: { origin: ORIGIN },
      },
    );
  });
});

describe.each(["1.1", "2"] as const)("a CORS preflight over HTTP/%s", (http) => {
  it("is answered the same", async () => {
    const req: RawRequest = {
      http,
      method: "OPTIONS",
      path: "/dashboard.v1.DashboardService/GetDashboard",
      headers: {
        origin: ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
        "x-request-id": "preflight",
      },
    };
    const answers = await both(req);
    expect(answers.ours.status).toBe(204);
    expectSame(
      PROTOCOLS.find((p) => p.http === http)!,
      req,
      answers,
    );
  });
});

describe.each(PROTOCOLS.map((p) => [nameOf(p), p] as const))("domain errors over %s", (_, p) => {
  it("NOT_FOUND, with the budget's state where the protocol puts an error's metadata", async () => {
    const { ours, theirs } = await compare(
      p,
      "GetDashboard",
      GetDashboardRequestSchema,
      { tenantId: "t-none" },
      {
        token: await freshCaller(),
      },
    );
    expect(errorOf(ours, p.kind)?.code).toBe(5);
    const budget = {
      "ratelimit-limit": String(CALLS_PER_MINUTE),
      "ratelimit-remaining": String(CALLS_PER_MINUTE - 1),
      "ratelimit-reset": "60",
      "ratelimit-policy": `${CALLS_PER_MINUTE};w=60`,
    };
    expectErrorMetadata(ours, p, budget);
    expectErrorMetadata(theirs, p, budget);
  });

  it("UNAUTHENTICATED without a token", async () => {
    const { ours } = await compare(p, "GetDashboard", GetDashboardRequestSchema, T00);
    expect(errorOf(ours, p.kind)?.code).toBe(16);
  });

  it("UNAUTHENTICATED with a token signed by someone else", async () => {
    const forged = await freshCaller({ secret: "not-the-server-secret-but-32-bytes-long!!" });
    const { ours } = await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, { token: forged });
    expect(errorOf(ours, p.kind)?.code).toBe(16);
  });

  it("VALIDATION_ERROR, with BadRequest details", async () => {
    const { ours } = await compare(
      p,
      "ListDashboards",
      ListDashboardsRequestSchema,
      { pageSize: -1 },
      {
        token: await freshCaller(),
      },
    );
    const err = errorOf(ours, p.kind);
    expect(err?.code).toBe(3);
    expect(err?.details.map((d) => d.type)).toEqual(["google.rpc.ErrorInfo", "google.rpc.BadRequest"]);
  });

  it("PERMISSION_DENIED", async () => {
    const outsider = await freshCaller({ admin: false, tenants: ["t-other"] });
    const { ours } = await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, { token: outsider });
    expect(errorOf(ours, p.kind)?.code).toBe(7);
  });

  it("RATE_LIMITED, with the error's metadata where the protocol puts it", async () => {
    await withFrozenDate(async () => {
      const token = await freshCaller();
      for (let call = 1; call <= CALLS_PER_MINUTE; call++) {
        const { ours } = await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, { token });
        expect(errorOf(ours, p.kind), `call ${call} is allowed`).toBeUndefined();
      }
      const { ours, theirs } = await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, { token });
      expect(errorOf(ours, p.kind)?.code).toBe(8);
      expect(theirs.status).toBe(p.kind === "grpc" || p.kind === "grpc-web" ? 200 : 429);
      const metadata = {
        "ratelimit-limit": String(CALLS_PER_MINUTE),
        "ratelimit-remaining": "0",
        "ratelimit-reset": "60",
        "ratelimit-policy": `${CALLS_PER_MINUTE};w=60`,
        "retry-after": "60",
      };
      expectErrorMetadata(ours, p, metadata);
      expectErrorMetadata(theirs, p, metadata);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Writes: the answers differ by what the server generates (ids, times, the token); all else must be the same.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function recentTime(value: unknown): string {
  expect(typeof value).toBe("string");
  expect(Math.abs(Date.parse(value as string) - Date.now())).toBeLessThan(10 * 60_000);
  return "<generated time>";
}

/** Everything of a write's answer but the generated data, which is checked for its form and replaced. */
function writeShape(answer: Answer, p: Protocol) {
  const headers = { ...answer.headers };
  // The body holds generated data, so its length may legitimately differ.
  delete headers["content-length"];
  const frames =
    p.kind === "grpc" || p.kind === "grpc-web"
      ? splitFrames(answer.body).frames.map((f) => (f.flags & 0x80 ? { trailers: f.data.toString("utf8") } : f.flags))
      : undefined;
  return { status: answer.status, headers, trailers: answer.trailers, frames, broken: answer.broken, message: {} };
}

describe.each(POST_PROTOCOLS.map((p) => [nameOf(p), p] as const))("writes over %s", (_, p) => {
  it("CreateDashboard: the same answer but for the generated id and times", async () => {
    const token = await freshCaller({ org: WRITE_ORG });
    const n = String(++subjects).padStart(4, "0");
    // One dashboard per tenant: each server creates its own, under tenant ids of the same length.
    const tenants = { ours: `o-${n}`, theirs: `r-${n}` };
    const message = (tenantId: string) => ({
      tenantId,
      workspaceId: "ws-1",
      name: "Writes",
      description: "made by the differential test",
      allowedOrigins: [ORIGIN],
    });
    const requestId = `create-${n}`;
    const ours = await raw.send(
      server.baseUrl,
      rpcRequest(p, "CreateDashboard", CreateDashboardRequestSchema, message(tenants.ours), { token, requestId }),
    );
    const theirs = await raw.send(
      reference.baseUrl,
      rpcRequest(p, "CreateDashboard", CreateDashboardRequestSchema, message(tenants.theirs), { token, requestId }),
    );
    const shape = (answer: Answer, tenantId: string) => ({
      ...writeShape(answer, p),
      message: (() => {
        const m = toJson(
          CreateDashboardResponseSchema,
          messageOf(answer, p.kind, CreateDashboardResponseSchema, p.binary),
        ) as { dashboard: Record<string, unknown> };
        const d = m.dashboard;
        expect(d.id).toMatch(UUID);
        expect(d.dashboardId).toBe(d.id);
        expect(d.tenantId).toBe(tenantId);
        return {
          dashboard: {
            ...d,
            id: "<generated id>",
            dashboardId: "<generated id>",
            tenantId: "<the request's>",
            createdAt: recentTime(d.createdAt),
            updatedAt: recentTime(d.updatedAt),
            // A digest of the generated id and the version.
            etag: (() => {
              expect(d.etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
              return "<the row's>";
            })(),
          },
        };
      })(),
    });
    expect(ours.status).toBe(200);
    expect(shape(ours, tenants.ours)).toEqual(shape(theirs, tenants.theirs));
  });

  it("CreateIframeToken: the same answer but for the generated token, its id and its times", async () => {
    const token = await freshCaller({ org: WRITE_ORG });
    const req = rpcRequest(
      p,
      "CreateIframeToken",
      CreateIframeTokenRequestSchema,
      { tenantId: "w-base", workspaceId: "ws-1", dashboardId: writeDashboardId },
      { token },
    );
    const { ours, theirs } = await both(req);
    const shape = (answer: Answer) => ({
      ...writeShape(answer, p),
      message: (() => {
        const m = toJson(
          CreateIframeTokenResponseSchema,
          messageOf(answer, p.kind, CreateIframeTokenResponseSchema, p.binary),
        ) as { token: string; dashboardId: string; expiresAt: string; tokenId: string };
        const claims = decodeJwt(m.token);
        expect(m.tokenId).toMatch(UUID);
        expect(claims.jti).toBe(m.tokenId);
        expect(String(claims.exp)).toBe(m.expiresAt);
        recentTime(new Date(claims.iat! * 1000).toISOString());
        return {
          token: {
            header: decodeProtectedHeader(m.token),
            claims: {
              ...claims,
              jti: "<generated id>",
              iat: "<generated time>",
              nbf: claims.nbf === undefined ? undefined : claims.nbf - claims.iat!,
              exp: claims.exp! - claims.iat!,
            },
          },
          dashboardId: m.dashboardId,
          expiresAt: "<the token's exp>",
          tokenId: "<generated id>",
        };
      })(),
    });
    expect(ours.status).toBe(200);
    expect(shape(ours)).toEqual(shape(theirs));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Compression.

const isEnveloped = (p: Protocol) => p.kind === "grpc" || p.kind === "grpc-web";
const encodingHeader = (p: Protocol) => (isEnveloped(p) ? "grpc-encoding" : "content-encoding");
const acceptHeader = (p: Protocol) => (isEnveloped(p) ? "grpc-accept-encoding" : "accept-encoding");

/** A request whose message is compressed with `compress` and declared as `name`. */
function compressedRequest(
  p: Protocol,
  method: string,
  payload: Uint8Array,
  name: string,
  compressed: Uint8Array,
  token: string,
  headers: Record<string, string> = {},
): RawRequest {
  return rpcRequest(
    p,
    method,
    GetDashboardRequestSchema,
    {},
    {
      token,
      payload,
      body: isEnveloped(p) ? envelope(compressed, 1) : compressed,
      headers: { [encodingHeader(p)]: name, ...headers },
    },
  );
}

const encoded = (p: Protocol, message: MessageInitShape<typeof GetDashboardRequestSchema>) =>
  rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, message).body!;
const payloadOf = (p: Protocol, body: Uint8Array) => (isEnveloped(p) ? body.subarray(5) : body);

describe.each(POST_PROTOCOLS.map((p) => [nameOf(p), p] as const))("compression over %s", (_, p) => {
  for (const [name, compress] of [
    ["gzip", gzipSync],
    ["br", brotliCompressSync],
  ] as const) {
    it(`a ${name} request body`, async () => {
      const payload = payloadOf(p, encoded(p, T00));
      const req = compressedRequest(p, "GetDashboard", payload, name, compress(payload), await freshCaller());
      const answers = await both(req);
      expectSame(p, req, answers);
      expect(errorOf(answers.ours, p.kind)).toBeUndefined();
    });

    it(`an answer above 1 KiB, ${name} accepted, comes back ${name}-compressed`, async () => {
      const { ours } = await compare(
        p,
        "ListDashboards",
        ListDashboardsRequestSchema,
        {},
        {
          token: await freshCaller(),
          headers: { [acceptHeader(p)]: name },
        },
      );
      expect(errorOf(ours, p.kind)).toBeUndefined();
      if (isEnveloped(p)) {
        expect(ours.headers["grpc-encoding"]).toBe(name);
        expect(splitFrames(ours.body).frames[0]!.flags).toBe(1);
      } else {
        expect(ours.headers["content-encoding"]).toBe(name);
      }
    });
  }

  it("an accept list whose first encoding the server does not speak", async () => {
    await compare(
      p,
      "ListDashboards",
      ListDashboardsRequestSchema,
      {},
      {
        token: await freshCaller(),
        headers: { [acceptHeader(p)]: "zstd, br, gzip" },
      },
    );
  });

  it("an unknown request encoding is UNIMPLEMENTED, naming the encodings the server accepts", async () => {
    const payload = payloadOf(p, encoded(p, T00));
    const req = rpcRequest(
      p,
      "GetDashboard",
      GetDashboardRequestSchema,
      {},
      {
        token: await freshCaller(),
        payload,
        headers: { [encodingHeader(p)]: "zstd" },
      },
    );
    const answers = await both(req);
    expectSame(p, req, answers, [INTENDED.edgeErrorInfo("UNSUPPORTED_COMPRESSION")]);
    expect(errorOf(answers.ours, p.kind)?.code).toBe(12);
    const where =
      p.kind === "grpc"
        ? answers.ours.trailers
        : p.kind === "grpc-web"
          ? grpcWebTrailers(answers.ours.body)!
          : answers.ours.headers;
    expect(where[acceptHeader(p)]).toBe("gzip,br");
  });

  it("an unknown request encoding, from a client that accepts gzip answers", async () => {
    const payload = payloadOf(p, encoded(p, T00));
    const req = rpcRequest(
      p,
      "GetDashboard",
      GetDashboardRequestSchema,
      {},
      {
        token: await freshCaller(),
        payload,
        headers: { [encodingHeader(p)]: "zstd", [acceptHeader(p)]: "gzip" },
      },
    );
    expectSame(p, req, await both(req), [INTENDED.edgeErrorInfo("UNSUPPORTED_COMPRESSION")]);
  });

  it("a compressed message that inflates past the size limit", async () => {
    const bomb = gzipSync(Buffer.alloc(MAX_REQUEST_BYTES * 4));
    const req = compressedRequest(p, "GetDashboard", new Uint8Array(), "gzip", bomb, await freshCaller());
    const answers = await both(req);
    expectSame(p, req, answers, [INTENDED.edgeErrorInfo("MESSAGE_TOO_LARGE"), CHARGED]);
    expect(errorOf(answers.ours, p.kind)).toMatchObject({
      code: 8,
      message: `message is larger than configured readMaxBytes ${MAX_REQUEST_BYTES} after decompression`,
    });
  });

  it("a gzip-declared message of no bytes (an empty message)", async () => {
    const req = compressedRequest(p, "GetDashboard", new Uint8Array(), "gzip", new Uint8Array(), await freshCaller());
    // Zero bytes are the empty message, not inflated: in binary the handler gets it (and refuses it); in JSON it
    // does not decode.
    expectSame(p, req, await both(req), p.binary ? [] : [INTENDED.edgeErrorInfo("MALFORMED_REQUEST"), CHARGED]);
  });

  for (const [name, what, compressed] of [
    ["gzip", "is not gzip", Buffer.from("not gzip at all")],
    ["gzip", "is a gzip stream cut short", gzipSync(payloadOf(p, encoded(p, T00))).subarray(0, 12)],
    ["br", "is not brotli", Buffer.from("not brotli at all")],
    ["br", "is a brotli stream cut short", brotliCompressSync(payloadOf(p, encoded(p, T00))).subarray(0, 4)],
  ] as const) {
    it(`a ${name}-declared message that ${what}`, async () => {
      const req = compressedRequest(p, "GetDashboard", new Uint8Array(), name, compressed, await freshCaller());
      const truncated = what.endsWith("cut short") ? [INTENDED.truncatedStreamInternal] : [];
      expectSame(p, req, await both(req), [INTENDED.edgeErrorInfo("MALFORMED_REQUEST"), CHARGED, ...truncated]);
    });
  }
});

describe.each(PROTOCOLS.filter((p) => p.kind === "connect-get" && p.base64).map((p) => [nameOf(p), p] as const))(
  "compression over %s",
  (_, p) => {
    it("compression=gzip in the query", async () => {
      const payload = payloadOf(
        p,
        rpcRequest({ ...p, kind: "connect" }, "GetDashboard", GetDashboardRequestSchema, T00).body!,
      );
      await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, {
        token: await freshCaller(),
        payload: gzipSync(payload),
        query: { compression: "gzip" },
      });
    });

    it("compression=zstd in the query", async () => {
      await compare(
        p,
        "GetDashboard",
        GetDashboardRequestSchema,
        T00,
        { token: await freshCaller(), query: { compression: "zstd" } },
        [INTENDED.edgeErrorInfo("UNSUPPORTED_COMPRESSION")],
      );
    });
  },
);

// ---------------------------------------------------------------------------------------------------------------
// Deadlines.

const timeoutHeader = (p: Protocol) => (isEnveloped(p) ? "grpc-timeout" : "connect-timeout-ms");

describe.each(PROTOCOLS.map((p) => [nameOf(p), p] as const))("deadlines over %s", (_, p) => {
  it("a well-formed timeout within the maximum", async () => {
    const { ours } = await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, {
      token: await freshCaller(),
      headers: { [timeoutHeader(p)]: isEnveloped(p) ? "10S" : "10000" },
    });
    expect(errorOf(ours, p.kind)).toBeUndefined();
  });

  it("a malformed timeout", async () => {
    const { ours } = await compare(
      p,
      "GetDashboard",
      GetDashboardRequestSchema,
      T00,
      { token: await freshCaller(), headers: { [timeoutHeader(p)]: isEnveloped(p) ? "1x" : "1.5" } },
      [INTENDED.edgeErrorInfo("MALFORMED_REQUEST")],
    );
    expect(errorOf(ours, p.kind)?.code).toBe(3);
  });

  it("a timeout above RPC_MAX_TIMEOUT_SECONDS", async () => {
    const above = server.config.edge.rpcMaxTimeoutMs + 1000;
    await compare(
      p,
      "GetDashboard",
      GetDashboardRequestSchema,
      T00,
      {
        token: await freshCaller(),
        headers: { [timeoutHeader(p)]: isEnveloped(p) ? `${above / 1000}S` : String(above) },
      },
      [INTENDED.edgeErrorInfo("MALFORMED_REQUEST")],
    );
  });

  it("a malformed timeout, from a client that accepts gzip answers", async () => {
    await compare(
      p,
      "GetDashboard",
      GetDashboardRequestSchema,
      T00,
      {
        token: await freshCaller(),
        headers: { [timeoutHeader(p)]: isEnveloped(p) ? "1x" : "1.5", [acceptHeader(p)]: "gzip" },
      },
      [INTENDED.edgeErrorInfo("MALFORMED_REQUEST")],
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Framing and message decoding.

const message = (p: Protocol) => payloadOf(p, encoded(p, T00));
const UNDECODABLE_BINARY = Uint8Array.from([0x0a, 0x7f, 0x61]); // field 1, length 127, one byte of it
const INVALID_JSON = Buffer.from('{"tenantId": ');

/** A request message of exactly `size` bytes in p's encoding (a long tenant id), as it goes in a frame or body. */
function messageOfSize(p: Protocol, size: number): Uint8Array {
  // The encoding's overhead around a tenant id of a length in the same range (in binary, a 2-byte length).
  const overhead = payloadOf(p, encoded(p, { tenantId: "x".repeat(1000) })).byteLength - 1000;
  const m = payloadOf(p, encoded(p, { tenantId: "x".repeat(size - overhead) }));
  expect(m.byteLength, "a message of the size asked for").toBe(size);
  return m;
}

/** What connect-node answers a message that does not decode (its code before intended #2 is undone). */
const decodeErrorOf = (p: Protocol) =>
  p.binary
    ? { code: 13, message: "parse binary: premature EOF", details: [] }
    : {
        code: 3,
        message: "cannot decode message dashboard.v1.GetDashboardRequest from JSON: Unexpected end of JSON input",
        details: [],
      };

/**
 * INTENDED #5b: a call WITHOUT a token whose body does not decode. Ours checks the credential before it reads
 * the body (so an unauthenticated client never makes it read one) and answers UNAUTHENTICATED; connect-node
 * decodes first and answers the decode error. Neither answer can be made into the other, so both are asserted
 * as they are: ours is UNAUTHENTICATED with reason UNAUTHORIZED and, byte for byte, what connect-node answers
 * the same call when its body does decode (the body had no part in it); connect-node's is the decode error.
 */
async function expectUnauthenticatedBeforeDecode(p: Protocol, o: { body?: Uint8Array; payload?: Uint8Array }) {
  const requestId = `no-token-${++subjects}`;
  const req = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, {}, { ...o, requestId });
  const { ours, theirs } = await both(req);
  expect(errorOf(ours, p.kind), `${p.name}: ours, UNAUTHENTICATED before the body is read`).toEqual({
    code: 16,
    message: "an Authorization: Bearer token is required",
    details: [{ type: "google.rpc.ErrorInfo", value: { reason: "UNAUTHORIZED", domain: "dashboard-service" } }],
  });
  expect(errorOf(theirs, p.kind), `${p.name}: connect-node, the decode error`).toEqual(decodeErrorOf(p));
  // Ours is all the guard's: byte for byte what connect-node answers when the body decodes (so, also, not counted).
  const decodable = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, T00, { requestId });
  const theirsDecodable = await raw.send(reference.baseUrl, decodable);
  expect(view(ours, req.path), `${p.name}: ours, as connect-node answers the call when its body decodes`).toEqual(
    view(theirsDecodable, decodable.path),
  );
}

describe.each(ENVELOPED_PROTOCOLS.map((p) => [nameOf(p), p] as const))("framing over %s", (_, p) => {
  const refused = (reason: EdgeReason) => [INTENDED.edgeErrorInfo(reason), CHARGED];
  const send = async (body: Uint8Array, intended: readonly Intended[], headers: Record<string, string> = {}) => {
    const req = rpcRequest(
      p,
      "GetDashboard",
      GetDashboardRequestSchema,
      {},
      { token: await freshCaller(), body, headers },
    );
    const answers = await both(req);
    expectSame(p, req, answers, intended);
    return answers;
  };

  it("a message that does not decode, from a client without a token (intended #5b)", async () => {
    await expectUnauthenticatedBeforeDecode(p, { body: envelope(p.binary ? UNDECODABLE_BINARY : INVALID_JSON) });
  });

  it("an empty body (no message for a unary method)", async () => {
    const { ours } = await send(new Uint8Array(), refused("WRONG_MESSAGE_COUNT"));
    expect(errorOf(ours, p.kind)).toMatchObject({
      code: 12,
      message: "protocol error: missing input message for unary method",
    });
  });

  it("a truncated frame", async () => {
    const m = message(p);
    await send(envelope(m, 0, m.byteLength + 10), refused("MALFORMED_REQUEST"));
  });

  it("two frames for a unary method", async () => {
    const m = message(p);
    const { ours } = await send(Buffer.concat([envelope(m), envelope(m)]), refused("WRONG_MESSAGE_COUNT"));
    expect(errorOf(ours, p.kind)).toMatchObject({
      code: 12,
      message: "protocol error: received extra input message for unary method",
    });
  });

  it("a compressed flag without grpc-encoding", async () => {
    const { ours } = await send(envelope(gzipSync(message(p)), 1), refused("UNDECLARED_COMPRESSION"));
    expect(errorOf(ours, p.kind)).toMatchObject({
      code: 13,
      message: "received compressed envelope, but do not know how to decompress",
    });
  });

  it("a frame larger than MAX_REQUEST_BYTES", async () => {
    const big = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, {
      tenantId: "x".repeat(MAX_REQUEST_BYTES),
    }).body!;
    await send(big, refused("MESSAGE_TOO_LARGE"));
  });

  it("a frame of exactly MAX_REQUEST_BYTES is read (the limit is on the declared length)", async () => {
    const { ours } = await send(envelope(messageOfSize(p, MAX_REQUEST_BYTES)), []);
    expect(errorOf(ours, p.kind)?.code, "the handler answered, not the size limit").not.toBe(8);
  });

  it("a frame of MAX_REQUEST_BYTES + 1", async () => {
    const { ours } = await send(envelope(messageOfSize(p, MAX_REQUEST_BYTES + 1)), refused("MESSAGE_TOO_LARGE"));
    expect(errorOf(ours, p.kind)).toMatchObject({
      code: 8,
      message: `message size ${MAX_REQUEST_BYTES + 1} is larger than configured readMaxBytes ${MAX_REQUEST_BYTES}`,
    });
  });

  if (p.binary) {
    it("an undecodable binary message", async () => {
      const { ours } = await send(envelope(UNDECODABLE_BINARY), [
        ...refused("MALFORMED_REQUEST"),
        INTENDED.binaryDecodeInternal,
      ]);
      expect(errorOf(ours, p.kind)?.message).toBe("parse binary: premature EOF");
    });
  } else {
    it("invalid JSON", async () => {
      await send(envelope(INVALID_JSON), refused("MALFORMED_REQUEST"));
    });
  }
});

describe.each(CONNECT_POST_PROTOCOLS.map((p) => [nameOf(p), p] as const))("message decoding over %s", (_, p) => {
  const refused = (reason: EdgeReason) => [INTENDED.edgeErrorInfo(reason), CHARGED];
  const send = async (body: Uint8Array, intended: readonly Intended[] = []) => {
    const req = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, {}, { token: await freshCaller(), body });
    const answers = await both(req);
    expectSame(p, req, answers, intended);
    return answers;
  };

  it("an empty body", async () => {
    // In binary, zero bytes are the empty message, and the handler answers; in JSON they do not decode.
    await send(new Uint8Array(), p.binary ? [] : refused("MALFORMED_REQUEST"));
  });

  it("a message that does not decode, from a client without a token (intended #5b)", async () => {
    await expectUnauthenticatedBeforeDecode(p, { payload: p.binary ? UNDECODABLE_BINARY : INVALID_JSON });
  });

  it("a body larger than MAX_REQUEST_BYTES", async () => {
    const big = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, {
      tenantId: "x".repeat(MAX_REQUEST_BYTES),
    }).body!;
    const { ours } = await send(big, refused("MESSAGE_TOO_LARGE"));
    // HTTP/1.1 requests carry a Content-Length (the harness sets one); HTTP/2 requests here do not.
    expect(errorOf(ours, p.kind)?.message).toBe(
      p.http === "1.1"
        ? `message size ${big.byteLength} is larger than configured readMaxBytes ${MAX_REQUEST_BYTES}`
        : `message size is larger than configured readMaxBytes ${MAX_REQUEST_BYTES}`,
    );
  });

  it("a body of exactly MAX_REQUEST_BYTES is read", async () => {
    const { ours } = await send(messageOfSize(p, MAX_REQUEST_BYTES));
    expect(errorOf(ours, p.kind)?.code, "the handler answered, not the size limit").not.toBe(8);
  });

  it("a body of MAX_REQUEST_BYTES + 1", async () => {
    await send(messageOfSize(p, MAX_REQUEST_BYTES + 1), refused("MESSAGE_TOO_LARGE"));
  });

  it("without Connect-Protocol-Version", async () => {
    const req = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, T00, { token: await freshCaller() });
    delete req.headers["connect-protocol-version"];
    expectSame(p, req, await both(req));
  });

  if (p.binary) {
    it("an undecodable binary message", async () => {
      await send(UNDECODABLE_BINARY, [...refused("MALFORMED_REQUEST"), INTENDED.binaryDecodeInternal]);
    });
  } else {
    it("invalid JSON", async () => {
      await send(INVALID_JSON, refused("MALFORMED_REQUEST"));
    });

    it("JSON that is not UTF-8", async () => {
      // Decoded leniently, as connect-node does (U+FFFD for the bad byte), so the handler answers.
      const { ours } = await send(Buffer.from([...Buffer.from('{"tenantId": "t-'), 0xff, ...Buffer.from('"}')]));
      expect(errorOf(ours, p.kind)?.details[0]?.value, "the handler's own rule refused it, not the decoder").toEqual({
        reason: "VALIDATION_ERROR",
        domain: "dashboard-service",
      });
    });

    it("JSON with a field the message does not have (ignored)", async () => {
      const { ours } = await send(Buffer.from('{"tenantId": "t-00", "notAField": 1}'));
      expect(errorOf(ours, p.kind)).toBeUndefined();
    });

    it("application/json; charset=utf-8", async () => {
      const req = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, T00, {
        token: await freshCaller(),
        headers: { "content-type": "application/json; charset=utf-8" },
      });
      expectSame(p, req, await both(req));
    });
  }
});

describe.each(PROTOCOLS.filter((p) => p.kind === "connect-get").map((p) => [nameOf(p), p] as const))(
  "message decoding over %s",
  (_, p) => {
    const refused = [INTENDED.edgeErrorInfo("MALFORMED_REQUEST"), CHARGED];
    if (p.binary) {
      it("an undecodable binary message", async () => {
        await compare(
          p,
          "GetDashboard",
          GetDashboardRequestSchema,
          {},
          {
            token: await freshCaller(),
            payload: UNDECODABLE_BINARY,
          },
          [...refused, INTENDED.binaryDecodeInternal],
        );
      });
    } else {
      it("invalid JSON", async () => {
        await compare(
          p,
          "GetDashboard",
          GetDashboardRequestSchema,
          {},
          { token: await freshCaller(), payload: INVALID_JSON },
          refused,
        );
      });
    }
    if (p.base64) {
      it("a message that is not base64 (intended #6)", async () => {
        // INTENDED #6: ours refuses it as the malformed request it is (and, the caller known and counted before the
        // message is read, with the budget's headers: #5a); connect-node's base64 decoder throws a plain Error,
        // which its handler answers as "internal error". Neither answer can be made into the other: both asserted.
        const req = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, T00, {
          token: await freshCaller(),
          query: { message: "%%%not-base64" },
        });
        const { ours, theirs } = await both(req);
        expect(ours.status, "ours: 400").toBe(400);
        expect(errorOf(ours, p.kind), "ours: invalid_argument, MALFORMED_REQUEST").toEqual({
          code: 3,
          message: "the message query parameter is not valid base64",
          details: [
            { type: "google.rpc.ErrorInfo", value: { reason: "MALFORMED_REQUEST", domain: "dashboard-service" } },
          ],
        });
        expect(theirs.status, "connect-node: 500").toBe(500);
        expect(theirs.body.toString("utf8"), "connect-node: internal").toBe(
          '{"code":"internal","message":"internal error"}',
        );
        // Everything else is the same: the headers but for the body's length and #5a's four.
        const rest = (a: Answer, budget: Record<string, string>) => {
          const headers = { ...a.headers };
          for (const name of RATE_LIMIT_HEADERS) {
            expect(headers[name], `${name}`).toBe(budget[name]);
            delete headers[name];
          }
          expect(headers["content-length"]).toBe(String(a.body.byteLength));
          delete headers["content-length"];
          return { headers, trailers: a.trailers, broken: a.broken };
        };
        expect(rest(ours, { ...budgetAfter(1) })).toEqual(rest(theirs, {}));
      });
    }
  },
);

describe.each(POST_PROTOCOLS.map((p) => [nameOf(p), p] as const))("the budget over %s", (_, p) => {
  it("a call refused for its body was counted (intended #5a): the caller's next call has one call fewer", async () => {
    const token = await freshCaller();
    const undecodable = p.binary ? UNDECODABLE_BINARY : INVALID_JSON;
    const first = rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, {}, { token, payload: undecodable });
    const intended = [INTENDED.edgeErrorInfo("MALFORMED_REQUEST"), CHARGED];
    expectSame(p, first, await both(first), p.binary ? [...intended, INTENDED.binaryDecodeInternal] : intended);
    const { ours, theirs } = await both(
      rpcRequest(p, "GetDashboard", GetDashboardRequestSchema, T00, { token, requestId: "second" }),
    );
    expect(errorOf(ours, p.kind)).toBeUndefined();
    expect(errorOf(theirs, p.kind)).toBeUndefined();
    expect(ours.headers["ratelimit-remaining"], "ours: the refused call and this one").toBe(
      budgetAfter(2)["ratelimit-remaining"],
    );
    expect(theirs.headers["ratelimit-remaining"], "connect-node: only this one").toBe(
      budgetAfter(1)["ratelimit-remaining"],
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Requests in no protocol the path speaks, and paths that are no method.

describe.each(["1.1", "2"] as const)("refusals outside any protocol over HTTP/%s", (http) => {
  const connectJson = PROTOCOLS.find((p) => p.kind === "connect" && !p.binary && p.http === http)!;
  const connectGet = PROTOCOLS.find((p) => p.kind === "connect-get" && !p.base64 && p.http === http)!;

  it("a wrong content type is 415", async () => {
    const { ours } = await compare(
      connectJson,
      "GetDashboard",
      GetDashboardRequestSchema,
      T00,
      { token: await freshCaller(), headers: { "content-type": "text/plain" } },
      [INTENDED.unspokenErrorBody("UNSUPPORTED_MEDIA_TYPE")],
    );
    expect(ours.status).toBe(415);
  });

  it("gRPC-Web text is 415", async () => {
    await compare(
      connectJson,
      "GetDashboard",
      GetDashboardRequestSchema,
      T00,
      { token: await freshCaller(), headers: { "content-type": "application/grpc-web-text" } },
      [INTENDED.unspokenErrorBody("UNSUPPORTED_MEDIA_TYPE")],
    );
  });

  it("GET on a method with side effects is 405", async () => {
    const { ours } = await compare(
      connectGet,
      "CreateDashboard",
      CreateDashboardRequestSchema,
      { tenantId: "t-get", workspaceId: "ws-1", name: "GET" },
      { token: await freshCaller() },
      [INTENDED.unspokenErrorBody("METHOD_NOT_ALLOWED")],
    );
    expect(ours.status).toBe(405);
  });

  it("a Connect GET without encoding= is 415", async () => {
    const req = rpcRequest(connectGet, "GetDashboard", GetDashboardRequestSchema, T00, { token: await freshCaller() });
    req.path = req.path.replace("&encoding=json", "");
    expectSame(connectGet, req, await both(req), [INTENDED.unspokenErrorBody("UNSUPPORTED_MEDIA_TYPE")]);
  });

  it("a Connect GET with encoding=xml is 415", async () => {
    const req = rpcRequest(connectGet, "GetDashboard", GetDashboardRequestSchema, T00, {
      token: await freshCaller(),
      query: { encoding: "xml" },
    });
    expectSame(connectGet, req, await both(req), [INTENDED.unspokenErrorBody("UNSUPPORTED_MEDIA_TYPE")]);
  });

  it("a Connect streaming content type on a unary method is 415", async () => {
    await compare(
      connectJson,
      "GetDashboard",
      GetDashboardRequestSchema,
      T00,
      { token: await freshCaller(), headers: { "content-type": "application/connect+json" } },
      [INTENDED.unspokenErrorBody("UNSUPPORTED_MEDIA_TYPE")],
    );
  });

  it("no content type at all is 415", async () => {
    const req = rpcRequest(connectJson, "GetDashboard", GetDashboardRequestSchema, T00, { token: await freshCaller() });
    delete req.headers["content-type"];
    expectSame(connectJson, req, await both(req), [INTENDED.unspokenErrorBody("UNSUPPORTED_MEDIA_TYPE")]);
  });

  it("PUT is 405", async () => {
    await compare(
      connectJson,
      "GetDashboard",
      GetDashboardRequestSchema,
      T00,
      { token: await freshCaller(), method: "PUT" },
      [INTENDED.unspokenErrorBody("METHOD_NOT_ALLOWED")],
    );
  });
});

describe.each(PROTOCOLS.map((p) => [nameOf(p), p] as const))("an unknown method path over %s", (_, p) => {
  for (const path of ["/dashboard.v1.DashboardService/NoSuchMethod", "/dashboard.v1.NoSuchService/GetDashboard"]) {
    it(path, async () => {
      await compare(p, "GetDashboard", GetDashboardRequestSchema, T00, { token: await freshCaller(), path }, [
        INTENDED.unknownPathInProtocol,
      ]);
    });
  }
});
