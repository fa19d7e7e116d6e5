/**
 * Baseline: a bare @grpc/grpc-js server answering GetDashboard with a constant
 * (no auth, no limiter, no storage): the ceiling a Node gRPC server reaches here.
 * Prints {"port": N} on stdout once listening.
 */
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type MessageShape } from "@bufbuild/protobuf";
import { DashboardService, GetDashboardResponseSchema } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { sampleDashboard } from "./sample.js";

const method = DashboardService.method.getDashboard;
const response = create(GetDashboardResponseSchema, { dashboard: sampleDashboard() });
const server = new grpc.Server();
server.addService(
  {
    getDashboard: {
      path: `/${DashboardService.typeName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      requestDeserialize: (b: Buffer) => fromBinary(method.input, b),
      requestSerialize: (m: MessageShape<typeof method.input>) => Buffer.from(toBinary(method.input, m)),
      responseSerialize: (m: typeof response) => Buffer.from(toBinary(method.output, m)),
      responseDeserialize: (b: Buffer) => fromBinary(method.output, b),
    },
  },
  { getDashboard: (_call: unknown, callback: grpc.sendUnaryData<typeof response>) => callback(null, response) },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});
