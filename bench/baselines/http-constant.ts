/**
 * Baseline: a bare node:http handler returning the same JSON a Connect
 * GetDashboard returns (no framework, no auth, no storage).
 * Prints {"port": N} on stdout once listening.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { create, toJsonString } from "@bufbuild/protobuf";
import { GetDashboardResponseSchema } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { sampleDashboard } from "./sample.js";

const body = toJsonString(
  GetDashboardResponseSchema,
  create(GetDashboardResponseSchema, { dashboard: sampleDashboard() }),
);
const server = http.createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
