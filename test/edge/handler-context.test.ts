import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pino from "pino";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { loadConfig } from "../../src/config/config.js";
import { ServiceError } from "../../src/errors/service-error.js";
import { createClientIdentity } from "../../src/edge/client-identity.js";
import { createEdge } from "../../src/edge/edge.js";
import { RoutingTable } from "../../src/edge/routes.js";
import { rpcMethods } from "../../src/edge/rpc/rpc-method.js";
import { listen, type RunningServer } from "../../src/listener/server.js";
import { Metrics } from "../../src/ops/metrics.js";
import { dashboardClient, transports } from "../helpers/clients.js";

/**
 * What a unary handler sees of its context (the edge's CallContext, not
 * connect's createHandlerContext) and what it sets on it, end to end through
 * every protocol: request headers as sent, a deadline from the client's
 * timeout, a live signal, and response headers and trailers that reach the
 * client where its protocol carries them. The guard here admits every call:
 * the test is about the context, not about who may call.
 */
let server: RunningServer;
let seen: HandlerContext[] = [];
let abortReason: unknown;

beforeAll(async () => {
  const config = loadConfig({ NODE_ENV: "test", AUTH_JWT_SECRET: "x".repeat(32), LOG_LEVEL: "silent" });
  const rpcs = rpcMethods(
    DashboardService,
    {
      getDashboard(_req, ctx) {
        seen.push(ctx);
        ctx.responseHeader.set("x-set-by-handler", "header");
        ctx.responseTrailer.set("x-set-by-handler-trailer", "trailer");
        return {
          dashboard: {
            tenantId: ctx.requestHeader.get("x-echo") ?? "",
            name: `${[...ctx.requestHeader.keys()].some((k) => k.startsWith(":"))}/${ctx.signal.aborted}/${ctx.timeoutMs() ?? "none"}`,
          },
        };
      },
      async createDashboard(_req, ctx) {
        seen.push(ctx);
        // Waits for its signal alone: it ends only when the call's deadline does.
        abortReason = await new Promise((resolve) =>
          ctx.signal.addEventListener("abort", () => resolve(ctx.signal.reason), { once: true }),
        );
        return {};
      },
      listDashboards(_req, ctx) {
        seen.push(ctx);
        return { dashboards: [], nextPageToken: "", totalSize: 0 };
      },
    },
    { access: "caller", maxRequestBytes: 4096 },
  );
  const edge = createEdge({
    routes: new RoutingTable(rpcs, [], []),
    rpc: {
      guard: () =>
        Promise.resolve({
          caller: { subject: "s", organizationId: "o", isAdmin: true, tenantIds: new Set<string>() },
          rateLimit: undefined,
        }),
      maxTimeoutMs: config.edge.rpcMaxTimeoutMs,
      defaultTimeoutMs: config.edge.rpcDefaultTimeoutMs,
    },
    cors: config.cors,
    identity: createClientIdentity({ trustedProxies: [], forwardedHeader: config.edge.forwardedHeader }),
    bodyBudget: { maxBytes: 1 << 20, maxUnauthenticatedBytes: 1 << 16 },
    log: pino({ level: "silent" }),
    metrics: new Metrics(),
  });
  server = await listen(edge.handler, "127.0.0.1", 0, {
    limits: config.listener,
    proxyProtocol: false,
    trustsPeer: () => false,
  });
});

afterAll(async () => {
  await server.close();
});

describe("the handler context of a unary call", () => {
  for (const name of Object.keys(transports("http://127.0.0.1:1"))) {
    it(`${name}: request headers in, a live deadline, and the handler's headers and trailers out`, async () => {
      const client = dashboardClient(transports(`http://127.0.0.1:${server.port}`)[name]!);
      seen = [];
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const answer = await client.getDashboard(
        { tenantId: "t" },
        {
          headers: { "x-echo": "echoed", authorization: "Bearer anything" },
          timeoutMs: 60_000,
          onHeader: (h) => (header = h),
          onTrailer: (t) => (trailer = t),
        },
      );
      expect(answer.dashboard?.tenantId).toBe("echoed");
      const [pseudo, aborted, remaining] = answer.dashboard!.name.split("/");
      // No HTTP/2 pseudo-header reaches the handler; the signal is live; the deadline is the client's.
      expect([pseudo, aborted]).toEqual(["false", "false"]);
      expect(Number(remaining)).toBeGreaterThan(50_000);
      expect(Number(remaining)).toBeLessThanOrEqual(60_000);
      expect(header?.get("x-set-by-handler")).toBe("header");
      expect(trailer?.get("x-set-by-handler-trailer")).toBe("trailer");
      expect(seen).toHaveLength(1);
      expect(seen[0]!.method.name).toBe("GetDashboard");
      expect(seen[0]!.service.typeName).toBe("dashboard.v1.DashboardService");
    });
  }

  it("a handler that sets no headers answers with the pipeline's alone", async () => {
    const client = dashboardClient(transports(`http://127.0.0.1:${server.port}`)["gRPC (HTTP/2)"]!);
    let header: Headers | undefined;
    await client.listDashboards({}, { headers: { authorization: "Bearer x" }, onHeader: (h) => (header = h) });
    expect(header?.get("x-set-by-handler")).toBeNull();
    expect(header?.get("content-type")).toBe("application/grpc+proto");
  });

  it("its signal aborts when the client's deadline passes, with the call's own reason", async () => {
    const client = dashboardClient(transports(`http://127.0.0.1:${server.port}`)["gRPC (HTTP/2)"]!);
    const failure = await client
      .createDashboard({}, { headers: { authorization: "Bearer x" }, timeoutMs: 300 })
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ConnectError);
    expect((failure as ConnectError).code).toBe(Code.DeadlineExceeded);
    // The server's timer or the client's reset, whichever comes first: the call's own reason either way,
    // never a bare AbortError.
    await expect.poll(() => abortReason).toBeInstanceOf(ServiceError);
    expect(["DEADLINE_EXCEEDED", "CANCELED"]).toContain((abortReason as ServiceError).reason);
  });
});
