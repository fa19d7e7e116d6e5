import { execFileSync } from "node:child_process";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  CreateIframeTokenRequestSchema,
  DashboardService,
  GetDashboardRequestSchema,
  ListDashboardsRequestSchema,
} from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { TEST_KEY_ENCRYPTION_KEYS } from "../../test/helpers/keys.js";
import { createTestDatabase } from "../../test/helpers/postgres.js";
import { spawnServer, type ServerProcess } from "../../test/helpers/process.js";
import { PrivateRedis } from "../../test/helpers/redis.js";
import { callerToken, TEST_JWT_SECRET } from "../../test/helpers/tokens.js";
import { grpcFrame } from "./h2load.js";

/** The service as the benchmark drives it, with its caller and the request bodies of each scenario. */
export interface BenchService {
  service: ServerProcess;
  /** The benchmark's own Redis, so its command counts are the service's alone. */
  redisUrl: string;
  /** An admin caller of the benchmark's organization. */
  token: string;
  bodies: {
    /** gRPC frames of GetDashboard, CreateIframeToken and ListDashboards (a page of 50). */
    get: Buffer;
    mint: Buffer;
    list: Buffer;
    /** GetDashboard's request in Connect JSON. */
    json: Buffer;
  };
  stop: () => Promise<void>;
}

/**
 * Builds the service and starts it as production runs it (compiled, NODE_ENV=production,
 * LOG_LEVEL=warn) on a fresh database and a Redis of its own, with 50 dashboards (one
 * tenant's to read and mint for, a page of 50 to list) and a check that every scenario's
 * call answers before anything is timed. The limiter runs on every call; its budgets are
 * only set out of reach.
 */
export async function startBenchService(nodeArgs: string[] = []): Promise<BenchService> {
  execFileSync("npm", ["run", "-s", "build"], { stdio: "inherit" });
  const db = await createTestDatabase();
  const redis = await PrivateRedis.start();
  const stopStorage = async () => {
    await redis.stop();
    await db.drop();
  };
  let service: ServerProcess;
  try {
    service = await spawnServer(
      {
        NODE_ENV: "production",
        DATABASE_URL: db.url,
        REDIS_URL: redis.url,
        RATE_LIMIT_REDIS_KEY_PREFIX: `bench:${Date.now()}`,
        AUTH_JWT_SECRET: TEST_JWT_SECRET,
        KEY_ENCRYPTION_KEYS: TEST_KEY_ENCRYPTION_KEYS,
        LOG_LEVEL: "warn",
        RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "1000000000",
        RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000000",
      },
      30_000,
      "build",
      nodeArgs,
    );
  } catch (err) {
    await stopStorage();
    throw err;
  }
  const stop = async () => {
    await service.stop();
    await stopStorage();
  };
  try {
    const token = await callerToken({ org: "bench-org", admin: true, sub: "bench", expiresIn: 24 * 3600 });
    const client = createClient(
      DashboardService,
      createConnectTransport({ baseUrl: service.baseUrl, httpVersion: "1.1" }),
    );
    const auth = { headers: { authorization: `Bearer ${token}` } };
    const { dashboard } = await client.createDashboard(
      { tenantId: "bench-tenant", workspaceId: "bench-workspace", name: "Benchmark dashboard" },
      auth,
    );
    for (let i = 1; i < 50; i++) {
      await client.createDashboard(
        { tenantId: `bench-tenant-${i}`, workspaceId: "bench-workspace", name: `D${i}` },
        auth,
      );
    }
    await client.getDashboard({ tenantId: "bench-tenant" }, auth);
    const page = await client.listDashboards({ pageSize: 50 }, auth);
    if (page.dashboards.length !== 50) throw new Error(`ListDashboards gave ${page.dashboards.length}, not 50`);
    const restGet = await fetch(`${service.baseUrl}/api/v1/dashboards/bench-tenant`, auth);
    if (restGet.status !== 200) throw new Error(`REST GET answered ${restGet.status}`);
    const mint = { tenantId: "bench-tenant", workspaceId: "bench-workspace", dashboardId: dashboard!.id };
    await client.createIframeToken(mint, auth);
    return {
      service,
      redisUrl: redis.url,
      token,
      bodies: {
        get: grpcFrame(
          toBinary(GetDashboardRequestSchema, create(GetDashboardRequestSchema, { tenantId: "bench-tenant" })),
        ),
        mint: grpcFrame(toBinary(CreateIframeTokenRequestSchema, create(CreateIframeTokenRequestSchema, mint))),
        list: grpcFrame(toBinary(ListDashboardsRequestSchema, create(ListDashboardsRequestSchema, { pageSize: 50 }))),
        json: Buffer.from(JSON.stringify({ tenantId: "bench-tenant" })),
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
