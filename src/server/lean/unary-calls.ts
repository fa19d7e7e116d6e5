import type { IncomingHttpHeaders } from "node:http";
import type { DescMethodUnary, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createServiceImplSpec,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import { BodyTooLargeError, readBody } from "../read-body.js";
import { LightHeaders } from "./light-headers.js";

/**
 * What the lean unary paths share. connect-node serves every protocol through
 * one general pipeline (universal requests, async-iterable transforms, a linked
 * abort controller and a deadline signal per call); the lean paths read one
 * message, run the very same interceptors and implementations through
 * connect's own invokeUnaryImplementation, and write one answer. Anything they
 * do not take goes to the general adapter unchanged.
 */
export interface LeanPathOptions {
  services: { service: DescService; impl: Partial<ServiceImpl<DescService>> }[];
  interceptors: Interceptor[];
  readMaxBytes: number;
  contextValues: (req: { socket: { remoteAddress?: string | undefined } }) => ContextValues;
}

export interface UnaryRoute {
  spec: Extract<MethodImplSpec, { kind: "unary" }>;
  method: DescMethodUnary;
  service: DescService;
}

/** "/package.Service/Method" → the unary method and its implementation. */
export function unaryRoutes(services: LeanPathOptions["services"]): Map<string, UnaryRoute> {
  const routes = new Map<string, UnaryRoute>();
  for (const { service, impl } of services) {
    const serviceSpec = createServiceImplSpec(service, impl);
    for (const method of service.methods) {
      const spec = serviceSpec.methods[method.localName];
      if (method.methodKind !== "unary" || spec?.kind !== "unary") continue;
      routes.set(`/${service.typeName}/${method.name}`, { spec, method: method as DescMethodUnary, service });
    }
  }
  return routes;
}

const NEVER_ABORTED = new AbortController().signal;

/**
 * A handler context without per-call abort machinery: nothing in this service
 * cancels work on client disconnect or deadline (handlers run short queries
 * with their own timeouts), so there is nothing for a signal to stop.
 */
export function leanHandlerContext(
  route: UnaryRoute,
  protocolName: string,
  url: string,
  headers: IncomingHttpHeaders,
  values: ContextValues,
): HandlerContext {
  const requestHeader = new LightHeaders();
  for (const key in headers) {
    const value = headers[key];
    if (key[0] === ":" || value === undefined) continue;
    requestHeader.set(key, Array.isArray(value) ? value.join(", ") : value);
  }
  return {
    service: route.service,
    method: route.method,
    protocolName,
    requestMethod: "POST",
    url,
    signal: NEVER_ABORTED,
    timeoutMs: () => undefined,
    requestHeader,
    responseHeader: new LightHeaders(),
    responseTrailer: new LightHeaders(),
    values,
  };
}

/** The whole request body; past limit bytes it is RESOURCE_EXHAUSTED, as connect-node answers readMaxBytes. */
export async function readMessageBody(req: Parameters<typeof readBody>[0], limit: number): Promise<Buffer> {
  try {
    return await readBody(req, limit);
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw new ConnectError(err.message, Code.ResourceExhausted);
    throw new ConnectError("the request body could not be read", Code.InvalidArgument, undefined, undefined, err);
  }
}
