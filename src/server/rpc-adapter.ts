import { Code, ConnectError, createConnectRouter } from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
  type ConnectNodeAdapterOptions,
} from "@connectrpc/connect-node";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { ensureErrorInfo } from "./error-info-fallback.js";
import type { RequestHandler } from "./one-port-listener.js";

/**
 * connect-node's adapter, with one addition: errors the framework raises before
 * a call reaches our interceptors (undecodable body, invalid UTF-8, oversized or
 * badly compressed message, bad timeout header) get the ErrorInfo every other
 * error carries. It is also the transport seam: how RPCs meet Node's HTTP
 * servers is decided here and nowhere else.
 */
export function rpcAdapter(options: ConnectNodeAdapterOptions): RequestHandler {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  options.routes(router);
  const paths = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) paths.set((options.requestPathPrefix ?? "") + handler.requestPath, handler);
  const fallback = options.fallback;

  return (req, res) => {
    const handler = paths.get(req.url?.split("?", 2)[0] ?? "");
    if (!handler) {
      if (fallback) fallback(req, res);
      else res.writeHead(404).end();
      return;
    }
    const uReq = universalRequestFromNodeRequest(req, res, undefined, options.contextValues?.(req));
    handler(uReq)
      .then((uRes) => ensureErrorInfo(uReq, uRes))
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        // The client went away mid-call; there is nobody to answer.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
  };
}
