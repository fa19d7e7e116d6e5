import type { BenchService } from "./bench-service.js";
import { grpcHeaders, h2load, type LoadResult } from "./h2load.js";

export const SCENARIOS = ["grpc-get", "json-get", "mint", "list", "rest-get"] as const;
export type Scenario = (typeof SCENARIOS)[number];

export const isScenario = (name: string): name is Scenario => (SCENARIOS as readonly string[]).includes(name);

/**
 * The service's loads, by the name the profile and A/B runs take on their command line: gRPC over
 * h2c (16 connections × 8 streams) and HTTP/1.1 (64 connections, one request at a time), as
 * `npm run bench` drives them, for a time or for a number of requests.
 */
export function serviceLoads(
  s: BenchService,
  length: number | { requests: number },
): Record<Scenario, () => Promise<LoadResult>> {
  const span = typeof length === "number" ? { durationSeconds: length } : { requests: length.requests };
  const h2 = { connections: 16, streams: 8, ...span };
  const h1 = { connections: 64, streams: 1, ...span, extra: ["--h1"] };
  const rpc = (name: string) => `${s.service.baseUrl}/dashboard.v1.DashboardService/${name}`;
  return {
    "grpc-get": () => h2load({ ...h2, url: rpc("GetDashboard"), headers: grpcHeaders(s.token), body: s.bodies.get }),
    "json-get": () =>
      h2load({
        ...h1,
        url: rpc("GetDashboard"),
        headers: { "content-type": "application/json", authorization: `Bearer ${s.token}` },
        body: s.bodies.json,
      }),
    mint: () => h2load({ ...h2, url: rpc("CreateIframeToken"), headers: grpcHeaders(s.token), body: s.bodies.mint }),
    list: () => h2load({ ...h2, url: rpc("ListDashboards"), headers: grpcHeaders(s.token), body: s.bodies.list }),
    "rest-get": () =>
      h2load({
        ...h1,
        url: `${s.service.baseUrl}/api/v1/dashboards/bench-tenant`,
        headers: { authorization: `Bearer ${s.token}` },
      }),
  };
}
