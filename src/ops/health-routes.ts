import type { PlainRoute } from "../server/http-handler.js";
import type { Health } from "./health.js";

export const LIVENESS_PATH = "/healthz";
export const READINESS_PATH = "/readyz";

/** The path of a request without its query string. */
export function pathOf(url: string | undefined): string {
  const q = (url ?? "/").indexOf("?");
  return q === -1 ? (url ?? "/") : (url ?? "/").slice(0, q);
}

/**
 * GET /healthz: the process is alive and its event loop turns (liveness; it
 * never looks at dependencies, so a database outage does not get pods killed).
 * GET /readyz: 200 when this replica should get traffic, 503 otherwise, with
 * the reasons in the body (readiness).
 */
export function healthRoutes(health: Health): PlainRoute {
  return (req, res) => {
    const path = pathOf(req.url);
    if (path !== LIVENESS_PATH && path !== READINESS_PATH) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" });
      res.end(JSON.stringify({ code: "method_not_allowed", message: "use GET" }));
      return true;
    }
    if (path === LIVENESS_PATH) {
      send(res, 200, { status: "alive" });
      return true;
    }
    health.readiness().then(
      (report) => send(res, report.ready ? 200 : 503, { status: report.ready ? "ready" : "not ready", ...report }),
      () => send(res, 503, { status: "not ready" }),
    );
    return true;
  };
}

function send(res: Parameters<PlainRoute>[1], status: number, body: unknown): void {
  // Probes must see the state now, never a cached answer.
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}
