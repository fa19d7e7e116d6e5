import type http from "node:http";
import type http2 from "node:http2";
import type net from "node:net";
import type { AddressInfo } from "node:net";
import { createContextKey, createContextValues, type Interceptor } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { createCallerVerifier } from "../../src/auth/caller-verifier.js";
import { keyEncryptionKeys } from "../../src/app.js";
import { Deadline } from "../../src/call/deadline.js";
import { createCallGuard } from "../../src/call/guard.js";
import { callScopeKey } from "../../src/call/handler-context.js";
import { systemClock } from "../../src/clock.js";
import type { Config } from "../../src/config/config.js";
import { answerHeaders, type AnswerState } from "../../src/edge/answer-headers.js";
import { earlyHeaders } from "../../src/edge/http-types.js";
import { createClientIdentity } from "../../src/edge/client-identity.js";
import { createCors } from "../../src/edge/cors.js";
import { REQUEST_ID_HEADER, requestIdFor } from "../../src/edge/request-id.js";
import { parseConnectTimeout, parseGrpcTimeout } from "../../src/edge/rpc/timeouts.js";
import { toConnectError, toServiceError } from "../../src/errors/details.js";
import { createOnePortListener } from "../../src/listener/one-port.js";
import { peerAddressOf } from "../../src/listener/peer.js";
import { createRateLimiter } from "../../src/ratelimit/create-rate-limiter.js";
import { RateLimitRefusal } from "../../src/ratelimit/headers.js";
import { dashboardServiceImpl } from "../../src/service/connect-service.js";
import { createDomain } from "../../src/service/domain.js";
import { KeySealer } from "../../src/tokens/key-sealing.js";
import { postgresSql } from "../../src/store/postgres-sql.js";

/**
 * The REFERENCE the edge is compared with: the same DashboardService
 * implementation over the same database, served by connect-node's own
 * adapter (connectNodeAdapter) instead of src/edge/rpc/. What our pipeline
 * does around a call (the guard, the call scope, the rate-limit headers, the
 * error registry) is reproduced with connect's public interceptor API, and
 * what the edge does outside any protocol (x-request-id, CORS) by a thin
 * wrapper, so that neither shows up as a difference. It listens on the
 * service's own one-port listener, so it speaks h2c and HTTP/1.1 on one port
 * under the same listener limits.
 */
export interface ReferenceServer {
  port: number;
  baseUrl: string;
  stop(): Promise<void>;
}

/** The client address the edge would compute for the request, handed to the interceptor. */
const clientAddressKey = createContextKey<string>("unknown", {
  description: "the client address, as the edge sees it",
});

export async function startReferenceServer(config: Config, log: Logger): Promise<ReferenceServer> {
  if (config.database.kind !== "postgres") throw new Error("the reference server needs the test PostgreSQL");
  const sql = postgresSql(config.database.url, config.database.poolMax);
  const limiter = createRateLimiter(config, log);
  const domain = await createDomain(config, sql, systemClock, log, {
    sealer: await KeySealer.create(await keyEncryptionKeys(config, log)),
    rotationBudget: (organizationId) => limiter.consumeKeyRotation(organizationId),
  });
  if (config.auth.mode === "development") throw new Error("the reference server needs a configured caller secret");
  const verifyCaller = await createCallerVerifier(config.auth, undefined, systemClock);
  const guard = createCallGuard(verifyCaller, limiter);
  const identity = createClientIdentity({
    trustedProxies: config.edge.trustedProxies,
    forwardedHeader: config.edge.forwardedHeader,
  });

  // What src/edge/pipeline.ts does around a call, with connect's public API.
  const pipelineInterceptor: Interceptor = (next) => async (req) => {
    const state: AnswerState = { rateLimit: undefined, refused: false };
    const grpcFamily = /^application\/grpc/i.test(req.header.get("content-type") ?? "");
    // connect-node has already refused malformed and too-long timeouts before any interceptor runs.
    const timeoutMs = grpcFamily
      ? parseGrpcTimeout(req.header.get("grpc-timeout") ?? undefined, config.edge.rpcMaxTimeoutMs)
      : parseConnectTimeout(req.header.get("connect-timeout-ms") ?? undefined, config.edge.rpcMaxTimeoutMs);
    const deadline = new Deadline(timeoutMs ?? config.edge.rpcDefaultTimeoutMs);
    const onGone = () => deadline.cancel();
    req.signal.addEventListener("abort", onGone);
    try {
      const guarded = await guard({
        method: req.method.name,
        authorization: req.header.get("authorization"),
        clientAddress: req.contextValues.get(clientAddressKey),
      });
      state.rateLimit = guarded.rateLimit;
      req.contextValues.set(callScopeKey, { caller: guarded.caller, deadline });
      const res = await next(req);
      for (const [name, value] of Object.entries(answerHeaders(state, undefined))) res.header.set(name, value);
      return res;
    } catch (thrown) {
      const err = toServiceError(thrown);
      if (err instanceof RateLimitRefusal) {
        state.rateLimit = err.outcome;
        state.refused = true;
      }
      const connectError = toConnectError(err);
      for (const [name, value] of Object.entries(answerHeaders(state, err))) connectError.metadata.set(name, value);
      throw connectError;
    } finally {
      req.signal.removeEventListener("abort", onGone);
      deadline.dispose();
    }
  };

  const adapter = connectNodeAdapter({
    routes: (router) => router.service(DashboardService, dashboardServiceImpl(domain.dashboards, domain.embed)),
    interceptors: [pipelineInterceptor],
    acceptCompression: [compressionGzip, compressionBrotli],
    readMaxBytes: config.maxRequestBytes,
    maxTimeoutMs: config.edge.rpcMaxTimeoutMs,
    contextValues: (req) => {
      const socket = "stream" in req ? req.stream.session?.socket : req.socket;
      return createContextValues().set(clientAddressKey, identity(peerAddressOf(socket), req.headers));
    },
  });

  // What the edge does outside the protocol: the request id on every answer, CORS on the API's paths.
  const cors = createCors(config.cors);
  const apiPaths = new Set(DashboardService.methods.map((m) => `/${DashboardService.typeName}/${m.name}`));
  const handler = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    res.setHeader(REQUEST_ID_HEADER, requestIdFor(req.headers[REQUEST_ID_HEADER]));
    const path = (req.url ?? "").split("?", 1)[0] ?? "";
    if (apiPaths.has(path) && cors(req, res) === "preflight-answered") return;
    // connect-node writes its answers itself, so CORS's early headers go the progressive way.
    for (const [name, value] of Object.entries(earlyHeaders(res) ?? {})) res.setHeader(name, value);
    adapter(req, res);
  };

  const listener = createOnePortListener(handler, {
    limits: config.listener,
    proxyProtocol: false,
    trustsPeer: () => false,
  });
  const sockets = new Set<net.Socket>();
  listener.tcp.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    listener.tcp.once("error", reject);
    listener.tcp.listen(0, "127.0.0.1", () => {
      listener.tcp.off("error", reject);
      resolve();
    });
  });
  const port = (listener.tcp.address() as AddressInfo).port;
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    async stop() {
      const closed = new Promise<void>((resolve) => listener.tcp.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      await domain.close();
      await limiter.close();
      await sql.close();
    },
  };
}
