import type { DescMessage, DescMethod, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import {
  createHandlerContext,
  createServiceImplSpec,
  type ContextValues,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import type { Deadline } from "../../call/deadline.js";
import type { HttpRequest } from "../http-types.js";
import { CallContext, plainHeaders } from "./handler-context.js";
import { answerMessage } from "./messages.js";

/** Where a stream of this kind counts, so one connection (or everyone) cannot hold too many open. */
export interface StreamSlots {
  acquire(connection: object): () => void;
}

/** One RPC of one service, as the routing table holds it. */
export interface RpcMethod {
  /** "/package.Service/Method" */
  path: string;
  service: DescService;
  method: DescMethod;
  spec: MethodImplSpec;
  /** "caller": the guard authenticates and charges it. "public": probes and tools call it without a token. */
  access: "caller" | "public";
  maxRequestBytes: number;
  /** Health checks keep answering while the replica drains. */
  servedWhileDraining: boolean;
  /** Logged at debug level (probes would drown the call log). */
  quiet: boolean;
  /** Called by embedded renderers too, so CORS also admits the renderer origins. */
  rendererFacing: boolean;
  streamSlots?: StreamSlots;
}

export interface ServiceRouting {
  access: RpcMethod["access"];
  maxRequestBytes: number;
  servedWhileDraining?: boolean;
  quiet?: boolean;
  /** Caps on concurrent calls of particular methods (by method name), such as long-lived watches. */
  streamSlots?: Record<string, StreamSlots>;
  /** Methods (by name) embedded renderers call. */
  rendererFacing?: readonly string[];
}

/** Every method of a service implementation, ready for the routing table. */
export function rpcMethods<S extends DescService>(
  service: S,
  impl: Partial<ServiceImpl<S>>,
  routing: ServiceRouting,
): RpcMethod[] {
  const spec = createServiceImplSpec(service, impl);
  return service.methods.map((method) => ({
    path: `/${service.typeName}/${method.name}`,
    service,
    method,
    spec: spec.methods[method.localName]!,
    access: routing.access,
    maxRequestBytes: routing.maxRequestBytes,
    servedWhileDraining: routing.servedWhileDraining ?? false,
    quiet: routing.quiet ?? false,
    rendererFacing: routing.rendererFacing?.includes(method.name) ?? false,
    ...(routing.streamSlots?.[method.name] ? { streamSlots: routing.streamSlots[method.name] } : {}),
  }));
}

export type RpcInput = MessageShape<DescMessage> | AsyncIterable<MessageShape<DescMessage>>;
export type RpcOutput = MessageShape<DescMessage> | AsyncIterable<MessageShape<DescMessage>>;

/** What a handler answered: its message(s), and the headers and trailers it set on its context, if any. */
export interface RpcAnswer {
  output: RpcOutput;
  header: Headers | undefined;
  trailer: Headers | undefined;
}

/** Whether the method's request is a stream of messages (client or bidirectional streaming). */
export const takesStream = (m: DescMethod) => m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming";
/** Whether its answer is a stream of messages (server or bidirectional streaming). */
export const answersStream = (m: DescMethod) =>
  m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming";

/**
 * Runs the implementation with a handler context whose signal is the call's
 * deadline (which also fires when the client goes away) and whose values
 * carry the guarded call: a CallContext for a single answer, connect's own
 * createHandlerContext for a stream of them.
 */
export function invokeRpc(
  rpc: RpcMethod,
  input: RpcInput,
  request: { req: HttpRequest; protocolName: string; url: string },
  deadline: Deadline,
  values: ContextValues,
): RpcAnswer | Promise<RpcAnswer> {
  const schema = rpc.method.output;
  const spec = rpc.spec;
  if (spec.kind === "unary" || spec.kind === "client_streaming") {
    const { req, protocolName, url } = request;
    const context = new CallContext(
      rpc.service,
      rpc.method,
      protocolName,
      req.method ?? "POST",
      url,
      values,
      deadline,
      req.headers,
    );
    // A handler may answer at once (a cached read does), and is then answered with no promise.
    const answered = spec.impl(input as never, context);
    return answered instanceof Promise
      ? answered.then((value) => singleAnswer(schema, value, context))
      : singleAnswer(schema, answered, context);
  }
  const context = createHandlerContext({
    service: rpc.service,
    method: rpc.method,
    protocolName: request.protocolName,
    requestMethod: request.req.method ?? "POST",
    url: request.url,
    timeoutMs: deadline.remainingMs(),
    requestSignal: deadline.signal,
    requestHeader: plainHeaders(request.req.headers),
    contextValues: values,
  });
  // The context lives as long as the stream: aborted (its timer cleared) once the last message is out.
  return {
    output: mapStream(spec.impl(input as never, context), schema, () => context.abort()),
    header: context.responseHeader,
    trailer: context.responseTrailer,
  };
}

function singleAnswer(
  schema: DescMessage,
  value: MessageShape<DescMessage> | MessageInitShape<DescMessage>,
  context: CallContext,
): RpcAnswer {
  return { output: answerMessage(schema, value), header: context.setHeader, trailer: context.setTrailer };
}

async function* mapStream(
  answers: AsyncIterable<unknown>,
  schema: DescMessage,
  done: () => void,
): AsyncGenerator<MessageShape<DescMessage>> {
  try {
    for await (const answer of answers) yield answerMessage(schema, answer as never);
  } finally {
    done();
  }
}
