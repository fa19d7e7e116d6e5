import http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";

let db: TestDatabase;
let server: ServerProcess;
let token: string;
beforeAll(async () => {
  db = await createTestDatabase();
  server = await spawnServer({
    DATABASE_URL: db.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: "info",
    MAX_REQUEST_BYTES: "1024",
    RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "1000",
  });
  token = await callerToken({ org: "org-observed", admin: true });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

const API = "/dashboard.v1.DashboardService";

/** A raw HTTP/1.1 exchange on its own connection: nothing normalizes the request line. */
function raw(request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(server.port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => resolve(answer));
    socket.end(request);
  });
}

/** One HTTP/2 request; resolves with the status and grpc-status, wherever it came. */
function h2(
  headers: http2.OutgoingHttpHeaders,
  body: Buffer = Buffer.alloc(0),
): Promise<{ status: number; grpc?: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(server.baseUrl);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ...headers });
    let status = 0;
    let grpc: string | undefined;
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) grpc = String(h["grpc-status"]);
    });
    stream.on("trailers", (t: http2.IncomingHttpHeaders) => {
      if (t["grpc-status"] !== undefined) grpc = String(t["grpc-status"]);
    });
    stream.on("data", () => {});
    stream.on("end", () => {
      session.close();
      resolve({ status, grpc });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

const frame = (payload: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0, payload.length]), payload]);

describe("the one observation point", () => {
  it("counts every refusal the framework makes, with its code and reason, and logs it", async () => {
    const auth = `Bearer ${token}`;
    // A target no route can have, before any route is resolved.
    expect(await raw("GET // HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    // An unknown RPC, asked in gRPC.
    expect(
      await h2({ ":path": "/nope.v1.Nothing/Here", "content-type": "application/grpc" }, frame(Buffer.alloc(0))),
    ).toEqual({
      status: 200,
      grpc: "12",
    });
    // A content type no protocol on the path speaks, a method it does not take.
    expect(
      await raw(
        `POST ${API}/GetDashboard HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`,
      ),
    ).toMatch(/^HTTP\/1\.1 415 /);
    expect(await raw(`GET ${API}/CreateDashboard HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 405 /,
    );
    // A malformed deadline, an unknown compression, an undecodable frame, an oversized message, no credential.
    expect(
      await h2(
        {
          ":path": `${API}/GetDashboard`,
          "content-type": "application/grpc",
          "grpc-timeout": "soon",
          authorization: auth,
        },
        frame(Buffer.alloc(0)),
      ),
    ).toMatchObject({ grpc: "3" });
    expect(
      await h2(
        {
          ":path": `${API}/GetDashboard`,
          "content-type": "application/grpc",
          "grpc-encoding": "snappy",
          authorization: auth,
        },
        frame(Buffer.alloc(0)),
      ),
    ).toMatchObject({ grpc: "12" });
    expect(
      await h2(
        { ":path": `${API}/GetDashboard`, "content-type": "application/grpc", authorization: auth },
        frame(Buffer.from([0xff, 0xff, 0xff])),
      ),
    ).toMatchObject({ grpc: "3" });
    expect(
      await h2(
        { ":path": `${API}/GetDashboard`, "content-type": "application/grpc", authorization: auth },
        frame(Buffer.alloc(2048, 1)),
      ),
    ).toMatchObject({ grpc: "8" });
    expect(
      await h2({ ":path": `${API}/GetDashboard`, "content-type": "application/grpc" }, frame(Buffer.alloc(0))),
    ).toMatchObject({
      grpc: "16",
    });

    const expected: [method: string, code: string, protocol: string, reason: string][] = [
      ["invalid", "INVALID_ARGUMENT", "http", "MALFORMED_REQUEST"],
      ["unknown", "UNIMPLEMENTED", "grpc", "ROUTE_NOT_FOUND"],
      [`dashboard.v1.DashboardService/GetDashboard`, "INVALID_ARGUMENT", "http", "UNSUPPORTED_MEDIA_TYPE"],
      [`dashboard.v1.DashboardService/CreateDashboard`, "INVALID_ARGUMENT", "http", "METHOD_NOT_ALLOWED"],
      [`dashboard.v1.DashboardService/GetDashboard`, "INVALID_ARGUMENT", "grpc", "MALFORMED_REQUEST"],
      [`dashboard.v1.DashboardService/GetDashboard`, "UNIMPLEMENTED", "grpc", "UNSUPPORTED_COMPRESSION"],
      [`dashboard.v1.DashboardService/GetDashboard`, "RESOURCE_EXHAUSTED", "grpc", "MESSAGE_TOO_LARGE"],
      [`dashboard.v1.DashboardService/GetDashboard`, "UNAUTHENTICATED", "grpc", "UNAUTHORIZED"],
    ];
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    for (const [method, code, protocol, reason] of expected) {
      const series = `dashboard_rpc_calls_total{method="${method}",code="${code}",protocol="${protocol}",reason="${reason}"}`;
      expect(metrics, series).toMatch(new RegExp(`^${escape(series)} [1-9]`, "m"));
    }
    // The undecodable frame and the bad deadline are both MALFORMED_REQUEST on GetDashboard over gRPC.
    expect(metrics).toMatch(
      /^dashboard_rpc_calls_total\{method="dashboard.v1.DashboardService\/GetDashboard",code="INVALID_ARGUMENT",protocol="grpc",reason="MALFORMED_REQUEST"\} 2$/m,
    );
    // Each also has its line in the call log, with the same code and reason.
    while (callLines().length < 9) await new Promise((r) => setTimeout(r, 10));
    for (const [method, code, , reason] of expected) {
      expect(
        callLines().some((l) => l.method === method && l.code === code && l.reason === reason),
        `${method} ${reason}`,
      ).toBe(true);
    }
    // None of it reached the last resort.
    expect(metrics).not.toMatch(/^dashboard_unexpected_errors_total\{[^}]*\} [1-9]/m);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

function callLines(): Record<string, unknown>[] {
  return server.lines.flatMap((line) => {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      return entry.msg === "call" ? [entry] : [];
    } catch {
      return [];
    }
  });
}
