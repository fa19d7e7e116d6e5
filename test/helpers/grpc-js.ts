import * as grpc from "@grpc/grpc-js";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import {
  createRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageShape,
  type MessageInitShape,
  create,
} from "@bufbuild/protobuf";
import { DashboardService } from "../../gen/dashboard/v1/dashboard_service_pb.js";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

type Methods = typeof DashboardService.method;

/** The shape of the unary methods makeGenericClientConstructor adds to a grpc.Client. */
export type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, res: unknown) => void,
) => grpc.ClientUnaryCall;

/** The failure of a grpc-js call: its status and the google.rpc details from grpc-status-details-bin. */
export interface GrpcJsFailure {
  code: grpc.status;
  details: string;
  reason: string | undefined;
  fields: string[];
}

/**
 * A plain @grpc/grpc-js client (the most common gRPC client in Node), built
 * from the generated descriptors rather than from .proto files at run time.
 */
export class GrpcJsDashboardClient {
  private readonly client: grpc.Client;

  constructor(port: number) {
    const definition: Record<string, grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>> = {};
    for (const method of DashboardService.methods) {
      definition[method.localName] = {
        path: `/${DashboardService.typeName}/${method.name}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: MessageShape<DescMessage>) => Buffer.from(toBinary(method.input, m)),
        requestDeserialize: (b: Buffer) => fromBinary(method.input, b),
        responseSerialize: (m: MessageShape<DescMessage>) => Buffer.from(toBinary(method.output, m)),
        responseDeserialize: (b: Buffer) => fromBinary(method.output, b),
      };
    }
    const Client = grpc.makeGenericClientConstructor(definition, DashboardService.name);
    this.client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }

  call<K extends keyof Methods>(
    name: K,
    request: MessageInitShape<Methods[K]["input"]>,
    token?: string,
    /** More request metadata (a traceparent, say). */
    extra: Record<string, string> = {},
  ): Promise<MessageShape<Methods[K]["output"]>> {
    const method = DashboardService.method[name];
    const metadata = new grpc.Metadata();
    if (token) metadata.set("authorization", `Bearer ${token}`);
    for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
    const message = create(method.input, request as never);
    return new Promise((resolve, reject) => {
      const fn = (this.client as unknown as Record<string, UnaryMethod>)[method.localName]!;
      fn.call(
        this.client,
        message,
        metadata,
        { deadline: Date.now() + 10_000 },
        (err: grpc.ServiceError | null, res: unknown) =>
          err ? reject(err) : resolve(res as MessageShape<Methods[K]["output"]>),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

const registry = createRegistry(ErrorInfoSchema, BadRequestSchema);

export async function grpcFailureOf(call: Promise<unknown>): Promise<GrpcJsFailure> {
  try {
    await call;
  } catch (e) {
    return grpcFailureFrom(e);
  }
  throw new Error("the call was expected to fail");
}

/** The status and google.rpc details of what a failed grpc-js call was rejected with. */
export function grpcFailureFrom(e: unknown): GrpcJsFailure {
  const err = e as grpc.ServiceError;
  const bin = err.metadata?.get("grpc-status-details-bin")[0];
  const status = bin ? fromBinary(StatusSchema, Buffer.isBuffer(bin) ? bin : Buffer.from(bin, "base64")) : undefined;
  const unpacked = (status?.details ?? []).map((d) => anyUnpack(d, registry));
  const info = unpacked.find((m) => m?.$typeName === ErrorInfoSchema.typeName) as
    MessageShape<typeof ErrorInfoSchema> | undefined;
  const bad = unpacked.find((m) => m?.$typeName === BadRequestSchema.typeName) as
    MessageShape<typeof BadRequestSchema> | undefined;
  return {
    code: err.code,
    details: err.details,
    reason: info?.reason,
    fields: bad?.fieldViolations.map((v) => v.field) ?? [],
  };
}
