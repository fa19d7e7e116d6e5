import http from "node:http";
import { once } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import {
  DashboardService,
  ListDashboardsRequestSchema,
  ListDashboardsResponseSchema,
  type ListDashboardsRequest,
  type ListDashboardsResponse,
} from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient, transports } from "../helpers/clients.js";
import type { UnaryMethod } from "../helpers/grpc-js.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../helpers/process.js";
import { bearer, callerToken, TEST_JWT_SECRET } from "../helpers/tokens.js";

const GRACE_SECONDS = 8;

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

function serverEnv(): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "1000000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000",
    RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "1000000",
  };
}

/** Resolves when the process has logged a line with this message. */
async function logged(server: ServerProcess, msg: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    for (const line of server.lines) {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === msg) return entry;
      } catch {
        // not a log line
      }
    }
    if (Date.now() > until) throw new Error(`no "${msg}" log line:\n${server.lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts a Connect JSON call over HTTP/1.1 and stops halfway through its body.
 * `Expect: 100-continue` makes the server confirm it has taken the request
 * (Node answers 100 Continue just before handing it to the handler), so the
 * call is provably in flight before the test goes on.
 */
async function halfSentCall(baseUrl: string, token: string, body: string) {
  const bytes = Buffer.from(body);
  const req = http.request(`${baseUrl}/dashboard.v1.DashboardService/CreateDashboard`, {
    method: "POST",
    agent: false,
    headers: {
      "content-type": "application/json",
      "content-length": String(bytes.length),
      authorization: `Bearer ${token}`,
      expect: "100-continue",
    },
  });
  const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      req.once("error", reject);
      req.once("response", (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.once("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      });
    },
  );
  req.flushHeaders();
  await once(req, "continue");
  req.write(bytes.subarray(0, 10));
  return {
    finish() {
      req.end(bytes.subarray(10));
      return response;
    },
  };
}

/** ListDashboards through @grpc/grpc-js, the most common gRPC client in Node (it retries refused streams itself). */
function grpcJsLister(port: number, token: string) {
  const Client = grpc.makeGenericClientConstructor(
    {
      listDashboards: {
        path: `/${DashboardService.typeName}/ListDashboards`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: ListDashboardsRequest) => Buffer.from(toBinary(ListDashboardsRequestSchema, m)),
        requestDeserialize: (b: Buffer) => fromBinary(ListDashboardsRequestSchema, b),
        responseSerialize: (m: ListDashboardsResponse) => Buffer.from(toBinary(ListDashboardsResponseSchema, m)),
        responseDeserialize: (b: Buffer) => fromBinary(ListDashboardsResponseSchema, b),
      },
    },
    "DashboardService",
  );
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return {
    list: () =>
      new Promise<void>((resolve, reject) =>
        (client as unknown as Record<string, UnaryMethod>).listDashboards!(
          create(ListDashboardsRequestSchema, { pageSize: 5 }),
          metadata,
          { deadline: Date.now() + 10_000 },
          (err: grpc.ServiceError | null) => (err ? reject(err) : resolve()),
        ),
      ),
    close: () => client.close(),
  };
}

/**
 * How a failed call ended, as the client saw it. A call the client had just queued on a
 * connection when the server's GOAWAY reached it is refused by the client's own HTTP/2 stack
 * with REFUSED_STREAM, which HTTP/2 defines as "not processed, safe to retry" (RFC 9113 §8.7):
 * grpc-js retries such calls (and then reports UNAVAILABLE), the Connect client surfaces them as
 * INTERNAL with that reason. They are counted apart, never hidden.
 */
function outcomeOf(name: string, err: unknown): string {
  const e = ConnectError.from(err);
  if (e.code === Code.Unavailable) return `${name}: Unavailable`;
  if (/NGHTTP2_REFUSED_STREAM/.test(e.message)) return `${name}: refused unprocessed (REFUSED_STREAM)`;
  return `${name}: ${Code[e.code]} (${e.message})`;
}

describe("SIGTERM", () => {
  it("lets an in-flight call finish, then exits 0 within the grace period", async () => {
    const server = await spawnServer(serverEnv());
    const token = await callerToken({ org: "org-inflight", admin: true });
    const call = await halfSentCall(
      server.baseUrl,
      token,
      JSON.stringify({ tenantId: "t-1", workspaceId: "w", name: "Late" }),
    );

    const exit = server.stop("SIGTERM");
    await logged(server, "draining: refusing new calls, finishing in-flight ones");
    // Draining has started and the call is still open: its answer must be a normal one.
    const answer = await call.finish();
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({
      dashboard: { tenantId: "t-1", name: "Late", organizationId: "org-inflight" },
    });

    expect(await exit).toBe(0);
    await logged(server, "stopped");
    // Within the grace period: the server did not have to cut anything when it ran out.
    expect(server.lines.some((l) => l.includes("grace period over"))).toBe(false);
  });

  it("under load over every protocol: each call either completes or gets UNAVAILABLE, and the process exits 0", async () => {
    const server = await spawnServer(serverEnv());
    const token = await callerToken({ org: "org-load", admin: true });
    const outcomes = new Map<string, number>();
    const count = (key: string) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    let exited = false;
    let signalled = false;
    let okAfterSignal = 0;

    const worker = async (name: string, transport: Transport, n: number) => {
      const client = dashboardClient(transport);
      for (let i = 0; ; i++) {
        const wasExited = exited;
        try {
          if (i % 2 === 0) {
            await client.createDashboard(
              { tenantId: `${name.replace(/\W/g, "")}-${n}-${i}`, workspaceId: "w", name: "Load" },
              bearer(token),
            );
          } else {
            await client.listDashboards({ pageSize: 5 }, bearer(token));
          }
          count("OK");
          if (signalled) okAfterSignal++;
        } catch (err) {
          count(outcomeOf(name, err));
        }
        // Keep calling until one call has been made after the process is gone.
        if (wasExited) return;
      }
    };
    const grpcJsWorker = async () => {
      const client = grpcJsLister(server.port, token);
      try {
        for (;;) {
          const wasExited = exited;
          try {
            await client.list();
            count("OK");
            if (signalled) okAfterSignal++;
          } catch (err) {
            const e = err as grpc.ServiceError;
            count(
              `grpc-js: ${e.code === grpc.status.UNAVAILABLE ? "Unavailable" : `${grpc.status[e.code]} (${e.details})`}`,
            );
          }
          if (wasExited) return;
        }
      } finally {
        client.close();
      }
    };
    const workers = [
      ...Object.entries(transports(server.baseUrl)).flatMap(([name, transport]) =>
        [0, 1, 2].map((n) => worker(name, transport, n)),
      ),
      grpcJsWorker(),
      grpcJsWorker(),
    ];

    // Let the load build up, then signal in the middle of it.
    while ((outcomes.get("OK") ?? 0) < 200) await new Promise((r) => setTimeout(r, 10));
    const signalledAt = Date.now();
    signalled = true;
    const code = await server.stop("SIGTERM");
    const tookMs = Date.now() - signalledAt;
    exited = true;
    await Promise.all(workers);

    expect(code).toBe(0);
    // Within the grace period: every call in flight finished before it ran out, nothing was cut.
    expect(server.lines.some((l) => l.includes("grace period over"))).toBe(false);
    const codes = [...outcomes.keys()];
    // Nothing but completed calls, UNAVAILABLE (refused while draining, or no server left to connect
    // to) and HTTP/2 streams refused unprocessed; no call was cut off after the server took it.
    expect(codes.filter((k) => k !== "OK" && !k.endsWith(": Unavailable") && !k.endsWith("(REFUSED_STREAM)"))).toEqual(
      [],
    );
    // Every protocol, grpc-js included, saw the server go away as UNAVAILABLE.
    for (const name of [...Object.keys(transports("http://x")), "grpc-js"])
      expect(codes).toContain(`${name}: Unavailable`);
    expect(outcomes.get("OK")).toBeGreaterThanOrEqual(200);
    console.info(
      `SIGTERM under load: ${JSON.stringify(Object.fromEntries(outcomes))}; ${okAfterSignal} completed after the signal; exit after ${tookMs} ms`,
    );
  });
});
