import {
  create,
  createRegistry,
  fromBinary,
  isMessage,
  toBinary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { execFile } from "node:child_process";
import { once } from "node:events";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { queryDatabase } from "../helpers/postgres.js";
import { eventually, SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { callerToken } from "../helpers/tokens.js";

/**
 * A second, independent gRPC implementation against the server over real
 * sockets: gRPC C-core (Debian's python3-grpcio, installed by
 * scripts/test-prerequisites.sh), driven by grpc_core_client.py. The protobuf
 * side stays here: requests are encoded and responses decoded with the
 * generated schemas, the script only moves bytes through C-core.
 */

const PYTHON = "/usr/bin/python3";
const CLIENT = fileURLToPath(new URL("grpc_core_client.py", import.meta.url));

type Methods = typeof DashboardService.method;
type Pairs = [string, string][];

interface PlannedCall {
  path: string;
  request: string;
  metadata: Pairs;
  compression: "gzip" | null;
  timeout: number;
}

/** One call's outcome as C-core reported it (grpc_core_client.py's output line). */
interface CoreResult {
  code: string;
  details: string;
  initial_metadata: Pairs;
  trailing_metadata: Pairs;
  response: string | null;
}

interface CallOptions {
  token?: string;
  metadata?: Pairs;
  compression?: "gzip";
  /** Seconds; the default is only a hang guard. */
  timeout?: number;
}

function planCall<K extends keyof Methods>(
  name: K,
  request: MessageInitShape<Methods[K]["input"]>,
  options: CallOptions = {},
): PlannedCall {
  const method = DashboardService.method[name];
  const metadata: Pairs = options.token ? [["authorization", `Bearer ${options.token}`]] : [];
  return {
    path: `/${DashboardService.typeName}/${method.name}`,
    request: Buffer.from(toBinary(method.input, create(method.input, request as never))).toString("base64"),
    metadata: [...metadata, ...(options.metadata ?? [])],
    compression: options.compression ?? null,
    timeout: options.timeout ?? 20,
  };
}

function responseOf<K extends keyof Methods>(name: K, result: CoreResult): MessageShape<Methods[K]["output"]> {
  expect(result.code, result.details).toBe("OK");
  expect(result.response).not.toBeNull();
  return fromBinary(DashboardService.method[name].output, Buffer.from(result.response!, "base64")) as MessageShape<
    Methods[K]["output"]
  >;
}

/** Runs the calls in order on one C-core channel to 127.0.0.1:port; resolves with each call's outcome. */
function runCore(
  port: number,
  calls: PlannedCall[],
  env: Record<string, string> = {},
): Promise<{ results: CoreResult[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      PYTHON,
      [CLIENT],
      { env: { ...process.env, ...env }, timeout: 50_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`grpc_core_client.py failed: ${err.message}`));
        const results = stdout
          .split("\n")
          .filter((line) => line.length > 0)
          .map((line) => JSON.parse(line) as CoreResult);
        if (results.length !== calls.length) {
          return reject(new Error(`${calls.length} calls planned, ${results.length} reported:\n${stderr}`));
        }
        resolve({ results, stderr });
      },
    );
    child.stdin!.end(JSON.stringify({ target: `127.0.0.1:${port}`, calls }));
  });
}

const valuesOf = (pairs: Pairs, key: string) => pairs.filter(([k]) => k === key).map(([, v]) => v);
const keysOf = (pairs: Pairs) => pairs.map(([k]) => k);

const detailTypes = createRegistry(ErrorInfoSchema, RetryInfoSchema, BadRequestSchema);

/** The google.rpc.Status a failed call's trailers carry in grpc-status-details-bin, with its details unpacked. */
function statusOf(result: CoreResult) {
  const bins = valuesOf(result.trailing_metadata, "grpc-status-details-bin");
  expect(bins, "exactly one grpc-status-details-bin trailer").toHaveLength(1);
  const status = fromBinary(StatusSchema, Buffer.from(bins[0]!, "base64"));
  const details = status.details.map((any) => anyUnpack(any, detailTypes));
  expect(details, "every detail is of a known type").not.toContain(undefined);
  return {
    status,
    errorInfos: details.filter((d) => d !== undefined && isMessage(d, ErrorInfoSchema)),
    retryInfos: details.filter((d) => d !== undefined && isMessage(d, RetryInfoSchema)),
  };
}

/** A TCP relay in front of the server that counts the bytes each way, to see what really crossed the wire. */
async function countingRelay(targetPort: number) {
  const bytes = { toServer: 0, toClient: 0 };
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => s.destroy());
      s.on("close", () => sockets.delete(s));
    }
    client.on("data", (chunk: Buffer) => (bytes.toServer += chunk.length));
    upstream.on("data", (chunk: Buffer) => (bytes.toClient += chunk.length));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  relay.listen(0, "127.0.0.1");
  await once(relay, "listening");
  return {
    port: (relay.address() as AddressInfo).port,
    bytes,
    async close() {
      for (const s of sockets) s.destroy();
      relay.close();
      await once(relay, "close");
    },
  };
}

/** C-core's own account of compression (message_compress_filter) and of the headers it parsed (hpack parser). */
const CORE_TRACE = { GRPC_TRACE: "compression,chttp2_hpack_parser", GRPC_VERBOSITY: "DEBUG" };

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.stop();
});

describe("a gRPC C-core client (python3-grpcio)", () => {
  it("creates a dashboard and reads it back", async () => {
    const token = await callerToken({ org: "core-roundtrip", admin: true, sub: "carol" });
    const { results } = await runCore(server.port, [
      planCall(
        "createDashboard",
        { tenantId: "t1", workspaceId: "w1", name: "Ops", description: "from C-core" },
        { token },
      ),
      planCall("getDashboard", { tenantId: "t1" }, { token }),
    ]);
    const created = responseOf("createDashboard", results[0]!).dashboard;
    expect(created).toMatchObject({
      tenantId: "t1",
      workspaceId: "w1",
      name: "Ops",
      description: "from C-core",
      organizationId: "core-roundtrip",
      createdBy: "carol",
    });
    expect(created!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(responseOf("getDashboard", results[1]!).dashboard).toEqual(created);
  });

  it("sends binary and ASCII custom metadata the server accepts", async () => {
    const token = await callerToken({ org: "core-metadata", admin: true });
    // Every byte value, so a NUL, 0xff and invalid UTF-8 all travel (C-core base64-encodes -bin values itself).
    const trace = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const { results } = await runCore(server.port, [
      planCall("createDashboard", { tenantId: "t1", workspaceId: "w1", name: "Meta" }, { token }),
      planCall(
        "getDashboard",
        { tenantId: "t1" },
        {
          token,
          metadata: [
            ["x-trace-bin", trace.toString("base64")],
            ["x-test", "plain ascii value"],
          ],
        },
      ),
    ]);
    const created = responseOf("createDashboard", results[0]!).dashboard;
    expect(responseOf("getDashboard", results[1]!).dashboard?.id).toBe(created!.id);
  });

  it("compresses requests with gzip and receives large answers gzip-compressed and intact", async () => {
    const token = await callerToken({ org: "core-gzip", admin: true });
    const count = 12;
    // Compressible on purpose: C-core sends a message uncompressed when gzip would not make it smaller.
    const description = (i: number) => `dashboard ${i} of the gzip test; `.repeat(50);
    const creates = Array.from({ length: count }, (_, i) =>
      planCall(
        "createDashboard",
        { tenantId: `t${i}`, workspaceId: "w1", name: `Dashboard ${i}`, description: description(i) },
        { token, compression: "gzip" },
      ),
    );
    const requestBytes = creates.reduce((sum, c) => sum + Buffer.from(c.request, "base64").length, 0);

    const sending = await countingRelay(server.port);
    const sent = await runCore(sending.port, creates, CORE_TRACE).finally(() => sending.close());
    const created = sent.results.map((r) => responseOf("createDashboard", r).dashboard!);
    expect(created.map((d) => d.description)).toEqual(creates.map((_, i) => description(i)));
    // C-core says it compressed every request, and fewer bytes than the messages left for the server.
    expect(sent.stderr.match(/Compressed\[gzip\] \d+ bytes vs\. \d+ bytes/g)).toHaveLength(count);
    expect(sending.bytes.toServer).toBeLessThan(requestBytes);

    const receiving = await countingRelay(server.port);
    const listed = await runCore(
      receiving.port,
      [planCall("listDashboards", { pageSize: 100 }, { token })],
      CORE_TRACE,
    ).finally(() => receiving.close());
    const page = responseOf("listDashboards", listed.results[0]!);
    expect(page.totalSize).toBe(count);
    expect(page.dashboards).toEqual(created);
    const answerBytes = Buffer.from(listed.results[0]!.response!, "base64").length;
    expect(answerBytes).toBeGreaterThan(1024);
    // C-core parsed grpc-encoding: gzip on the answer, and fewer bytes than the answer came back.
    expect(listed.stderr.match(/HDR:CLI: grpc-encoding: gzip/g)).toHaveLength(1);
    expect(receiving.bytes.toClient).toBeLessThan(answerBytes);
  });

  it("gets an unauthenticated call's status details in the trailers", async () => {
    const { results } = await runCore(server.port, [planCall("getDashboard", { tenantId: "t1" })]);
    const result = results[0]!;
    expect(result.code).toBe("UNAUTHENTICATED");
    expect(result.response).toBeNull();
    expect(keysOf(result.initial_metadata)).not.toContain("grpc-status-details-bin");
    const { status, errorInfos } = statusOf(result);
    expect(status.code).toBe(16); // UNAUTHENTICATED
    expect(status.message).toBe(result.details);
    expect(errorInfos).toHaveLength(1);
    expect(errorInfos[0]).toMatchObject({ domain: "dashboard-service", reason: "UNAUTHORIZED" });
  });

  it("ends DEADLINE_EXCEEDED when the database holds the call past its deadline, and writes nothing", async () => {
    const org = "core-deadline";
    const token = await callerToken({ org, admin: true });
    const create = (timeout: number) =>
      planCall("createDashboard", { tenantId: "late", workspaceId: "w1", name: "Late" }, { token, timeout });
    const rowsOfTenant = () =>
      queryDatabase<{ id: string }>(
        server.db.url,
        "SELECT id FROM dashboards WHERE organization_id = $1 AND tenant_id = $2",
        [org, "late"],
      );

    const locker = new pg.Client({ connectionString: server.db.url });
    const watcher = new pg.Client({ connectionString: server.db.url });
    await Promise.all([locker.connect(), watcher.connect()]);
    const waitingForLock = async () =>
      (
        await watcher.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'dashboards'::regclass AND NOT granted",
        )
      ).rows[0]!.n;
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE dashboards IN ACCESS EXCLUSIVE MODE");

      let ended = false;
      const running = runCore(server.port, [create(3)]).finally(() => (ended = true));
      // The server's INSERT queues behind the lock for the call's whole three seconds (until it is cancelled);
      // seeing it there shows the deadline is what ended the call, not something before the database.
      // Bounded: the loop stops when the call ends, which the script's own timeout guarantees.
      let sawWaiting = false;
      while (!ended && !sawWaiting) sawWaiting = (await waitingForLock()) > 0;
      const [result] = (await running).results;
      expect(result!.code).toBe("DEADLINE_EXCEEDED");
      expect(sawWaiting, "the server's INSERT waited for the test's lock").toBe(true);

      // The server gives its statement up (cancels it) rather than leaving it queued to run once the lock goes.
      await eventually("the server's INSERT no longer waits for the lock", async () => (await waitingForLock()) === 0);
      await locker.query("ROLLBACK");
      expect(await rowsOfTenant()).toEqual([]);

      // The same request with time to finish succeeds: nothing of the first one was left to collide with.
      const { results } = await runCore(server.port, [create(20)]);
      const dashboard = responseOf("createDashboard", results[0]!).dashboard;
      expect(await rowsOfTenant()).toEqual([{ id: dashboard!.id }]);
    } finally {
      await locker.query("ROLLBACK").catch(() => {});
      await Promise.all([locker.end(), watcher.end()]);
    }
  });
});

describe("a gRPC C-core client refused by a Redis-backed rate limit", () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startTestServer({
      REDIS_URL: SHARED_REDIS_URL,
      RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("grpc-core"),
      RATE_LIMIT_DEFAULT_PER_MINUTE: "3",
    });
  });
  afterAll(async () => {
    await limited.stop();
  });

  it("gets RESOURCE_EXHAUSTED with retry-after, ratelimit-* and RetryInfo in the trailers", async () => {
    const token = await callerToken({ org: "core-limited", sub: "busy", admin: true });
    const { results } = await runCore(
      limited.port,
      Array.from({ length: 4 }, () => planCall("listDashboards", {}, { token })),
    );
    const [first, second, third, refused] = results as [CoreResult, CoreResult, CoreResult, CoreResult];

    // Answered calls carry their budget's state with the answer's headers.
    for (const [answered, remaining] of [
      [first, "2"],
      [second, "1"],
      [third, "0"],
    ] as const) {
      expect(answered.code).toBe("OK");
      expect(valuesOf(answered.initial_metadata, "ratelimit-remaining")).toEqual([remaining]);
    }

    expect(refused.code).toBe("RESOURCE_EXHAUSTED");
    const rateLimitKeys = [
      "retry-after",
      "ratelimit-limit",
      "ratelimit-remaining",
      "ratelimit-reset",
      "ratelimit-policy",
    ];
    for (const key of rateLimitKeys) {
      expect(valuesOf(refused.trailing_metadata, key), `${key} in the trailers`).toHaveLength(1);
    }
    expect(
      keysOf(refused.initial_metadata).filter((k) => rateLimitKeys.includes(k)),
      "no rate-limit metadata in the initial metadata of an error",
    ).toEqual([]);
    expect(valuesOf(refused.trailing_metadata, "ratelimit-limit")).toEqual(["3"]);
    expect(valuesOf(refused.trailing_metadata, "ratelimit-remaining")).toEqual(["0"]);
    expect(valuesOf(refused.trailing_metadata, "ratelimit-policy")).toEqual(["3;w=60"]);
    const retryAfter = Number(valuesOf(refused.trailing_metadata, "retry-after")[0]);
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`).toBe(true);

    const { status, errorInfos, retryInfos } = statusOf(refused);
    expect(status.code).toBe(8); // RESOURCE_EXHAUSTED
    expect(errorInfos).toHaveLength(1);
    expect(errorInfos[0]).toMatchObject({ domain: "dashboard-service", reason: "RATE_LIMITED" });
    expect(retryInfos).toHaveLength(1);
    expect(Number(retryInfos[0]!.retryDelay?.seconds ?? 0)).toBeGreaterThanOrEqual(1);
  });
});
