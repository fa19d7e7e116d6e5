import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DashboardService, GetDashboardRequestSchema } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { faultServerEnv } from "../faults/support.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";
import {
  connectError,
  envelope,
  errorInfoReason,
  first,
  grpcWebTrailers,
  h2Request,
  rawH2Request,
  rawHttp1,
  type H2Outcome,
  type Http1Outcome,
  type Http1Response,
} from "./raw-clients.js";

/**
 * The attacker's side of the edge: requests written byte by byte, as no
 * well-behaved client would send them, to one real server process. Whatever
 * arrives, the server answers with a well-formed response in the request's
 * protocol (or closes the connection cleanly), never a 500 for a request
 * that is merely malformed, never a hang, and never reaches its last-resort
 * boundary; and it is alive and healthy afterwards.
 *
 * The fuzz runs send each generated request and collect every violation with
 * the request's exact bytes, then assert there are none, so one run reports
 * every kind of failure at once. Shrinking is off (endOnFailure): the target
 * is a stateful process, and after a crash every request "fails".
 */

let db: TestDatabase;
let server: ServerProcess;
let token: string;
let loneSubToken: string;
let loneUserIdToken: string;
let expiredToken: string;
let wrongSecretToken: string;

/** The hang guard: far above the server's own header (3 s) and body (2 s) deadlines set below. */
const WAIT_MS = 15_000;
/** Requests per fuzz test (RAW_FUZZ_RUNS to change); the HTTP/1.1 fuzz sends them BATCH at a time. */
const RUNS = Number(process.env.RAW_FUZZ_RUNS ?? 300);
const BATCH = 6;
const SEED = process.env.RAW_FUZZ_SEED === undefined ? undefined : Number(process.env.RAW_FUZZ_SEED);
const FUZZ_TIMEOUT_MS = 240_000;

beforeAll(async () => {
  db = await createTestDatabase();
  server = await spawnServer(
    faultServerEnv(db.url, {
      // "warn" includes the error lines the last-resort boundary and the rejection handler write.
      LOG_LEVEL: "warn",
      // The server's own deadlines for requests that never finish: it must answer (408) or close by then.
      HTTP_HEADERS_TIMEOUT_SECONDS: "3",
      HTTP_BODY_TIMEOUT_SECONDS: "2",
    }),
  );
  token = await callerToken({ org: "raw-fuzz", admin: true, sub: "fuzzer" });
  expiredToken = await callerToken({ org: "raw-fuzz", admin: true, expiresIn: -3600 });
  wrongSecretToken = await callerToken({
    org: "raw-fuzz",
    admin: true,
    secret: "another-secret-at-least-32-bytes-long!!",
  });
  loneSubToken = await signed({ sub: "user-\ud800-1" });
  loneUserIdToken = await signed({ user_id: "\udfff" });
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

/** A caller token signed with the test secret, with exactly these claims besides the grant and exp. */
async function signed(claims: Record<string, unknown>): Promise<string> {
  let jwt = new SignJWT({ organization_id: "raw-fuzz", roles: ["admin"], tenant_ids: [], ...claims })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime("1h");
  if (typeof claims.sub === "string") jwt = jwt.setSubject(claims.sub);
  return jwt.sign(new TextEncoder().encode(TEST_JWT_SECRET));
}

const alive = () => server.child.exitCode === null && server.child.signalCode === null;

// ---------------------------------------------------------------------------------------------
// The corpus: routes, dangerous pieces, headers and bodies. Strings are byte strings (latin1):
// each character is one byte on the wire, so "\xc3\xa9" is é in UTF-8 and "\xed\xa0\x80" a lone
// surrogate as CESU-8 would write it.
// ---------------------------------------------------------------------------------------------

// Every RPC of the contract, from its descriptor, so a new one is attacked too.
const DASHBOARD_RPCS = DashboardService.methods.map((m) => `/${DashboardService.typeName}/${m.name}`);
const WATCH = "/grpc.health.v1.Health/Watch";
const REFLECTION = [
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];
const RPC_PATHS = [...DASHBOARD_RPCS, "/grpc.health.v1.Health/Check", WATCH, ...REFLECTION];
const HTTP_PATHS = [
  "/api/v1/dashboards",
  "/api/v1/dashboards/t-1",
  "/api/v1/dashboards/iframe-token",
  "/api/v1/openapi.json",
  "/api/",
  "/api",
  "/.well-known/jwks.json",
  "/healthz",
  "/readyz",
  "/metrics",
  "/",
];
const DANGEROUS = [
  "//",
  "/\\",
  "\\",
  "http://[/",
  "//:0/api/",
  "%",
  "%ZZ",
  "%00",
  "%2F",
  "%2e%2e/",
  "%ED%A0%80",
  "%C0%AF",
  "?",
  "#",
  "&",
  "=",
  "+",
  "..",
  "/..",
  "/./",
  "*",
  "http://",
  "https://127.0.0.1",
  "HTTP://A:0",
  "http://a@b",
  "http://[::1]:99999",
  "http://a:b:c",
  ";",
  "'",
  '"',
  "<>",
  "{}",
  " ",
  "\t",
  "\x00",
  "\x01",
  "\x7f",
  "\r",
  "\n",
  "\r\n",
  "\xc3\xa9",
  "\xed\xa0\x80",
  "\xf0\x9f\x98\x80",
  "\xff",
  "\x80",
];
const QUERIES = [
  "?encoding=json&message=%ZZ",
  "?encoding=json&message=%7B%7D",
  "?encoding=json&message=%7B%22tenantId%22%3A%22t-1%22%7D",
  "?encoding=proto&base64=1&message=%21%21",
  "?encoding=proto&base64=1&message=CgN0LTE",
  "?encoding=json&compression=gzip&message=x",
  "?encoding=json&compression=zz&message=%7B%7D",
  "?encoding=json&message=%7B%22tenantId%22%3A%22%5Cud800%22%7D",
  "?encoding=json&message=%7B%22tenantId%22%3A%22%5Cud800",
  "?encoding=json&message=%ED%A0%80",
  "?limit=-1&skip=99999999999999999999",
  "?limit=1e3&skip=%ZZ",
  "?encoding=xml",
  "?message",
  "?=&&==",
];
const LONG_TARGETS = [
  `/${"a".repeat(8200)}`,
  `/healthz?${"q".repeat(8200)}`,
  `/${"%".repeat(8300)}`,
  `/api/v1/dashboards/${"t".repeat(200)}`,
  `/${"x".repeat(20_000)}`,
];

const printable = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 16,
});
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b).toString("latin1"));

const targetPiece = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...RPC_PATHS, ...HTTP_PATHS) },
  { weight: 5, arbitrary: fc.constantFrom(...DANGEROUS) },
  { weight: 2, arbitrary: fc.constantFrom(...QUERIES) },
  { weight: 1, arbitrary: printable },
  { weight: 1, arbitrary: bytes(6) },
);
const target = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...RPC_PATHS, ...HTTP_PATHS) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...RPC_PATHS, ...HTTP_PATHS), fc.constantFrom(...QUERIES, ...DANGEROUS))
      .map(([a, b]) => a + b),
  },
  { weight: 8, arbitrary: fc.array(targetPiece, { minLength: 1, maxLength: 4 }).map((p) => p.join("")) },
  { weight: 1, arbitrary: fc.constantFrom(...LONG_TARGETS, "") },
);

const METHOD = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom("GET", "POST") },
  {
    weight: 3,
    arbitrary: fc.constantFrom("HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PRI"),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom("get", "Get", "G@T", "FOO", "M-SEARCH", "PROPFIND", "", "GET GET", "X".repeat(64)),
  },
  { weight: 1, arbitrary: fc.constantFrom("\x00GET", "GET\t", "P\xd3ST") },
);
const VERSION = fc.oneof(
  { weight: 8, arbitrary: fc.constant("HTTP/1.1") },
  { weight: 3, arbitrary: fc.constant("HTTP/1.0") },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "HTTP/1.2",
      "HTTP/2.0",
      "HTTP/0.9",
      "HTTP/9.9",
      "http/1.1",
      "HTTP/1.1 ",
      "HTTP/11",
      "",
      "HTTP/1",
      "HTTP/1.1\x00",
      "FOO/1.1",
      "HTTP/1.1 HTTP/1.1",
    ),
  },
);

type Header = [string, string];
const hostHeaders = (port: number): fc.Arbitrary<Header[]> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom<Header[]>([["Host", `127.0.0.1:${port}`]], [["Host", "localhost"]]) },
    { weight: 1, arbitrary: fc.constant<Header[]>([]) },
    {
      weight: 4,
      arbitrary: fc.constantFrom<Header[]>(
        [
          ["Host", "127.0.0.1"],
          ["Host", "evil.example"],
        ],
        [["Host", "["]],
        [["Host", "a b"]],
        [["Host", ""]],
        [["Host", "h".repeat(300)]],
        [["Host", "h".repeat(17_000)]],
        [["Host", "[::1]:99999"]],
        [["Host", "a%zz"]],
        [["Host", "\xc3\xa9"]],
        [["Host", "a:b:c"]],
        [["Host", "[::1"]],
        [["Host", "user@host"]],
        [["Host", "a\tb"]],
        [
          ["host", "127.0.0.1"],
          ["HOST", "x"],
        ],
      ),
    },
  );

const CONTENT_TYPES = [
  "application/grpc",
  "application/grpc+proto",
  "application/grpc+json",
  "application/grpc-web",
  "application/grpc-web+proto",
  "application/grpc-web+json",
  "application/grpc-web-text",
  "application/json",
  "application/json; charset=utf-8",
  "application/proto",
  "application/connect+json",
  "application/connect+proto",
  "text/plain",
  "application/grpc; x",
  "APPLICATION/GRPC-WEB+JSON",
  "application/grpc+\xff",
];
const GRPC_CONTENT_TYPES = new Set(CONTENT_TYPES.slice(0, 6));
const contentType = fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: undefined, freq: 4 });

/** An Authorization value: none, garbage, expired, wrongly signed, with a lone surrogate, or valid. */
const authorization = (valid: boolean): fc.Arbitrary<string | undefined> =>
  valid
    ? fc.constant(`Bearer ${token}`)
    : fc.oneof(
        { weight: 4, arbitrary: fc.constant(undefined) },
        { weight: 3, arbitrary: fc.constant(`Bearer ${token}`) },
        {
          weight: 4,
          arbitrary: fc.constantFrom(
            "Bearer",
            "Bearer ",
            "Bearer x.y.z",
            "Basic dXNlcjpwYXNz",
            `Bearer ${"a".repeat(9000)}`,
            "Bearer \xff\xfe",
            `bearer ${token}`,
            `Bearer ${token}x`,
            `Bearer ${expiredToken}`,
            `Bearer ${wrongSecretToken}`,
            `Bearer ${loneSubToken}`,
            `Bearer ${loneUserIdToken}`,
          ),
        },
      );

const EXTRA_HEADERS: Header[] = [
  ["Connection", "close"],
  ["Connection", "keep-alive, Upgrade"],
  ["Expect", "100-continue"],
  ["TE", "trailers"],
  ["grpc-timeout", "1S"],
  ["grpc-timeout", "999999999H"],
  ["grpc-timeout", "-1S"],
  ["connect-timeout-ms", "abc"],
  ["connect-timeout-ms", "99999999999"],
  ["grpc-encoding", "gzip"],
  ["grpc-encoding", "zz"],
  ["content-encoding", "br"],
  ["content-encoding", "gzip"],
  ["accept-encoding", "*"],
  ["grpc-accept-encoding", "gzip, zz"],
  ["connect-protocol-version", "2"],
  ["x-request-id", "\xff\xfe"],
  ["x-request-id", "a".repeat(200)],
  ["origin", "http://evil.example"],
  ["origin", "null"],
  ["access-control-request-method", "POST"],
  ["x-forwarded-for", "1.1.1.1, ::1, garbage"],
  ["forwarded", 'for="[::1'],
  ["upgrade", "h2c"],
  ["upgrade", "websocket"],
  ["Transfer-Encoding", "chunked"],
  ["Content-Length", "abc"],
  ["Content-Length", "0"],
  ["cookie", "a=\xed\xa0\x80"],
  ["x-odd", "\x80\xff"],
  ["x-nul", "a\x00b"],
  ["bad name", "x"],
  ["x-fold", "a\r\n b"],
  ["x-inject", "a\r\nHost: b"],
];

const JSON_TEXTS = [
  "{}",
  '{"tenantId":"t-1"}',
  '{"tenantId":"t-1","workspaceId":"ws-1","name":"Fuzz"}',
  '{"tenant_id":"t-1","workspace_id":"ws-1","name":"Fuzz"}',
  '{"tenant_id":"t-1","workspace_id":"ws-1","dashboard_id":"d","valid_until":"x"}',
  '{"tenantId":"\\ud800"}',
  '{"tenantId":"\\ud800',
  '{"tenantId":"\xed\xa0\x80"}',
  '{"tenantId":"\xff"}',
  '{"tenantId":{"\\udfff":1}}',
  '{"pageSize":"\\ud800"}',
  '{"pageSize":-1}',
  '{"pageSize":1e400}',
  '{"filters":[{"field":"\\ud800","operator":"\\ud800"}]}',
  '{"token":"a.b.c"}',
  '{"service":"\\ud800"}',
  '{"listServices":""}',
  "[]",
  "null",
  '"\\ud800"',
  "[".repeat(5000),
];
const PROTO_MESSAGES = [
  Buffer.from(toBinary(GetDashboardRequestSchema, create(GetDashboardRequestSchema, { tenantId: "t-1" }))),
  Buffer.alloc(0),
  Buffer.from([0x0a, 0x03, 0xed, 0xa0, 0x80]), // field 1: a string that is not UTF-8
  Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), // field 1: a length far beyond the message
  Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // an over-long varint
];
const SPECIAL_FRAMES = [
  Buffer.from([0x00, 0x7f, 0xff, 0xff, 0xff]), // claims 2 GiB
  Buffer.from([0x00, 0x00, 0x00]), // a truncated prefix
  envelope(Buffer.from("garbage"), 0x01), // compressed, without a message encoding
  envelope(gzipSync(Buffer.from('{"tenantId":"t-1"}')), 0x01),
  envelope(Buffer.from("grpc-status: 0\r\n"), 0x80), // a trailer frame from the client
  Buffer.concat([envelope(Buffer.alloc(0)), envelope(Buffer.alloc(0))]), // two messages for a unary call
];
const latin1 = (s: string) => Buffer.from(s, "latin1");
const body: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 3, arbitrary: fc.constantFrom(...JSON_TEXTS).map(latin1) },
  { weight: 3, arbitrary: fc.constantFrom(...JSON_TEXTS).map((t) => envelope(latin1(t))) },
  { weight: 2, arbitrary: fc.constantFrom(...PROTO_MESSAGES).map((m) => envelope(m)) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTO_MESSAGES) },
  { weight: 2, arbitrary: fc.constantFrom(...SPECIAL_FRAMES) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }).map((b) => envelope(Buffer.from(b))) },
);

type Framing = "length" | "chunked" | "none" | "short" | "less" | "bad-chunked";
const FRAMING = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Framing>("length") },
  { weight: 3, arbitrary: fc.constant<Framing>("chunked") },
  { weight: 1, arbitrary: fc.constantFrom<Framing>("none", "short", "less", "bad-chunked") },
);

interface RawRequest {
  method: string;
  target: string;
  version: string;
  headers: Header[];
  body: Buffer;
  framing: Framing;
  /** Written in this many pieces. */
  pieces: number;
}

const rawRequest = (port: number, validToken: boolean): fc.Arbitrary<RawRequest> =>
  fc
    .record({
      method: METHOD,
      target,
      version: VERSION,
      host: hostHeaders(port),
      contentType,
      authorization: authorization(validToken),
      extras: fc.subarray(EXTRA_HEADERS, { maxLength: 3 }),
      body,
      framing: FRAMING,
      pieces: fc.oneof(
        { weight: 6, arbitrary: fc.constant(1) },
        { weight: 1, arbitrary: fc.integer({ min: 2, max: 4 }) },
      ),
    })
    .map((r) => ({
      method: r.method,
      target: r.target,
      version: r.version,
      headers: [
        ...r.host,
        ...(r.contentType === undefined ? [] : [["Content-Type", r.contentType] as Header]),
        ...(r.authorization === undefined ? [] : [["Authorization", r.authorization] as Header]),
        ...r.extras,
      ],
      body: r.body,
      framing: r.framing,
      pieces: r.pieces,
    }));

function serialize(r: RawRequest): Buffer {
  const lines = [`${r.method} ${r.target} ${r.version}`, ...r.headers.map(([n, v]) => `${n}: ${v}`)];
  let payload = r.body;
  switch (r.framing) {
    case "length":
      if (payload.length > 0 || r.method === "POST") lines.push(`Content-Length: ${payload.length}`);
      break;
    case "short": // declares more than it sends: the server must give up on the rest by its body deadline
      lines.push(`Content-Length: ${payload.length + 16}`);
      break;
    case "less": // declares less than it sends: the rest is read as the next request
      lines.push(`Content-Length: ${Math.floor(payload.length / 2)}`);
      break;
    case "chunked":
      lines.push("Transfer-Encoding: chunked");
      payload = Buffer.concat([
        ...(payload.length > 0 ? [latin1(`${payload.length.toString(16)}\r\n`), payload, latin1("\r\n")] : []),
        latin1("0\r\n\r\n"),
      ]);
      break;
    case "bad-chunked":
      lines.push("Transfer-Encoding: chunked");
      payload = Buffer.concat([latin1("zz\r\n"), payload]);
      break;
    case "none":
      break;
  }
  return Buffer.concat([latin1(`${lines.join("\r\n")}\r\n\r\n`), payload]);
}

/** The request's exact bytes, for a report a person can replay (long ones shortened in the middle). */
function showBytes(b: Buffer): string {
  const s = JSON.stringify(b.toString("latin1"));
  return s.length > 700 ? `${s.slice(0, 450)} …(${b.length} bytes)… ${s.slice(-200)}` : s;
}

// ---------------------------------------------------------------------------------------------
// Judging answers
// ---------------------------------------------------------------------------------------------

/**
 * The one INTERNAL the specs prescribe for a client's mistake: a frame flagged compressed on a call
 * that declared no encoding (gRPC's compression.md, Connect's protocol). Anything else INTERNAL is ours.
 */
const SPEC_INTERNAL_REASON = "UNDECLARED_COMPRESSION";

/** A gRPC status as an answer carries it: present, numeric, never INTERNAL or UNKNOWN, an ErrorInfo on every error. */
function grpcStatusProblems(status: string | undefined, detailsBin: string | undefined, where: string): string[] {
  if (status === undefined) return [`a gRPC answer without grpc-status (${where})`];
  if (!/^\d{1,2}$/.test(status)) return [`grpc-status ${JSON.stringify(status)} (${where})`];
  if (status === "13" && errorInfoReason(detailsBin) === SPEC_INTERNAL_REASON) return [];
  if (status === "13" || status === "2") return [`grpc-status ${status}: INTERNAL/UNKNOWN (${where})`];
  if (status !== "0" && !errorInfoReason(detailsBin)) return [`grpc-status ${status} without an ErrorInfo (${where})`];
  return [];
}

/** A JSON error body: it parses, and neither a Connect error nor a REST envelope says the server failed. */
function jsonErrorProblems(status: number, body: Buffer): string[] {
  if (body.length === 0) return [];
  let json: { code?: unknown; success?: unknown; details?: unknown };
  try {
    json = JSON.parse(body.toString("utf8")) as typeof json;
  } catch {
    return [`a ${status} whose JSON body does not parse`];
  }
  if (json.success === false) return json.code === "SERVER_ERROR" ? [`a REST SERVER_ERROR (${status})`] : [];
  if (typeof json.code === "string") {
    const e = connectError(body)!;
    if (e.code === "internal" && e.reason === SPEC_INTERNAL_REASON) return [];
    if (e.code === "internal" || e.code === "unknown") return [`a Connect ${e.code} error (${status})`];
    if (!e.reason) return [`a Connect error without an ErrorInfo (${status})`];
  }
  return [];
}

/** What must hold of any complete HTTP/1.x answer, whatever was asked (an answer to HEAD has no body to judge). */
function http1AnswerProblems(res: Http1Response, head: boolean): string[] {
  const problems: string[] = [];
  if (res.status === 500) problems.push("HTTP 500");
  if (head) return problems;
  const ct = first(res.headers, "content-type") ?? "";
  if (/^application\/grpc-web/i.test(ct)) {
    const trailers = grpcWebTrailers(res.body);
    if (!trailers) problems.push("a gRPC-Web answer without a trailer frame");
    else problems.push(...grpcStatusProblems(trailers["grpc-status"], trailers["grpc-status-details-bin"], "gRPC-Web"));
  } else if (/^application\/grpc/i.test(ct)) {
    const status = first(res.headers, "grpc-status") ?? first(res.trailers, "grpc-status");
    const details = first(res.headers, "grpc-status-details-bin") ?? first(res.trailers, "grpc-status-details-bin");
    problems.push(...grpcStatusProblems(status, details, "gRPC over HTTP/1.x"));
  } else if (/^application\/json/i.test(ct) && res.status >= 400) {
    problems.push(...jsonErrorProblems(res.status, res.body));
  }
  return problems;
}

function http1Problems(outcome: Http1Outcome, head = false): string[] {
  switch (outcome.kind) {
    case "closed":
    case "streaming":
      return [];
    case "hang":
      return [
        `no complete answer and no close within ${WAIT_MS} ms (head received: ${outcome.headReceived})` +
          `${GOT}${showBytes(outcome.raw)}`,
      ];
    case "invalid":
      return [`not a valid HTTP/1.x answer (${outcome.problem})${GOT}${showBytes(outcome.raw)}`];
    case "response":
      return http1AnswerProblems(outcome.response, head);
  }
}

/** A health watch streams until the client leaves: its first message is as far as a request-answer test can wait. */
const streamingWatch = (targetOrPath: string) => (head: { status: number; contentType: string }) =>
  targetOrPath.includes(WATCH) && head.status === 200 && /^application\/(grpc|connect\+)/i.test(head.contentType);

const tally = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 (and what pretends to be it) over bare sockets
// ---------------------------------------------------------------------------------------------

/** What went wrong, grouped by kind, each kind with the first few requests that showed it (their exact bytes). */
class Violations {
  private readonly byKind = new Map<string, string[]>();

  /** A problem's kind is its first line; what follows (what came back) goes with the example. */
  add(problem: string, request: string): void {
    const [kind, ...detail] = problem.split(GOT);
    const examples = this.byKind.get(kind!) ?? [];
    examples.push([request, ...detail].join(GOT));
    this.byKind.set(kind!, examples);
  }

  get kinds(): string[] {
    return [...this.byKind.keys()];
  }

  toString(): string {
    return [...this.byKind]
      .map(([kind, examples]) => {
        const shown = examples.slice(0, 3).map((e) => `    request: ${e}`);
        return [`${kind} (${examples.length} times), e.g.`, ...shown].join("\n");
      })
      .join("\n");
  }
}
const GOT = "\n      got: ";

/** The server's own account of a failure line: its message and the error it names. */
function describeLogLine(line: string): string {
  try {
    const entry = JSON.parse(line) as { msg?: string; reason?: string; err?: { type?: string; message?: string } };
    return `server log: ${entry.msg} ${entry.reason ?? ""} ${entry.err?.type ?? ""}: ${entry.err?.message ?? ""}`;
  } catch {
    return `server log: ${line.slice(0, 300)}`;
  }
}

interface FuzzReport {
  violations: Violations;
  outcomes: Record<string, number>;
}

/** Log lines that mean the server failed on its own side: the last resort, a stray rejection, an INTERNAL. */
const SERVER_FAILURE_LINE = /unexpected error|unhandled promise rejection|"msg":"call failed"/;
function newServerFailureLines(from: number): string[] {
  return server.lines.slice(from).filter((l) => SERVER_FAILURE_LINE.test(l));
}

async function fuzzHttp1(validToken: boolean, runs: number): Promise<FuzzReport> {
  const report: FuzzReport = { violations: new Violations(), outcomes: {} };
  const batches = Math.ceil(runs / BATCH);
  await fc.assert(
    fc.asyncProperty(
      fc.array(rawRequest(server.port, validToken), { minLength: BATCH, maxLength: BATCH }),
      async (batch) => {
        const logFrom = server.lines.length;
        const sent = batch.map(serialize);
        const outcomes = await Promise.all(
          batch.map((r, i) =>
            rawHttp1(server.port, sent[i]!, {
              waitMs: WAIT_MS,
              head: r.method === "HEAD",
              pieces: r.pieces,
              acceptStreaming: (h) =>
                streamingWatch(r.target)({ status: h.status, contentType: first(h.headers, "content-type") ?? "" }),
            }),
          ),
        );
        outcomes.forEach((o, i) => {
          tally(report.outcomes, o.kind === "response" ? String(o.response.status) : o.kind);
          // Grouped by the version the request line claims too: one version's failure must not hide another's.
          const version = ` (the request line says ${JSON.stringify(batch[i]!.version)})`;
          for (const p of http1Problems(o, batch[i]!.method === "HEAD")) {
            const [kind, ...detail] = p.split(GOT);
            report.violations.add([kind + version, ...detail].join(GOT), showBytes(sent[i]!));
          }
          // gRPC to an RPC gets a gRPC answer (a bidirectional stream over HTTP/1.1 is refused 505 instead).
          const r = batch[i]!;
          const ct = r.headers.find(([n]) => n === "Content-Type")?.[1];
          if (
            o.kind === "response" &&
            r.method === "POST" &&
            r.version === "HTTP/1.1" &&
            RPC_PATHS.includes(r.target) &&
            !REFLECTION.includes(r.target) &&
            ct !== undefined &&
            GRPC_CONTENT_TYPES.has(ct) &&
            !/^application\/grpc/i.test(first(o.response.headers, "content-type") ?? "") &&
            // Refused below the RPC layer: node's 400 (unparseable) and 431 (headers too large), the listener's 408.
            ![400, 408, 431].includes(o.response.status)
          ) {
            report.violations.add(
              `a gRPC request to an RPC answered ${o.response.status} outside gRPC`,
              showBytes(sent[i]!),
            );
          }
        });
        for (const line of newServerFailureLines(logFrom)) {
          report.violations.add(
            describeLogLine(line),
            `one of this batch:\n      ${sent.map(showBytes).join("\n      ")}`,
          );
        }
        if (!alive()) {
          throw new Error(
            `the server exited (${server.child.exitCode ?? server.child.signalCode}) during this batch:\n` +
              `${sent.map(showBytes).join("\n")}\n${server.lines.slice(-20).join("\n")}`,
          );
        }
      },
    ),
    { numRuns: batches, endOnFailure: true, ...(SEED === undefined ? {} : { seed: SEED }) },
  );
  console.log(`[raw-requests] HTTP/1 ${validToken ? "authenticated" : "mixed"}: ${JSON.stringify(report.outcomes)}`);
  return report;
}

/** Answers that show the fuzz reached both the routes and the refusals, so a passing run means something. */
function expectReachedBothSides(report: FuzzReport): void {
  const statuses = Object.keys(report.outcomes).map(Number).filter(Number.isFinite);
  expect(
    statuses.some((s) => s >= 200 && s < 300),
    `some answers were 2xx: ${JSON.stringify(report.outcomes)}`,
  ).toBe(true);
  expect(
    statuses.some((s) => s >= 400 && s < 500),
    `some answers were 4xx: ${JSON.stringify(report.outcomes)}`,
  ).toBe(true);
}

describe("raw HTTP/1.x requests", () => {
  it(
    "every request is answered with a valid status line or a clean close, never a 500 or a hang",
    async () => {
      const report = await fuzzHttp1(false, RUNS);
      expect(report.violations.kinds, report.violations.toString()).toEqual([]);
      expectReachedBothSides(report);
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    "the same with a valid bearer token on every request, so authenticated routes are reached",
    async () => {
      const report = await fuzzHttp1(true, Math.ceil(RUNS / 2));
      expect(report.violations.kinds, report.violations.toString()).toEqual([]);
      expectReachedBothSides(report);
    },
    FUZZ_TIMEOUT_MS,
  );
});

// ---------------------------------------------------------------------------------------------
// The requests that used to take the process down, and their neighbours, each with its answer
// ---------------------------------------------------------------------------------------------

async function http1(bytes: string | Buffer, head = false): Promise<Http1Outcome> {
  const outcome = await rawHttp1(server.port, typeof bytes === "string" ? latin1(bytes) : bytes, {
    waitMs: WAIT_MS,
    head,
  });
  expect(http1Problems(outcome), showBytes(typeof bytes === "string" ? latin1(bytes) : bytes)).toEqual([]);
  return outcome;
}

function answerOf(outcome: Http1Outcome): Http1Response {
  if (outcome.kind !== "response") throw new Error(`expected an answer, got ${JSON.stringify(outcome)}`);
  return outcome.response;
}

/** 400 with the Connect error JSON, INVALID_ARGUMENT, ErrorInfo MALFORMED_REQUEST. */
function expectMalformed(outcome: Http1Outcome): void {
  const res = answerOf(outcome);
  expect(res.status).toBe(400);
  expect(first(res.headers, "content-type")).toMatch(/^application\/json/);
  expect(connectError(res.body)).toEqual({ code: "invalid_argument", reason: "MALFORMED_REQUEST" });
}

const host = () => `Host: 127.0.0.1:${server.port}\r\n`;
const GET_DASHBOARD = "/dashboard.v1.DashboardService/GetDashboard";

describe("fixed raw HTTP/1.x cases", () => {
  it.each([
    ["GET //", () => `GET // HTTP/1.1\r\n${host()}\r\n`],
    ["GET //:0/api/", () => `GET //:0/api/ HTTP/1.1\r\n${host()}\r\n`],
    ["GET /\\", () => `GET /\\ HTTP/1.1\r\n${host()}\r\n`],
    ["GET http://[/", () => `GET http://[/ HTTP/1.1\r\n${host()}\r\n`],
    ["GET // over HTTP/1.0 without Host", () => "GET // HTTP/1.0\r\n\r\n"],
    ["Host: [", () => "GET /healthz HTTP/1.1\r\nHost: [\r\n\r\n"],
    ["Host: a b", () => "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n"],
    ["an empty Host", () => "GET /healthz HTTP/1.1\r\nHost:\r\n\r\n"],
    ["Host: [ on an RPC", () => `POST ${GET_DASHBOARD} HTTP/1.1\r\nHost: [\r\nContent-Length: 0\r\n\r\n`],
    ["a target over 8 KiB", () => `GET /${"a".repeat(8200)} HTTP/1.1\r\n${host()}\r\n`],
    ["a fragment", () => `GET /healthz#x HTTP/1.1\r\n${host()}\r\n`],
    // RFC 9112 §3.2: a server MUST answer 400 to more than one Host field line. Node keeps the first
    // one and drops the rest, so the edge's own check for repeated values never sees them.
    ["two Host fields", () => `GET /healthz HTTP/1.1\r\n${host()}Host: evil.example\r\n\r\n`],
  ])("%s is 400 MALFORMED_REQUEST", async (_name, request) => {
    expectMalformed(await http1(request()));
  });

  // llhttp accepts "HTTP/2.0" in an HTTP/1.x request line and reports httpVersionMajor 2, which is how
  // the edge tells an HTTP/2 request apart: it then reads req.stream.session, which such a request lacks.
  it.each([
    ["GET /healthz", () => `GET /healthz HTTP/2.0\r\n${host()}\r\n`],
    ["GET /healthz without Host", () => "GET /healthz HTTP/2.0\r\n\r\n"],
    [
      "a gRPC-Web health check",
      () =>
        `POST /grpc.health.v1.Health/Check HTTP/2.0\r\n${host()}Content-Type: application/grpc-web\r\n` +
        "Content-Length: 5\r\n\r\n\x00\x00\x00\x00\x00",
    ],
    // Node frames the answer to an x.0 request line like HTTP/1.0's: no chunks, so no trailers.
    [
      "a gRPC call",
      () =>
        `POST ${GET_DASHBOARD} HTTP/2.0\r\n${host()}Content-Type: application/grpc\r\n` +
        "Content-Length: 5\r\n\r\n\x00\x00\x00\x00\x00",
    ],
  ])(
    "a request line claiming HTTP/2.0 over HTTP/1.x (%s) is served or refused, never a 500",
    async (_name, request) => {
      const outcome = await http1(request());
      if (outcome.kind === "response") {
        const res = outcome.response;
        // 505 HTTP Version Not Supported, or a 400 for a request line it will not read; gRPC-Web in its own form.
        if (res.status === 200) expect(grpcWebTrailers(res.body)?.["grpc-status"]).not.toBe("13");
        else expect([400, 505]).toContain(res.status);
      }
    },
  );

  it("GET /grpc.health.v1.Health/Check over HTTP/1.0 without Host is 405 in Connect's error form", async () => {
    const res = answerOf(await http1("GET /grpc.health.v1.Health/Check HTTP/1.0\r\n\r\n"));
    expect(res.status).toBe(405);
    expect(connectError(res.body)).toEqual({ code: "invalid_argument", reason: "METHOD_NOT_ALLOWED" });
  });

  it("a health check over HTTP/1.0 without Host is answered", async () => {
    const res = answerOf(
      await http1(
        "POST /grpc.health.v1.Health/Check HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
      ),
    );
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ status: "SERVING" });
  });

  it("an absolute-form target is served (RFC 9112 §3.2.2)", async () => {
    const res = answerOf(await http1(`GET http://127.0.0.1:${server.port}/healthz HTTP/1.1\r\n${host()}\r\n`));
    expect(res.status).toBe(200);
  });

  it("HTTP/1.1 without Host is refused 400 (RFC 9112 §3.2)", async () => {
    expect(answerOf(await http1("GET /healthz HTTP/1.1\r\n\r\n")).status).toBe(400);
  });

  it.each([
    ["a non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"],
    ["a NUL in the target", "GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n"],
    ["an unknown HTTP version", "GET /healthz HTTP/9.9\r\nHost: a\r\n\r\n"],
    ["a method that is not a token", "G@T /healthz HTTP/1.1\r\nHost: a\r\n\r\n"],
    ["a lone % as the target", "GET % HTTP/1.1\r\nHost: a\r\n\r\n"],
  ])("%s is refused 400 (or the connection closed)", async (_name, request) => {
    const outcome = await http1(request);
    if (outcome.kind !== "closed") expect(answerOf(outcome).status).toBe(400);
  });

  it("the first bytes of the HTTP/2 preface, then silence, end in a close within the header deadline", async () => {
    const outcome = await http1("PRI * HTTP/2.0\r\n\r\n");
    expect(["closed", "response"]).toContain(outcome.kind);
  });

  it("a body that never arrives is answered 408 (or closed) by the body deadline", async () => {
    const outcome = await http1(
      `POST /grpc.health.v1.Health/Check HTTP/1.1\r\n${host()}Content-Type: application/grpc\r\nContent-Length: 50\r\n\r\n\x00`,
    );
    if (outcome.kind !== "closed") expect(answerOf(outcome).status).toBe(408);
  });

  it("Connect GET with message=%ZZ is 400 with a Connect error, never 500", async () => {
    const request = `GET ${GET_DASHBOARD}?encoding=json&message=%ZZ HTTP/1.1\r\n${host()}Authorization: Bearer ${token}\r\n\r\n`;
    expectMalformed(await http1(request));
    // Without a token the credential is checked first: 401, in the same form.
    const anonymous = answerOf(await http1(`GET ${GET_DASHBOARD}?encoding=json&message=%ZZ HTTP/1.1\r\n${host()}\r\n`));
    expect(anonymous.status).toBe(401);
    expect(connectError(anonymous.body)).toEqual({ code: "unauthenticated", reason: "UNAUTHORIZED" });
  });

  it("Connect GET with a malformed base64 message or percent-encoded invalid UTF-8 is 400", async () => {
    for (const query of ["encoding=proto&base64=1&message=%21%21", "encoding=json&message=%ED%A0%80"]) {
      expectMalformed(
        await http1(`GET ${GET_DASHBOARD}?${query} HTTP/1.1\r\n${host()}Authorization: Bearer ${token}\r\n\r\n`),
      );
    }
  });

  it("gRPC refused for a malformed Host still ends with grpc-status 3 and MALFORMED_REQUEST", async () => {
    const frame = envelope(Buffer.alloc(0)).toString("latin1");
    const res = answerOf(
      await http1(
        `POST ${GET_DASHBOARD} HTTP/1.1\r\nHost: [\r\nContent-Type: application/grpc\r\nContent-Length: 5\r\n\r\n${frame}`,
      ),
    );
    expect(res.status).toBe(200);
    // In the trailers, or in the headers of a Trailers-Only answer.
    const status = first(res.trailers, "grpc-status") ?? first(res.headers, "grpc-status");
    const details = first(res.trailers, "grpc-status-details-bin") ?? first(res.headers, "grpc-status-details-bin");
    expect(status).toBe("3");
    expect(errorInfoReason(details)).toBe("MALFORMED_REQUEST");
  });

  it("gRPC-Web to //, a path no URL parser may take, ends with grpc-status 3 in the trailer frame", async () => {
    const res = answerOf(
      await http1(`POST // HTTP/1.1\r\n${host()}Content-Type: application/grpc-web+proto\r\nContent-Length: 0\r\n\r\n`),
    );
    expect(res.status).toBe(200);
    const trailers = grpcWebTrailers(res.body);
    expect(trailers?.["grpc-status"]).toBe("3");
    expect(errorInfoReason(trailers?.["grpc-status-details-bin"])).toBe("MALFORMED_REQUEST");
  });

  // HTTP/1.0 has no trailers, so a gRPC status sent as trailers is lost: the answer must carry it in
  // its headers (gRPC's Trailers-Only form) or refuse the call outright; a bare 200 says nothing.
  it("gRPC over HTTP/1.0 still says how the call ended", async () => {
    const frame = envelope(Buffer.alloc(0)).toString("latin1");
    const outcome = await rawHttp1(
      server.port,
      latin1(`POST ${GET_DASHBOARD} HTTP/1.0\r\nContent-Type: application/grpc\r\nContent-Length: 5\r\n\r\n${frame}`),
      { waitMs: WAIT_MS, head: false },
    );
    const res = answerOf(outcome);
    if (res.status === 200) expect(first(res.headers, "grpc-status")).toBe("16");
    else expect(res.status).toBeGreaterThanOrEqual(400);
  });
});

// ---------------------------------------------------------------------------------------------
// Lone surrogates: in a caller token's claims, and in a gRPC-Web JSON body
// ---------------------------------------------------------------------------------------------

function grpcH2(headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<H2Outcome> {
  const session = http2.connect(`http://127.0.0.1:${server.port}`);
  session.on("error", () => {});
  return h2Request(
    session,
    { ":method": "POST", ":path": GET_DASHBOARD, "content-type": "application/grpc", te: "trailers", ...headers },
    body,
    { waitMs: WAIT_MS },
  ).finally(() => session.close());
}

describe("a caller token whose subject has a lone surrogate", () => {
  const tokens = () => [
    ["sub", loneSubToken, "\\ud800"],
    ["user_id", loneUserIdToken, "\\udfff"],
  ];

  it("is signed with the lone surrogate escaped in its payload, as JSON.stringify writes it", () => {
    for (const [, jwt, escape] of tokens()) {
      expect(Buffer.from(jwt!.split(".")[1]!, "base64url").toString("latin1")).toContain(escape);
    }
  });

  it("is UNAUTHENTICATED on Connect JSON, gRPC, gRPC-Web and REST, never 500", async () => {
    for (const [claim, jwt] of tokens()) {
      const connect = answerOf(
        await http1(
          `POST ${GET_DASHBOARD} HTTP/1.1\r\n${host()}Authorization: Bearer ${jwt}\r\n` +
            `Content-Type: application/json\r\nContent-Length: 18\r\n\r\n{"tenantId":"t-1"}`,
        ),
      );
      expect(connect.status, claim).toBe(401);
      expect(connectError(connect.body), claim).toEqual({ code: "unauthenticated", reason: "UNAUTHORIZED" });

      const rest = answerOf(
        await http1(`GET /api/v1/dashboards/t-1 HTTP/1.1\r\n${host()}Authorization: Bearer ${jwt}\r\n\r\n`),
      );
      expect(rest.status, claim).toBe(401);
      expect(JSON.parse(rest.body.toString()), claim).toMatchObject({ success: false, code: "UNAUTHORIZED" });
      expect(first(rest.headers, "www-authenticate"), claim).toMatch(/^Bearer /);

      const frame = envelope(
        Buffer.from(toBinary(GetDashboardRequestSchema, create(GetDashboardRequestSchema, { tenantId: "t-1" }))),
      );
      const web = answerOf(
        await http1(
          Buffer.concat([
            latin1(
              `POST ${GET_DASHBOARD} HTTP/1.1\r\n${host()}Authorization: Bearer ${jwt}\r\n` +
                `Content-Type: application/grpc-web+proto\r\nContent-Length: ${frame.length}\r\n\r\n`,
            ),
            frame,
          ]),
        ),
      );
      expect(web.status, claim).toBe(200);
      const webTrailers = grpcWebTrailers(web.body);
      expect(webTrailers?.["grpc-status"], claim).toBe("16");
      expect(errorInfoReason(webTrailers?.["grpc-status-details-bin"]), claim).toBe("UNAUTHORIZED");

      const grpc = await grpcH2({ authorization: `Bearer ${jwt}` }, frame);
      expect(grpc.kind, claim).toBe("response");
      if (grpc.kind !== "response") continue;
      expect(grpc.headers[":status"], claim).toBe(200);
      const all = { ...grpc.headers, ...grpc.trailers };
      expect(all["grpc-status"], claim).toBe("16");
      expect(errorInfoReason(all["grpc-status-details-bin"] as string), claim).toBe("UNAUTHORIZED");
    }
  });
});

describe("gRPC-Web JSON bodies that do not decode, with lone surrogates in them", () => {
  it.each([
    ["an unterminated string ending in an escaped lone surrogate", latin1('{"tenantId":"\\ud800'), "MALFORMED_REQUEST"],
    // Bytes that are not UTF-8 become U+FFFD (as connect-node decodes them), which the id rule then refuses.
    [
      "a surrogate encoded in UTF-8 bytes (not UTF-8)",
      latin1('{"tenantId":"\xed\xa0\x80"}'),
      "MALFORMED_REQUEST|VALIDATION_ERROR",
    ],
    ["a lone surrogate as a JSON object key", latin1('{"tenantId":{"\\udfff":1}}'), "MALFORMED_REQUEST"],
    ["a bare 0xFF byte", latin1('{"tenantId":"\xff"}'), "MALFORMED_REQUEST|VALIDATION_ERROR"],
    // Refused when decoded (a protobuf string must be valid Unicode) or by the id rule, either is right.
    [
      "valid JSON whose value is a lone surrogate",
      latin1('{"tenantId":"\\ud800"}'),
      "MALFORMED_REQUEST|VALIDATION_ERROR",
    ],
  ])("%s: HTTP 200, grpc-status 3 in the trailer frame, with an ErrorInfo", async (_name, json, reasons) => {
    const frame = envelope(json);
    const res = answerOf(
      await http1(
        Buffer.concat([
          latin1(
            `POST ${GET_DASHBOARD} HTTP/1.1\r\n${host()}Authorization: Bearer ${token}\r\n` +
              `Content-Type: application/grpc-web+json\r\nContent-Length: ${frame.length}\r\n\r\n`,
          ),
          frame,
        ]),
      ),
    );
    expect(res.status).toBe(200);
    expect(first(res.headers, "content-type")).toMatch(/^application\/grpc-web/);
    const trailers = grpcWebTrailers(res.body);
    expect(trailers?.["grpc-status"]).toBe("3");
    expect(reasons.split("|")).toContain(errorInfoReason(trailers?.["grpc-status-details-bin"]));
    // The message is percent-encoded well-formed text: it decodes, and holds no lone surrogate.
    const message = decodeURIComponent(trailers?.["grpc-message"] ?? "");
    expect(message.isWellFormed()).toBe(true);
  });

  it("the same body over gRPC+JSON on HTTP/2 ends with grpc-status 3, not INTERNAL", async () => {
    const outcome = await grpcH2(
      { authorization: `Bearer ${token}`, "content-type": "application/grpc+json" },
      envelope(latin1('{"tenantId":"\\ud800')),
    );
    expect(outcome.kind).toBe("response");
    if (outcome.kind !== "response") return;
    const all = { ...outcome.headers, ...outcome.trailers };
    expect(all["grpc-status"]).toBe("3");
    expect(errorInfoReason(all["grpc-status-details-bin"] as string)).toBe("MALFORMED_REQUEST");
  });
});

// ---------------------------------------------------------------------------------------------
// HTTP/2 with node:http2, pseudo-headers and all
// ---------------------------------------------------------------------------------------------

const H2_METHOD = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom("GET", "POST") },
  { weight: 3, arbitrary: fc.constantFrom("HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PRI") },
  { weight: 2, arbitrary: fc.constantFrom("get", "G@T", "FOO", "", "M".repeat(100), "GET\x00", "G T") },
);
const h2Authority = (port: number): fc.Arbitrary<http2.OutgoingHttpHeaders> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant({ ":authority": `127.0.0.1:${port}` }) },
    // node's client sends no :authority when a Host header is given.
    { weight: 2, arbitrary: fc.constantFrom({ host: `127.0.0.1:${port}` }, { host: "[" }, { host: "a b" }) },
    {
      weight: 4,
      arbitrary: fc.constantFrom<http2.OutgoingHttpHeaders>(
        { ":authority": "[" },
        { ":authority": "" },
        { ":authority": "a b" },
        { ":authority": "[::1]:99999" },
        { ":authority": "a%zz" },
        { ":authority": "h".repeat(300) },
        { ":authority": "\xc3\xa9" },
        { ":authority": "user@host" },
        { ":authority": "a:b:c" },
        { ":authority": "a", host: "[" },
        { ":authority": "[", host: "a" },
      ),
    },
  );
const H2_EXTRAS: http2.OutgoingHttpHeaders[] = [
  { te: "trailers" },
  { "grpc-timeout": "1S" },
  { "grpc-timeout": "999999999H" },
  { "connect-timeout-ms": "abc" },
  { "grpc-encoding": "gzip" },
  { "grpc-encoding": "zz" },
  { "content-encoding": "br" },
  { "accept-encoding": "*" },
  { "connect-protocol-version": "1" },
  { "x-request-id": "\xff\xfe" },
  { "x-request-id": ["a", "b"] },
  { origin: "http://evil.example" },
  // A repeated Origin (node's types allow one; the wire allows more).
  Object.fromEntries([["origin", ["http://a", "http://b"]]]),
  { "access-control-request-method": "POST" },
  { "content-length": "99" },
  { "content-length": "abc" },
  { connection: "close" },
  { upgrade: "h2c" },
  { cookie: "a=\xed\xa0\x80" },
  { "x-odd": "\x80\xff" },
  { "x-crlf": "a\r\nb" },
  { "X-Upper": "x" },
  { "bad name": "x" },
  { ":scheme": "ftp" },
  { ":scheme": "" },
  { ":protocol": "websocket" },
];

interface H2Fuzz {
  headers: http2.OutgoingHttpHeaders;
  body: Buffer;
}

const h2Fuzz = (port: number, validToken: boolean): fc.Arbitrary<H2Fuzz> =>
  fc
    .record({
      method: H2_METHOD,
      path: fc.oneof({ weight: 12, arbitrary: target }, { weight: 1, arbitrary: fc.constant(undefined) }),
      authority: h2Authority(port),
      contentType,
      authorization: authorization(validToken),
      extras: fc.subarray(H2_EXTRAS, { maxLength: 3 }),
      body,
    })
    .map((r) => ({
      headers: Object.assign(
        { ":method": r.method },
        r.path === undefined ? {} : { ":path": r.path },
        r.authority,
        r.contentType === undefined ? {} : { "content-type": r.contentType },
        r.authorization === undefined ? {} : { authorization: r.authorization },
        ...r.extras,
      ) as http2.OutgoingHttpHeaders,
      body: r.body,
    }));

function showH2(r: H2Fuzz): string {
  const headers = JSON.stringify(r.headers, (_k, v: unknown) =>
    typeof v === "string" && v.length > 300 ? `${v.slice(0, 100)}…(${v.length} chars)` : v,
  );
  return `headers ${headers}, body ${showBytes(r.body)}`;
}

function h2AnswerProblems(r: H2Fuzz, outcome: H2Outcome): string[] {
  switch (outcome.kind) {
    case "refused-by-client":
    case "streaming":
    case "session-ended": // judged with the session (GOAWAY or not)
      return [];
    case "hang":
      return [`no end of stream within ${WAIT_MS} ms (answer begun: ${outcome.headers !== undefined})`];
    case "reset": {
      // A route that answers without reading the body can have begun before nghttp2 finds that the body
      // does not match the content-length the client declared; that reset is the client's own doing.
      const declared = r.headers["content-length"];
      const lied = declared !== undefined && String(declared) !== String(r.body.length);
      return outcome.headers && !lied ? [`reset (code ${outcome.code}) after the answer had begun`] : [];
    }
    case "response":
      break;
  }
  const problems: string[] = [];
  // node gives :status as a number, whatever its header types say.
  const rawStatus: unknown = outcome.headers[":status"];
  const status = typeof rawStatus === "number" ? rawStatus : Number.NaN;
  if (!(status >= 100 && status <= 599)) return [`:status ${String(rawStatus)}`];
  if (status === 500) problems.push("HTTP 500");
  if (r.headers[":method"] === "HEAD") return problems;
  const ct = String(outcome.headers["content-type"] ?? "");
  if (/^application\/grpc-web/i.test(ct)) {
    const trailers = grpcWebTrailers(outcome.body);
    if (!trailers) problems.push("a gRPC-Web answer without a trailer frame");
    else problems.push(...grpcStatusProblems(trailers["grpc-status"], trailers["grpc-status-details-bin"], "gRPC-Web"));
  } else if (/^application\/grpc/i.test(ct)) {
    const all = { ...outcome.headers, ...outcome.trailers };
    problems.push(
      ...grpcStatusProblems(
        all["grpc-status"] as string | undefined,
        all["grpc-status-details-bin"] as string | undefined,
        "gRPC",
      ),
    );
  } else if (/^application\/json/i.test(ct) && status >= 400) {
    problems.push(...jsonErrorProblems(status, outcome.body));
  }
  // gRPC to an RPC gets a gRPC answer with a status, whatever else is wrong with the request.
  const sentType = r.headers["content-type"];
  if (
    r.headers[":method"] === "POST" &&
    typeof sentType === "string" &&
    GRPC_CONTENT_TYPES.has(sentType) &&
    RPC_PATHS.includes(String(r.headers[":path"])) &&
    (status !== 200 || !/^application\/grpc/i.test(ct))
  ) {
    problems.push(`a gRPC request to an RPC answered ${status} ${ct} outside gRPC`);
  }
  return problems;
}

async function fuzzHttp2(validToken: boolean, runs: number): Promise<FuzzReport & { refusedByClient: number }> {
  const report = { violations: new Violations(), outcomes: {} as Record<string, number>, refusedByClient: 0 };
  const base = `http://127.0.0.1:${server.port}`;
  let goaway = false;
  const connect = () => {
    goaway = false;
    const s = http2.connect(base);
    s.on("goaway", () => (goaway = true));
    s.on("error", () => {}); // judged from the streams and the session's state
    return s;
  };
  let session = connect();
  try {
    await fc.assert(
      fc.asyncProperty(h2Fuzz(server.port, validToken), async (r) => {
        const logFrom = server.lines.length;
        const outcome = await h2Request(session, r.headers, r.body, {
          waitMs: WAIT_MS,
          acceptStreaming: (h, data) =>
            streamingWatch(String(r.headers[":path"]))({
              status: Number(h[":status"]),
              contentType: String(h["content-type"] ?? ""),
            }) && (data[0]! & 0x80) === 0,
        });
        tally(
          report.outcomes,
          outcome.kind === "response"
            ? String(outcome.headers[":status"])
            : outcome.kind === "reset"
              ? `reset ${outcome.code}`
              : outcome.kind,
        );
        if (outcome.kind === "refused-by-client") report.refusedByClient++;
        for (const p of h2AnswerProblems(r, outcome)) report.violations.add(p, showH2(r));
        if (session.destroyed || session.closed) {
          // node's client destroys its own session when it refuses some headers; that is not the server's doing.
          if (outcome.kind !== "refused-by-client" && !goaway) {
            report.violations.add("the HTTP/2 connection ended without GOAWAY", showH2(r));
          }
          if (goaway) tally(report.outcomes, "goaway");
          session.destroy();
          session = connect();
        }
        for (const line of newServerFailureLines(logFrom)) {
          report.violations.add(describeLogLine(line), showH2(r));
        }
        if (!alive()) {
          throw new Error(`the server exited during ${showH2(r)}:\n${server.lines.slice(-20).join("\n")}`);
        }
      }),
      { numRuns: runs, endOnFailure: true, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    // The session the fuzz ends on still serves.
    const last = await h2Request(session, { ":method": "GET", ":path": "/healthz" }, Buffer.alloc(0), {
      waitMs: WAIT_MS,
    });
    expect(last.kind === "response" && last.headers[":status"]).toBe(200);
  } finally {
    session.destroy();
  }
  console.log(
    `[raw-requests] HTTP/2 ${validToken ? "authenticated" : "mixed"}: ${JSON.stringify(report.outcomes)}, ` +
      `refused by node's client: ${report.refusedByClient}`,
  );
  return report;
}

describe("raw HTTP/2 requests", () => {
  it(
    "every stream ends with an answer (gRPC ones with a grpc-status) or a clean reset; the session survives",
    async () => {
      const runs = Math.ceil(RUNS / 2);
      const report = await fuzzHttp2(false, runs);
      expect(report.violations.kinds, report.violations.toString()).toEqual([]);
      // Most cases reach the server: node's client refusing them all would make this pass vacuously.
      expect(report.refusedByClient).toBeLessThan(runs / 2);
      expectReachedBothSides(report);
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    "the same with a valid bearer token on every stream",
    async () => {
      const runs = Math.ceil(RUNS / 2);
      const report = await fuzzHttp2(true, runs);
      expect(report.violations.kinds, report.violations.toString()).toEqual([]);
      expect(report.refusedByClient).toBeLessThan(runs / 2);
      expectReachedBothSides(report);
    },
    FUZZ_TIMEOUT_MS,
  );

  it.each([
    [":path //", { ":path": "//" }],
    [":path /\\", { ":path": "/\\" }],
    [":path //:0/api/", { ":path": "//:0/api/" }],
    [":authority [", { ":path": "/healthz", ":authority": "[" }],
    [":authority a b on an RPC", { ":path": GET_DASHBOARD, ":authority": "a b", ":method": "POST" }],
  ])("%s is 400 MALFORMED_REQUEST (or reset by the HTTP/2 layer)", async (_name, headers) => {
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on("error", () => {});
    try {
      const outcome = await h2Request(session, { ":method": "GET", ...headers }, Buffer.alloc(0), { waitMs: WAIT_MS });
      if (outcome.kind === "reset") return; // nghttp2 refused it before the server saw it
      expect(outcome.kind).toBe("response");
      if (outcome.kind !== "response") return;
      expect(outcome.headers[":status"]).toBe(400);
      expect(connectError(outcome.body)).toEqual({ code: "invalid_argument", reason: "MALFORMED_REQUEST" });
      expect(session.destroyed).toBe(false);
    } finally {
      session.close();
    }
  });

  // node's client always sends :authority (or Host); these go out as raw frames with neither. nghttp2
  // may refuse such a request itself (RST_STREAM); what must not happen is silence, a dropped
  // connection or a wrong answer. The same frames with :authority show the raw client works.
  it.each([
    { name: "GET /healthz", method: "GET", path: "/healthz", contentType: undefined, body: "", status: 200 },
    { name: "GET //", method: "GET", path: "//", contentType: undefined, body: "", status: 400 },
    {
      name: "a gRPC health check",
      method: "POST",
      path: "/grpc.health.v1.Health/Check",
      contentType: "application/grpc",
      body: "\x00\x00\x00\x00\x00",
      status: 200,
    },
    {
      name: "a Connect call without a token",
      method: "POST",
      path: GET_DASHBOARD,
      contentType: "application/json",
      body: "{}",
      status: 401,
    },
  ])("without :authority or Host, $name is answered $status or reset", async (c) => {
    const pseudo: [string, string][] = [
      [":method", c.method],
      [":scheme", "http"],
      [":path", c.path],
    ];
    const regular: [string, string][] = c.contentType === undefined ? [] : [["content-type", c.contentType]];
    const requestBody = latin1(c.body);
    const bare = await rawH2Request(server.port, [...pseudo, ...regular], requestBody, WAIT_MS);
    if (bare.kind === "reset") expect(bare.code).toBe(http2.constants.NGHTTP2_PROTOCOL_ERROR);
    else expect(bare).toEqual({ kind: "response", status: c.status });
    // Pseudo-header fields come before all others (RFC 9113 §8.3).
    const authority: [string, string] = [":authority", `127.0.0.1:${server.port}`];
    const withAuthority = await rawH2Request(server.port, [...pseudo, authority, ...regular], requestBody, WAIT_MS);
    expect(withAuthority).toEqual({ kind: "response", status: c.status });
  });
});

// ---------------------------------------------------------------------------------------------
// After all of it
// ---------------------------------------------------------------------------------------------

describe("after every request above", () => {
  it("the process is alive, healthy, and never reached its last-resort boundary", async () => {
    expect(server.child.exitCode).toBeNull();
    expect(server.child.signalCode).toBeNull();

    const health = await fetch(`${server.baseUrl}/healthz`);
    expect(health.status).toBe(200);

    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    const unexpected = metrics
      .split("\n")
      .filter((l) => l.startsWith("dashboard_unexpected_errors_total"))
      .filter((l) => Number(l.split(/\s+/).at(-1)) !== 0);
    expect(unexpected, "dashboard_unexpected_errors_total is absent or 0 for every where").toEqual([]);

    const lastResort = server.lines.filter((l) => /unexpected error|unhandled promise rejection/i.test(l));
    expect(lastResort, lastResort.join("\n")).toEqual([]);
  });
});
