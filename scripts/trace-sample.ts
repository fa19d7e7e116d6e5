/**
 * `npm run trace:sample [-- PATH]`: starts the service as a process with tracing on, pointed at an
 * in-process OTLP/HTTP receiver, mints one iframe token over gRPC with a caller's traceparent, and
 * prints the trace it exported as a text tree (to PATH when given). Uses the PostgreSQL and Redis the
 * tests use (a database of its own, dropped afterwards; a Redis key prefix of its own).
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { GrpcJsDashboardClient } from "../test/helpers/grpc-js.js";
import { OtlpReceiver, renderTrace } from "../test/helpers/otlp-receiver.js";
import { createTestDatabase } from "../test/helpers/postgres.js";
import { spawnServer } from "../test/helpers/process.js";
import { SHARED_REDIS_URL, uniquePrefix } from "../test/helpers/redis.js";
import { callerToken, TEST_JWT_SECRET } from "../test/helpers/tokens.js";

const receiver = await OtlpReceiver.start();
const db = await createTestDatabase();
const server = await spawnServer({
  DATABASE_URL: db.url,
  AUTH_JWT_SECRET: TEST_JWT_SECRET,
  REDIS_URL: SHARED_REDIS_URL,
  RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("trace-sample"),
  LOG_LEVEL: "warn",
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
  OTEL_BSP_SCHEDULE_DELAY: "1",
});
try {
  const token = await callerToken({ org: "acme", admin: true, sub: "sample-backend" });
  const grpc = new GrpcJsDashboardClient(server.port);
  const { dashboard } = await grpc.call(
    "createDashboard",
    { tenantId: "tenant-1", workspaceId: "ws-1", name: "Sales" },
    token,
  );
  const traceId = randomBytes(16).toString("hex");
  const parent = randomBytes(8).toString("hex");
  await grpc.call(
    "createIframeToken",
    { tenantId: "tenant-1", workspaceId: "ws-1", dashboardId: dashboard!.id },
    token,
    { traceparent: `00-${traceId}-${parent}-01` },
  );
  grpc.close();
  const batchOf = () =>
    receiver.spans.find((s) => s.links.some((l) => l.traceId === traceId) && s.name.startsWith("group commit"));
  await receiver.waitFor(
    (spans) =>
      spans.some((s) => s.traceId === traceId && s.kind === 2) &&
      batchOf() !== undefined &&
      spans.some((s) => s.parentSpanId === batchOf()!.spanId),
  );
  const tree = renderTrace(receiver.spans, traceId, [batchOf()!]) + "\n";
  const path = process.argv[2];
  if (path) writeFileSync(path, tree);
  else process.stdout.write(tree);
} finally {
  await server.stop();
  await receiver.close();
  await db.drop();
}
