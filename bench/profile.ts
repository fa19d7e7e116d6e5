/**
 * `npm run bench:profile`: the compiled service under one benchmark load, with
 * V8's CPU profiler on (node --cpu-prof), and the profile summarized.
 *
 *   npm run bench:profile -- --scenario grpc-get --seconds 10
 *
 * Scenarios: grpc-get, json-get, mint, list. The profile is written under
 * bench/results/profiles/ (open it in Chrome DevTools or speedscope).
 */
import { execFileSync } from "node:child_process";
import { mkdir, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  CreateIframeTokenRequestSchema,
  DashboardService,
  GetDashboardRequestSchema,
  ListDashboardsRequestSchema,
} from "../gen/dashboard/v1/dashboard_service_pb.js";
import { createTestDatabase } from "../test/helpers/postgres.js";
import { TEST_KEY_ENCRYPTION_KEYS } from "../test/helpers/keys.js";
import { PrivateRedis } from "../test/helpers/redis.js";
import { spawnServer } from "../test/helpers/process.js";
import { callerToken, TEST_JWT_SECRET } from "../test/helpers/tokens.js";
import { grpcFrame, grpcHeaders, h2load } from "./lib/h2load.js";

const { values: args } = parseArgs({
  options: {
    scenario: { type: "string", default: "grpc-get" },
    seconds: { type: "string", default: "10" },
  },
});
const dir = resolve("bench/results/profiles");
await mkdir(dir, { recursive: true });
const before = new Set(await readdir(dir));
execFileSync("npm", ["run", "-s", "build"], { stdio: "inherit" });
const db = await createTestDatabase();
const redis = await PrivateRedis.start();
const service = await spawnServer(
  {
    NODE_ENV: "production",
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    KEY_ENCRYPTION_KEYS: TEST_KEY_ENCRYPTION_KEYS,
    LOG_LEVEL: "warn",
    RATE_LIMIT_IFRAME_TOKEN_PER_MINUTE: "1000000000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000000",
  },
  30_000,
  "build",
  ["--cpu-prof", `--cpu-prof-dir=${dir}`],
);
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
  const rpc = (name: string) => `${service.baseUrl}/dashboard.v1.DashboardService/${name}`;
  const h2 = { connections: 16, streams: 8, durationSeconds: Number(args.seconds) };
  const loads = {
    "grpc-get": () =>
      h2load({
        ...h2,
        url: rpc("GetDashboard"),
        headers: grpcHeaders(token),
        body: grpcFrame(
          toBinary(GetDashboardRequestSchema, create(GetDashboardRequestSchema, { tenantId: "bench-tenant" })),
        ),
      }),
    "json-get": () =>
      h2load({
        ...h2,
        connections: 64,
        streams: 1,
        url: rpc("GetDashboard"),
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: Buffer.from(JSON.stringify({ tenantId: "bench-tenant" })),
        extra: ["--h1"],
      }),
    mint: () =>
      h2load({
        ...h2,
        url: rpc("CreateIframeToken"),
        headers: grpcHeaders(token),
        body: grpcFrame(
          toBinary(
            CreateIframeTokenRequestSchema,
            create(CreateIframeTokenRequestSchema, {
              tenantId: "bench-tenant",
              workspaceId: "bench-workspace",
              dashboardId: dashboard!.id,
            }),
          ),
        ),
      }),
    list: () =>
      h2load({
        ...h2,
        url: rpc("ListDashboards"),
        headers: grpcHeaders(token),
        body: grpcFrame(toBinary(ListDashboardsRequestSchema, create(ListDashboardsRequestSchema, { pageSize: 50 }))),
      }),
  };
  const load = loads[args.scenario as keyof typeof loads];
  if (!load) throw new Error(`unknown scenario ${args.scenario}: one of ${Object.keys(loads).join(", ")}`);
  const result = await load();
  process.stdout.write(`${args.scenario}: ${Math.round(result.rps)} req/s, ${result.failed} failed\n`);
} finally {
  // The profile is written when the process exits.
  await service.stop();
  await redis.stop();
  await db.drop();
}
const written = (await readdir(dir)).filter((f) => !before.has(f));
for (const file of written) {
  process.stdout.write(`\n${join(dir, file)}\n`);
  if (file.endsWith(".cpuprofile")) {
    execFileSync(process.execPath, ["--import", "tsx", "bench/profile-summary.ts", join(dir, file), "30"], {
      stdio: "inherit",
    });
  }
}
