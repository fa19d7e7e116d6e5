import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardClient } from "../helpers/clients.js";
import { SHARED_REDIS_URL, uniquePrefix } from "../helpers/redis.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    REDIS_URL: SHARED_REDIS_URL,
    RATE_LIMIT_REDIS_KEY_PREFIX: uniquePrefix("lockout"),
    RATE_LIMIT_FAILED_AUTH_PER_MINUTE: "30",
  });
});
afterAll(() => server.stop());

describe("a flood of bad tokens from the valid caller's own address", () => {
  it("is throttled, and never refuses the valid caller once", async () => {
    const flooder = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }));
    const grpcFlooder = dashboardClient(createGrpcTransport({ baseUrl: server.baseUrl }));
    const valid = dashboardClient(createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2" }));
    const token = bearer(await callerToken({ org: "org-lockout", admin: true, sub: "valid" }));
    const forged = bearer(
      await callerToken({ org: "org-lockout", admin: true, secret: "not-the-server-secret-but-32-bytes-long" }),
    );

    const floodCodes: Code[] = [];
    const flood = async (client: typeof flooder, n: number) => {
      for (let i = 0; i < n; i++) {
        floodCodes.push(
          await client.listDashboards({}, forged).then(
            () => Code.Unknown,
            (e: unknown) => ConnectError.from(e).code,
          ),
        );
      }
    };
    const validOutcomes: string[] = [];
    const serve = async () => {
      for (let i = 0; i < 100; i++) {
        validOutcomes.push(
          await valid.listDashboards({}, token).then(
            () => "ok",
            (e: unknown) => Code[ConnectError.from(e).code] ?? "unknown",
          ),
        );
      }
    };
    // Interleaved on one address (127.0.0.1): the flood over two protocols, the valid caller over a third.
    await Promise.all([flood(flooder, 60), flood(grpcFlooder, 60), serve()]);

    expect(validOutcomes).toEqual(Array<string>(100).fill("ok"));
    // The flood is throttled: its first 30 failures are UNAUTHENTICATED, the rest RESOURCE_EXHAUSTED.
    expect(floodCodes.filter((c) => c === Code.Unauthenticated)).toHaveLength(30);
    expect(floodCodes.filter((c) => c === Code.ResourceExhausted)).toHaveLength(90);
  });
});
