import http from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { dashboardClient, transports } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { bearer, callerToken } from "../helpers/tokens.js";

let server: TestServer;
let admin: ReturnType<typeof bearer>;
beforeAll(async () => {
  server = await startTestServer();
  admin = bearer(await callerToken({ org: "org-draining", admin: true }));
  // What stop() does first: the replica reports NOT_SERVING and refuses new calls.
  server.app.ops.health.startDraining();
  server.app.edge.startDraining();
});
afterAll(() => server.stop());

describe("once draining", () => {
  it.each(Object.keys(transports("http://x")))(
    "answers a new call UNAVAILABLE in its protocol (%s), with ErrorInfo SHUTTING_DOWN and RetryInfo",
    async (name) => {
      const client = dashboardClient(transports(server.baseUrl)[name]!);
      const err = await client.listDashboards({}, admin).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code).toBe(Code.Unavailable);
      expect(err!.findDetails(ErrorInfoSchema).map((i) => [i.domain, i.reason])).toEqual([
        ["dashboard-service", "SHUTTING_DOWN"],
      ]);
      expect(err!.findDetails(RetryInfoSchema)).toHaveLength(1);
    },
  );

  it("closes HTTP/1.1 connections after the answer instead of keeping them alive", async () => {
    const answer = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(`${server.baseUrl}/dashboard.v1.DashboardService/ListDashboards`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": "drain-1" },
      });
      req.once("response", resolve).once("error", reject);
      req.end("{}");
    });
    answer.resume();
    expect(answer.statusCode).toBe(503);
    expect(answer.headers.connection).toBe("close");
    expect(answer.headers["retry-after"]).toBe("1");
    expect(answer.headers["x-request-id"]).toBe("drain-1");
  });

  it("refuses REST calls in the guide's envelope", async () => {
    const res = await fetch(`${server.baseUrl}/api/v1/dashboards`, { headers: admin.headers });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(await res.json()).toMatchObject({ success: false, code: "SHUTTING_DOWN" });
  });

  it("still answers the probes, and reports NOT_SERVING", async () => {
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.baseUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ draining: true, ready: false });
  });
});
