import http from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { frontDoor, type FrontDoor } from "../../src/ops/front-door.js";
import { listen, type RunningServer } from "../../src/server/server.js";
import { dashboardClient, transports } from "../helpers/clients.js";

/** The port's front door around a stand-in handler, on a real socket, already draining. */
let door: FrontDoor;
let server: RunningServer;
let baseUrl: string;
beforeAll(async () => {
  door = frontDoor(
    (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("inner handler");
    },
    (req) => req.url === "/healthz",
  );
  server = await listen(door.handler, "127.0.0.1", 0);
  baseUrl = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.close(1_000));

describe("before draining", () => {
  it("hands every request to the handler, with a request id", async () => {
    const res = await fetch(`${baseUrl}/dashboard.v1.DashboardService/ListDashboards`, { method: "POST", body: "{}" });
    expect(await res.text()).toBe("inner handler");
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("once draining", () => {
  beforeAll(() => door.startDraining());

  it.each(Object.keys(transports("http://x")))(
    "answers a new call UNAVAILABLE in its protocol (%s), with ErrorInfo and RetryInfo",
    async (name) => {
      const client = dashboardClient(transports(baseUrl)[name]!);
      const err = await client.listDashboards({}).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code).toBe(Code.Unavailable);
      expect(err!.findDetails(ErrorInfoSchema).map((i) => [i.domain, i.reason])).toEqual([
        ["dashboard-service", "UNAVAILABLE"],
      ]);
      expect(err!.findDetails(RetryInfoSchema)).toHaveLength(1);
    },
  );

  it("closes HTTP/1.1 connections after the answer instead of keeping them alive", async () => {
    const answer = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(`${baseUrl}/dashboard.v1.DashboardService/ListDashboards`, {
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

  it("still serves what is exempt (probes)", async () => {
    const res = await fetch(`${baseUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("inner handler");
  });
});
