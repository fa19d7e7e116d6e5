import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";

export type DashboardClient = Client<typeof DashboardService>;

/** Every protocol the port speaks, each through the generated Connect client. */
export function transports(baseUrl: string): Record<string, Transport> {
  return {
    "Connect JSON (HTTP/1.1)": createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    "Connect binary (HTTP/2)": createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
    "gRPC (HTTP/2)": createGrpcTransport({ baseUrl }),
    "gRPC-Web (HTTP/1.1)": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
  };
}

export function dashboardClient(transport: Transport): DashboardClient {
  return createClient(DashboardService, transport);
}
