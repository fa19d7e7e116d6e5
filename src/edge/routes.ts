import type { Exchange } from "./exchange.js";
import type { RpcMethod } from "./rpc/rpc-method.js";
import type { ServiceError } from "../errors/service-error.js";

/**
 * A route that is not an RPC: the REST API, the key sets, the operations
 * endpoints. It serves its own protocol; the edge has already parsed, identified
 * and (where it applies) CORS-checked the request.
 */
export interface HttpRoute {
  /** How the call log and metrics name it: the RPC a REST route stands for, or "GET /healthz". */
  name: string;
  servedWhileDraining: boolean;
  /** Logged at debug level (probes would drown the call log). */
  quiet: boolean;
  /** Browsers call it (CORS applies). */
  browserFacing: boolean;
  /** The path template a REST route matches ("/api/v1/dashboards/{tenant_id}"), for the server span's http.route. */
  httpRoute?: string;
  serve(x: Exchange): Promise<void>;
  /** Answers an error in the route's own form (a refusal while draining). */
  refuse(x: Exchange, err: ServiceError): void;
}

/** A family of routes under one path prefix, resolved by its own table (the REST API's path patterns). */
export interface RouteFamily {
  prefix: string;
  /** The route for a method and path under the prefix; a family answers every path under it, if only with 404. */
  resolve(method: string, path: string): HttpRoute;
}

export type Resolved = { kind: "rpc"; rpc: RpcMethod } | { kind: "http"; route: HttpRoute };

/**
 * The one routing table of the port: every RPC of every service, every REST
 * route, the key sets and the operations routes, resolved in one place from
 * the path parsed once. An RPC is one map lookup; a path that is not an RPC
 * never pays for RPC dispatch.
 */
export class RoutingTable {
  private readonly exact = new Map<string, Resolved>();

  constructor(
    rpcs: readonly RpcMethod[],
    routes: readonly { path: string; route: HttpRoute }[],
    private readonly families: readonly RouteFamily[],
  ) {
    for (const rpc of rpcs) this.add(rpc.path, { kind: "rpc", rpc });
    for (const { path, route } of routes) this.add(path, { kind: "http", route });
  }

  resolve(method: string, path: string): Resolved | undefined {
    const found = this.exact.get(path);
    if (found) return found;
    for (const family of this.families) {
      if (path.startsWith(family.prefix)) return { kind: "http", route: family.resolve(method, path) };
    }
    return undefined;
  }

  private add(path: string, resolved: Resolved): void {
    if (this.exact.has(path)) throw new Error(`two routes for ${path}`);
    this.exact.set(path, resolved);
  }
}
